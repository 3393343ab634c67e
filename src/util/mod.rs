//! Small helpers every layer may use (they name no other module of the crate).

pub mod time;
