//! End-to-end tests of the real `openk` binary: every command runs as a
//! separate process in a private temporary HOME and vault directory
//! (see `util.rs`), and the tests check exit codes, messages and files on
//! disk the way a user or a script would see them.
//!
//! Run with `cargo test --test integration`.

mod util;

mod agent;
mod approve;
mod bulk;
mod bulk_kill;
mod cli;
mod clipboard;
mod config;
mod contacts;
mod damage;
mod emergency;
mod exit_codes;
mod export;
mod files;
mod fork;
mod hardening;
mod history;
mod hostile;
mod import_formats;
mod import_keepass;
mod items;
mod key_rotation;
mod kill_rotation;
mod leaks;
mod local_state;
mod move_copy;
mod network;
mod output;
mod readme;
mod recovery;
mod server;
mod share;
mod shared_vaults;
mod sync;
mod tui;
mod usage;
mod vault;
