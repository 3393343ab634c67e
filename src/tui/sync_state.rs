//! What the status bar says about the server, and the worker's wording of
//! engine errors.

use crate::engine::{self, Error};

use super::worker::Reply;

/// Where the vault stands with its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// Never registered with a server.
    LocalOnly,
    /// Registered but this device is logged out.
    LoggedOut,
    Synced,
    Pending(u64),
    Syncing,
    /// The server took too long to answer (it accepted the connection, or
    /// the connection attempt timed out).
    NotAnswering(String),
    /// The server could not be reached at all (refused, no route, DNS).
    Offline(String),
    /// The user stopped the sync; `u64` changes are still to push.
    Cancelled(u64),
    Error(String),
}

impl SyncState {
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::LocalOnly => "local only".into(),
            Self::LoggedOut => "logged out".into(),
            Self::Synced => "synced".into(),
            Self::Pending(n) => format!("pending {n}"),
            Self::Syncing => "syncing…".into(),
            Self::NotAnswering(_) => "server not answering".into(),
            Self::Offline(_) => "offline".into(),
            Self::Cancelled(0) => "sync cancelled".into(),
            Self::Cancelled(n) => format!("sync cancelled · pending {n}"),
            Self::Error(_) => "sync error".into(),
        }
    }
}

/// An engine error for the status bar; `server` is the vault's server,
/// when it has one (named in the advice to log in again).
#[must_use]
pub fn message(e: &Error, server: Option<&str>) -> String {
    match e {
        Error::WrongPassword => "wrong password — try again".into(),
        Error::PasswordChanged => format!(
            "the master password was changed on another device; run `openk login --server {}` \
             in a shell with the new password, then unlock with it",
            server.unwrap_or("URL")
        ),
        Error::WrongPasswordRegistered(url) => format!(
            "wrong password — try again. If it was changed on another device, run \
             `openk login --server {url}` in a shell with the new one (check that this is your \
             server first), then unlock with it"
        ),
        Error::Tampered(_) => format!("{e}; restore the vault directory from a backup"),
        Error::HeadMoved | Error::KeptMoving(_) | Error::TokenRejected => {
            format!("{e}; press S to sync again")
        }
        Error::Damaged(_) | Error::StoreDamaged(_) | Error::Crypto(_) => {
            format!("{e}; restore the vault directory from a backup")
        }
        Error::NotConnected => {
            format!("{e}; run `openk register` or `openk login` in a shell to add a server")
        }
        Error::LoggedOut | Error::SessionEnded | Error::SessionUnreadable { .. } => {
            format!("{e}; log in again (press :, then `login`)")
        }
        Error::Fork { .. } | Error::ManifestMismatch { .. } => {
            format!("{e}; `sync --verify` (press :) compares everything item by item")
        }
        Error::UnlinkedManifest { .. } => {
            format!("{e}; update OpenK on every device of the account, then sync again")
        }
        Error::Conflict(_) => format!("{e}; try again"),
        Error::KeyChanged { .. } => format!(
            "{e}; compare the new fingerprint with them, then v on them in the share pane (4) \
             verifies it"
        ),
        Error::FingerprintMismatch { .. } => {
            format!("{e}; the server showed other keys a moment before: look again (v)")
        }
        Error::ReadOnly(_) => format!(
            "{e}; reading still works; give yourself write access to the vault directory to change it"
        ),
        other => other.to_string(),
    }
}

/// The state a failed sync leaves: a server that does not answer is told
/// apart from one that cannot be reached at all.
pub fn failed(e: &Error, server: Option<&str>) -> SyncState {
    match e {
        Error::NotAnswering(m) => SyncState::NotAnswering(m.clone()),
        Error::Unreachable(m)
            if [
                "timed out",
                "timeout",
                "deadline",
                "did not answer",
                "not answering",
            ]
            .iter()
            .any(|w| m.to_lowercase().contains(w)) =>
        {
            SyncState::NotAnswering(m.clone())
        }
        Error::Unreachable(m) => SyncState::Offline(m.clone()),
        other => SyncState::Error(message(other, server)),
    }
}

/// One line for the status bar about a `sync --verify`: a success
/// ([`Reply::Done`]) or, when anything differs, a warning ([`Reply::Error`]).
pub fn verify_summary(report: &engine::sync::SyncReport) -> Reply {
    let verified: Vec<_> = report
        .vaults
        .iter()
        .filter_map(|v| v.verify.as_ref())
        .collect();
    if verified.is_empty() {
        return Reply::Done("Synced; the server sent nothing to verify".into());
    }
    let items: u64 = verified.iter().map(|r| r.server_items).sum();
    if verified.iter().all(|r| r.matches) {
        return Reply::Done(format!(
            "Verified: the server's {items} item(s) match its manifest and this device"
        ));
    }
    let count = |f: fn(&engine::sync::VerifyReport) -> usize| -> usize {
        verified.iter().map(|r| f(r)).sum()
    };
    let mut parts = Vec::new();
    if verified.iter().any(|r| !r.server_matches_manifest) {
        parts.push("the server's records do NOT match its manifest".to_owned());
    }
    for (n, what) in [
        (
            count(|r| r.missing_on_server.len()),
            "missing on the server",
        ),
        (count(|r| r.differing.len()), "different on the server"),
        (
            count(|r| r.unknown_here.len()),
            "on the server but unknown here",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} item(s) {what}"));
        }
    }
    let repushed: u64 = verified.iter().map(|r| r.repushed).sum();
    if repushed > 0 {
        parts.push(format!("pushed {repushed} again"));
    }
    Reply::Error(format!(
        "Verify MISMATCH: {}; `openk sync --verify` lists the items",
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors a user can act on say, on the screen, what to do: the
    /// engine's facts, then the TUI's way out (a key, a palette command, or
    /// the shell command when the TUI has none).
    #[test]
    fn errors_for_the_screen_say_what_to_do() {
        let cases = [
            (Error::NotConnected, "openk register"),
            (Error::LoggedOut, "`login`"),
            (Error::SessionEnded, "`login`"),
            (Error::HeadMoved, "press S"),
            (Error::TokenRejected, "press S"),
            (Error::Damaged("x".into()), "backup"),
            (Error::Conflict(uuid::Uuid::nil()), "try again"),
            (Error::ReadOnly("/v".into()), "write access"),
        ];
        for (e, want) in cases {
            let m = message(&e, Some("https://s.example"));
            assert!(m.starts_with(&e.to_string()), "{m}");
            assert!(m.contains(want), "{e:?}: {m}");
            assert!(!m.contains("--home"), "{m}");
        }
    }
}
