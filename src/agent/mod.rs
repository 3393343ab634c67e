//! The agent: a background process that `openk unlock` starts, which keeps
//! the vault's password key (the Argon2id output) so that later commands
//! open the vault without paying the KDF, until `openk lock`, an idle
//! timeout, or a password change.
//!
//! - [`daemon`] is the agent process (`openk __agent`): it unlocks the vault
//!   itself to check the password, detaches, locks its memory and serves a
//!   Unix socket.
//! - [`client`] is what the CLI uses to talk to it.
//! - [`protocol`] is the line-delimited JSON between them.
//! - [`keys`] is the key protocol: named-key operations for programs, as
//!   JSON lines, allowed key by key in the config (`[agent.keys]`).
//!
//! The agent holds the password key and nothing else: each command still
//! reads the Secret Key from the vault directory and derives, unwraps and
//! checks every key exactly as a password unlock does, so an agent whose key
//! does not fit the vault (a stale one after `openk passwd`, or an impostor)
//! can never make a command open anything. Security notes: docs/security.md.

pub mod client;
pub mod daemon;
pub mod keys;
pub mod protocol;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Socket file names are `openk-agent-<hash>.sock`.
const SOCKET_PREFIX: &str = "openk-agent-";

/// Longest socket path we use: `sun_path` holds 108 bytes on Linux and 104
/// on the BSDs, including the final NUL.
const MAX_SOCKET_PATH: usize = 100;

/// The effective user id of this process.
fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether a peer may talk to us: only processes of our own user, since
/// the agent hands out key material and root can read our memory anyway.
///
/// # Errors
/// A message naming the foreign uid.
pub fn check_peer_uid(peer_uid: u32, own_uid: u32) -> Result<(), String> {
    if peer_uid == own_uid {
        Ok(())
    } else {
        Err(format!(
            "refused a connection from uid {peer_uid} (the agent serves only uid {own_uid})"
        ))
    }
}

/// The socket name of a vault: a short hash of its canonical directory, so
/// that each vault has its own agent and the name says nothing about it.
#[must_use]
pub fn socket_name(canonical_vault_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let digest = Sha256::digest(canonical_vault_dir.as_os_str().as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{SOCKET_PREFIX}{hash}.sock")
}

/// Where the sockets live, in order of preference: `$XDG_RUNTIME_DIR/openk`
/// (a per-user tmpfs, gone at logout), the state dir's `agent/`, else
/// `/tmp/openk-<uid>`; the first one whose socket path fits in `sun_path`.
fn socket_dir_for(name: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(rt) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && rt.is_absolute()
        && rt.is_dir()
    {
        candidates.push(rt.join("openk"));
    }
    if let Some(state) = crate::engine::files::state_dir() {
        candidates.push(state.join("agent"));
    }
    let tmp = std::env::temp_dir().join(format!("openk-{}", own_uid()));
    candidates
        .into_iter()
        .find(|d| d.join(name).as_os_str().len() <= MAX_SOCKET_PATH)
        .unwrap_or(tmp)
}

/// The agent socket of the vault in `vault_dir` (which must exist).
///
/// # Errors
/// When the vault directory cannot be resolved.
pub fn socket_path(vault_dir: &Path) -> io::Result<PathBuf> {
    let canonical = fs::canonicalize(vault_dir)?;
    let name = socket_name(&canonical);
    Ok(socket_dir_for(&name).join(name))
}

/// Creates the socket directory 0700 (with 0700 parents), or checks that an
/// existing one is a real directory of ours that nobody else can enter:
/// someone who could would be able to swap the socket for their own.
///
/// # Errors
/// I/O errors, or `PermissionDenied` for an unsafe directory.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let meta = fs::symlink_metadata(dir)?;
    let unsafe_dir = |why: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("unsafe agent directory {}: {why}", dir.display()),
        )
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory".into()));
    }
    if meta.uid() != own_uid() {
        return Err(unsafe_dir(format!("owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_dir(format!(
            "mode {:o}, must be 700",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_of_another_uid_are_refused() {
        assert!(check_peer_uid(1000, 1000).is_ok());
        let e = check_peer_uid(1001, 1000).expect_err("another uid");
        assert!(e.contains("1001"), "{e}");
        assert!(
            check_peer_uid(0, 1000).is_err(),
            "not even root's own socket"
        );
    }

    #[tokio::test]
    async fn a_real_socket_peer_has_our_uid() {
        let (a, _b) = tokio::net::UnixStream::pair().expect("socketpair");
        let cred = a.peer_cred().expect("SO_PEERCRED");
        assert!(check_peer_uid(cred.uid(), own_uid()).is_ok());
    }

    #[test]
    fn socket_names_differ_per_vault_and_hide_the_path() {
        let a = socket_name(Path::new("/home/me/vault-a"));
        let b = socket_name(Path::new("/home/me/vault-b"));
        assert_ne!(a, b);
        assert!(a.starts_with("openk-agent-") && a.ends_with(".sock"), "{a}");
        assert!(!a.contains("vault"), "{a}");
        assert_eq!(a, socket_name(Path::new("/home/me/vault-a")));
    }

    #[test]
    fn private_dir_is_created_0700_and_unsafe_ones_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).expect("create");
        let mode = fs::metadata(&dir).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let e = ensure_private_dir(&dir).expect_err("group/other can enter");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).expect("symlink");
        assert!(ensure_private_dir(&link).is_err(), "a symlink is refused");
    }
}
