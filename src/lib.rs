//! OpenK: an end-to-end encrypted secret manager for the terminal.
//!
//! Layers point one way (DESIGN §1): `cli` → `engine` → (`sync`, `store`,
//! `crypto`); only `engine` is the API of the layers below it.
//! Nothing below `engine` knows that a terminal exists.

pub mod agent;
pub mod cli;
pub mod clipboard;
pub mod config;
pub(crate) mod crypto;
pub mod engine;
pub mod export;
pub mod import;
pub(crate) mod kdf_params;
pub mod logging;
pub mod secure_read;
pub(crate) mod store;
pub(crate) mod sync;
pub mod text;
pub mod tui;
pub(crate) mod util;
