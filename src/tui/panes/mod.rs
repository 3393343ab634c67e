//! The main screen's panes, one file each.

pub mod devices;
pub mod search;
pub mod vault;
