//! The sync client: talks to an OpenK server with the wire types of
//! `openk_server::api::types`. It ships ciphertext only; keys never leave
//! the engine.

pub mod client;
mod events;
pub mod lines;
pub mod manifest;
mod tls;

pub use client::{Client, SyncError};
