//! The wire format between the CLI and the agent: one JSON object per line,
//! one request and one answer per connection. Every message carries the
//! protocol version `v`; an agent answers a request of another version with
//! an error naming its own, except `lock`, which any version honours so that
//! a newer `openk lock` can always stop an older agent.
//!
//! ```text
//! → {"v":1,"op":"keys"}
//! ← {"v":1,"ok":true,"agent":{"pid":4242,"vault":"/home/me/.local/share/openk/vault","locks_at":1764110000000},"password_key":"base64…"}
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Longest line either side reads; anything longer is refused.
pub const MAX_LINE: usize = 16 * 1024;

/// What a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Is there an agent, for which vault, until when (does not count as use).
    Status,
    /// The password key, to open the vault without the KDF (resets the idle timer).
    Keys,
    /// Wipe the keys, remove the socket and exit.
    Lock,
}

/// A request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    pub op: Op,
}

impl Request {
    #[must_use]
    pub fn new(op: Op) -> Self {
        Self { v: VERSION, op }
    }
}

/// Who answered: the agent's process, its vault and when it will lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub pid: u32,
    /// The canonical vault directory the agent holds the keys of.
    pub vault: PathBuf,
    /// Unix milliseconds of the idle lock; `None` when it never locks on idle.
    pub locks_at: Option<i64>,
}

/// An answer line.
#[derive(Default, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentInfo>,
    /// Base64 of the 32-byte password key (answer to [`Op::Keys`] only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<Zeroizing<String>>,
    /// The agent wiped its keys and is exiting (answer to [`Op::Lock`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    #[must_use]
    pub fn ok(agent: AgentInfo) -> Self {
        Self {
            v: VERSION,
            ok: true,
            agent: Some(agent),
            ..Self::default()
        }
    }

    #[must_use]
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            v: VERSION,
            error: Some(message.into()),
            ..Self::default()
        }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("v", &self.v)
            .field("ok", &self.ok)
            .field("agent", &self.agent)
            .field("password_key", &self.password_key.as_ref().map(|_| "***"))
            .field("locked", &self.locked)
            .field("error", &self.error)
            .finish()
    }
}

/// What `openk unlock` sends the agent process on its standard input (one
/// JSON line, so that a password with a line break survives): never argv or
/// the environment, which other processes of the user can read.
#[derive(Default, Serialize, Deserialize)]
pub struct Secrets {
    pub password: Zeroizing<String>,
    /// `OPENK_SECRET_KEY` of the parent, for a vault without a Secret Key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Zeroizing<String>>,
}

/// The one line the agent process writes on its standard output when it is
/// serving (or why it is not), before it detaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub ok: bool,
    /// Another agent already holds this vault; `agent` describes that one.
    #[serde(default)]
    pub already: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentInfo>,
    /// The CLI exit code for a failure (3 for a wrong password).
    #[serde(default)]
    pub code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format_is_stable() {
        let line = serde_json::to_string(&Request::new(Op::Keys)).expect("serialise");
        assert_eq!(line, r#"{"v":1,"op":"keys"}"#);
        let back: Request = serde_json::from_str(r#"{"v":1,"op":"lock"}"#).expect("parse");
        assert_eq!(back, Request::new(Op::Lock));
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"op":"dump"}"#).is_err());
    }

    #[test]
    fn response_wire_format_is_stable() {
        let mut r = Response::ok(AgentInfo {
            pid: 7,
            vault: "/v".into(),
            locks_at: Some(1000),
        });
        r.password_key = Some(Zeroizing::new("a2V5".into()));
        let line = serde_json::to_string(&r).expect("serialise");
        assert_eq!(
            line,
            r#"{"v":1,"ok":true,"agent":{"pid":7,"vault":"/v","locks_at":1000},"password_key":"a2V5"}"#
        );
        let e = serde_json::to_string(&Response::error("nope")).expect("serialise");
        assert_eq!(e, r#"{"v":1,"ok":false,"error":"nope"}"#);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let r = Response {
            password_key: Some(Zeroizing::new("c2VjcmV0LWtleQ==".into())),
            ..Response::default()
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}
