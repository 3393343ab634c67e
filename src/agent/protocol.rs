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
//!
//! The password reaches the agent once, on its standard input, as
//! [`Secrets`] (a length-prefixed framing, not JSON).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::engine::{ExposeSecret, SecretString};

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

/// What `openk unlock` sends the agent process on its standard input (never
/// argv or the environment, which other processes of the user can read).
///
/// Not JSON, on purpose: a JSON decoder copies an escaped string through a
/// scratch buffer it never wipes, which would leave the password in the
/// agent's memory for its whole life. The framing is [`SECRETS_MAGIC`], then
/// the password and, optionally, the Secret Key, each as a 4-byte big-endian
/// length and its UTF-8 bytes; nothing else follows.
pub struct Secrets {
    pub password: SecretString,
    /// `OPENK_SECRET_KEY` of the parent, for a vault without a Secret Key file.
    pub secret_key: Option<SecretString>,
}

/// The first bytes of a [`Secrets`] message (names its version).
pub const SECRETS_MAGIC: &[u8] = b"OPENK-SECRETS-1\n";

impl Secrets {
    /// The wire bytes, in one buffer of exactly their size (so it never
    /// moves and leaves a copy behind) that is wiped on drop.
    #[must_use]
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let fields: Vec<&[u8]> = std::iter::once(self.password.expose_secret().as_bytes())
            .chain(self.secret_key.iter().map(|k| k.expose_secret().as_bytes()))
            .collect();
        let size = SECRETS_MAGIC.len() + fields.iter().map(|f| 4 + f.len()).sum::<usize>();
        let mut out = Zeroizing::new(Vec::with_capacity(size));
        out.extend_from_slice(SECRETS_MAGIC);
        for f in fields {
            let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    /// Parses [`Secrets::encode`]'s bytes; `None` for anything else.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        fn field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            if tail.len() < len {
                return None;
            }
            let (value, tail) = tail.split_at(len);
            *rest = tail;
            Some(value)
        }
        let mut rest = bytes.strip_prefix(SECRETS_MAGIC)?;
        let password = crate::secure_read::secret_string(field(&mut rest)?).ok()?;
        let secret_key = if rest.is_empty() {
            None
        } else {
            Some(crate::secure_read::secret_string(field(&mut rest)?).ok()?)
        };
        rest.is_empty().then_some(Self {
            password,
            secret_key,
        })
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("password", &"[redacted]")
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
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
    fn secrets_survive_the_wire_and_nothing_else_parses() {
        let s = Secrets {
            password: SecretString::from("pw \"with\\ escapes\n\u{e9}"),
            secret_key: Some(SecretString::from("OK1-ABC")),
        };
        let wire = s.encode();
        assert_eq!(wire.len(), wire.capacity(), "allocated once, at its size");
        let back = Secrets::decode(&wire).expect("decodes");
        assert_eq!(back.password.expose_secret(), s.password.expose_secret());
        assert_eq!(
            back.secret_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned()),
            Some("OK1-ABC".to_owned())
        );
        let none = Secrets {
            password: SecretString::from("p"),
            secret_key: None,
        };
        assert!(
            Secrets::decode(&none.encode())
                .expect("decodes")
                .secret_key
                .is_none()
        );
        assert!(
            Secrets::decode(&wire[..wire.len() - 1]).is_none(),
            "truncated"
        );
        let mut longer = wire.to_vec();
        longer.push(0);
        assert!(Secrets::decode(&longer).is_none(), "trailing bytes");
        assert!(
            Secrets::decode(br#"{"password":"x"}"#).is_none(),
            "the old JSON"
        );
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("escapes") && !shown.contains("OK1"),
            "{shown}"
        );
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
