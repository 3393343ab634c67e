//! The popups that open over the main screen, one file each.

pub mod history;
pub mod passwd;
