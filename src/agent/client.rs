//! Talking to the agent from a command: find its socket, check that the
//! process behind it is ours, ask one question, and open the vault with the
//! password key it returns. A missing or dead agent is not an error (the
//! command falls back to the password); a socket left by a dead agent is
//! removed.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use zeroize::Zeroizing;

use super::protocol::{AgentInfo, MAX_LINE, Op, Request, Response, VERSION};
use crate::engine::Key;
use crate::engine::{self, Session};

/// Connecting to a live agent is instant; this only bounds odd cases.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The agent answers at once, but serves one connection at a time.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `op` to the agent at `path`. `Ok(None)` when no agent listens there
/// (a stale socket file is removed); `Err` when something answered but not
/// usefully (another protocol version, a foreign uid, garbage).
///
/// # Errors
/// A message for the user's log.
pub async fn request_at(path: &Path, op: Op) -> Result<Option<Response>, String> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path)).await {
        Err(_) => return Err(format!("the agent at {} did not accept", path.display())),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            remove_stale(path);
            return Ok(None);
        }
        Ok(Err(e)) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::debug!(error = %e, socket = %path.display(), "no agent");
            }
            return Ok(None);
        }
        Ok(Ok(s)) => s,
    };
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot check who runs the agent: {e}"))?;
    super::check_peer_uid(cred.uid(), super::own_uid())?;
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, exchange(stream, op))
        .await
        .map_err(|_| format!("the agent at {} did not answer", path.display()))?
        .map_err(|e| format!("talking to the agent failed: {e}"))?;
    let response: Response = serde_json::from_slice(&answer)
        .map_err(|_| "the agent sent an answer that does not parse".to_owned())?;
    if response.v != VERSION {
        return Err(format!(
            "the running agent speaks protocol version {} (this openk speaks {VERSION}); \
             run `openk lock` and `openk unlock` again",
            response.v
        ));
    }
    Ok(Some(response))
}

async fn exchange(mut stream: UnixStream, op: Op) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut line = serde_json::to_vec(&Request::new(op)).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut answer = Zeroizing::new(Vec::with_capacity(512));
    BufReader::new(stream)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut answer)
        .await?;
    Ok(answer)
}

/// Removes a socket file nobody listens on (its agent was killed). Only a
/// socket is removed, never another kind of file.
fn remove_stale(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(socket = %path.display(), "removed a stale agent socket"),
            Err(e) => tracing::debug!(error = %e, "cannot remove a stale agent socket"),
        }
    }
}

/// The socket of the vault in `dir`, if the directory resolves.
fn socket_of(dir: &Path) -> Option<PathBuf> {
    super::socket_path(dir).ok()
}

/// Sends `op` to the agent of the vault in `dir`; problems are logged and
/// read as "no agent".
async fn request(dir: &Path, op: Op) -> Option<Response> {
    let path = socket_of(dir)?;
    match request_at(&path, op).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    }
}

/// The agent holding the vault in `dir`, if one runs (does not count as use).
pub async fn status(dir: &Path) -> Option<AgentInfo> {
    request(dir, Op::Status)
        .await
        .filter(|r| r.ok)
        .and_then(|r| r.agent)
}

/// Tells the agent of the vault in `dir` to wipe its keys and exit; returns
/// the agent that was locked, `None` when none ran.
pub async fn lock(dir: &Path) -> Option<AgentInfo> {
    let path = socket_of(dir)?;
    // Lock is understood by every protocol version: ask even a mismatched one.
    match request_at(&path, Op::Lock).await {
        Ok(Some(r)) if r.locked => Some(r.agent.unwrap_or(AgentInfo {
            pid: 0,
            vault: dir.to_path_buf(),
            locks_at: None,
        })),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    }
}

/// Opens the vault in `dir` with the password key of its agent: `Ok(None)`
/// when no agent runs (or it holds no usable key), so the caller falls
/// back to the password. An agent whose key does not open the vault (stale
/// after a password change, or not ours) is told to lock.
///
/// # Errors
/// Errors a password unlock would give too (damaged vault, missing Secret
/// Key file, permissions), so that they are not hidden behind a prompt.
pub async fn open_vault(
    dir: &Path,
    secret_key_fallback: Option<&str>,
) -> engine::Result<Option<Session>> {
    let Some(response) = request(dir, Op::Keys).await else {
        return Ok(None);
    };
    let canonical = std::fs::canonicalize(dir).ok();
    if !response.ok || response.agent.as_ref().map(|a| &a.vault) != canonical.as_ref() {
        tracing::warn!(
            "the agent did not hand out the keys of this vault; asking for the password"
        );
        return Ok(None);
    }
    let Some(key) = response
        .password_key
        .as_deref()
        .and_then(|b64| decode_key(b64))
    else {
        tracing::warn!("the agent sent a malformed key; asking for the password");
        return Ok(None);
    };
    match Session::unlock_with_password_key(dir, &key, secret_key_fallback).await {
        Ok(vault) => {
            tracing::debug!("vault opened with the agent's key");
            Ok(Some(vault))
        }
        Err(engine::Error::WrongPassword) => {
            tracing::warn!(
                "the agent's key does not open this vault (the master password changed?); locking it"
            );
            lock(dir).await;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn decode_key(b64: &str) -> Option<Key> {
    let bytes = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(b64).ok()?);
    Key::from_slice(&bytes)
}

/// Base64 of a key, for the agent's answer.
pub(super) fn encode_key(key: &Key) -> Zeroizing<String> {
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_the_wire_encoding() {
        let key = Key::random();
        let back = decode_key(&encode_key(&key)).expect("decodes");
        assert_eq!(back.expose(), key.expose());
        assert!(decode_key("c2hvcnQ=").is_none(), "wrong length");
        assert!(decode_key("not base64!").is_none());
    }

    #[tokio::test]
    async fn no_socket_means_no_agent_and_a_dead_one_is_removed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("a.sock");
        assert!(
            request_at(&path, Op::Status)
                .await
                .expect("no error")
                .is_none()
        );
        // A socket nobody listens on any more: bound, then closed.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        assert!(
            request_at(&path, Op::Status)
                .await
                .expect("no error")
                .is_none()
        );
        assert!(!path.exists(), "the stale socket was removed");
        // A regular file by that name is never removed.
        std::fs::write(&path, b"not a socket").expect("write");
        assert!(
            request_at(&path, Op::Status)
                .await
                .expect("no error")
                .is_none()
        );
        assert!(path.exists());
    }
}
