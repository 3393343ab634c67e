//! OpenK: an end-to-end encrypted secret manager for the terminal.
//!
//! Layers point one way (DESIGN §1): `cli` → `engine` → (`store`, `crypto`).
//! Nothing below `engine` knows that a terminal exists.

pub mod agent;
pub mod cli;
pub mod clipboard;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod logging;
pub mod secure_read;
pub mod store;
pub mod sync;
pub mod text;
pub mod tui;
