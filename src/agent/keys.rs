//! The agent's key protocol: named-key operations for programs, over the
//! agent's socket, as JSON lines (one request a line, one answer a line, as
//! many as the program likes on one connection). Documented in
//! docs/security.md ("The agent's key protocol").
//!
//! ```text
//! → {"id":1,"op":"encrypt","key":"app-data","data_b64":"aGVsbG8="}
//! ← {"v":1,"id":1,"ok":true,"key":"app-data","version":2,"data_b64":"T0tFMQI…"}
//! → {"op":"sign","key":"app-data","data_b64":"aGVsbG8="}
//! ← {"v":1,"ok":false,"code":"not_permitted","error":"…"}
//! ```
//!
//! Nothing is allowed unless `[agent.keys]` in the config file names the
//! key and the operation (the file is read again for every connection); the
//! key bytes never leave the agent (there is no export operation).
//! A malformed line gets an error answer and the connection stays usable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use zeroize::Zeroizing;

use crate::config::{AgentConfig, AgentKeyRule};
use crate::engine::{self, Key, Session};

/// The longest request line of the key protocol (a 3 MiB message in base64).
pub const MAX_KEY_LINE: usize = 4 * 1024 * 1024;
/// A key connection without a request for this long is closed.
pub const IDLE: Duration = Duration::from_secs(300);
/// Key connections served at once; more are refused.
pub const MAX_CONNECTIONS: usize = 16;

/// The operations, as requests name them.
const OPS: [&str; 8] = [
    "encrypt", "decrypt", "sign", "mac", "verify", "derive", "public", "info",
];

/// Whether a first line is for the key protocol (an `op` it knows, or
/// anything that is not one of the CLI's own requests).
#[must_use]
pub fn is_key_request(line: &[u8]) -> bool {
    match serde_json::from_slice::<Json>(line) {
        Ok(v) => !matches!(
            v.get("op").and_then(Json::as_str),
            Some("status" | "keys" | "lock")
        ),
        Err(_) => true,
    }
}

/// A request line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    /// The protocol version (1; may be left out).
    #[serde(default)]
    v: Option<u32>,
    /// Any value, echoed in the answer.
    #[serde(default)]
    id: Option<Json>,
    op: String,
    key: String,
    /// The vault the key is in (name or id), when two have one of that name.
    #[serde(default)]
    vault: Option<String>,
    /// The input: plaintext (encrypt), envelope (decrypt), message (sign,
    /// verify).
    #[serde(default)]
    data_b64: Option<Zeroizing<String>>,
    /// verify: the signature or MAC.
    #[serde(default)]
    signature_b64: Option<String>,
    /// derive: the context (HKDF info).
    #[serde(default)]
    context: Option<String>,
    /// derive: the length in bytes (default 32).
    #[serde(default)]
    length: Option<usize>,
    /// derive, public, verify: a version other than the current one.
    #[serde(default)]
    version: Option<u32>,
}

/// A failed request: a stable code and a message.
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

impl From<engine::Error> for Refusal {
    fn from(e: engine::Error) -> Self {
        let code = match &e {
            engine::Error::NotFound(_) | engine::Error::NotFoundIn { .. } => "not_found",
            engine::Error::Ambiguous { .. } | engine::Error::AmbiguousVault { .. } => "ambiguous",
            engine::Error::KeyRetired { .. } => "retired",
            engine::Error::KeyRefused(_) => "refused",
            engine::Error::Invalid(_) | engine::Error::NoSuchVault { .. } => "invalid",
            engine::Error::WrongPassword | engine::Error::Locked(_) => "locked",
            _ => "error",
        };
        refuse(code, crate::cli::errors::message(&e))
    }
}

/// What one key connection needs from the agent.
pub struct Context {
    pub vault: PathBuf,
    pub password_key: Key,
    /// Told of every request (the agent's idle timer).
    pub touched: tokio::sync::mpsc::UnboundedSender<()>,
}

/// Serves one key connection to its end: `first` is the line already read.
pub async fn serve(ctx: Context, mut reader: BufReader<UnixStream>, first: Vec<u8>) {
    let program = reader
        .get_ref()
        .peer_cred()
        .ok()
        .and_then(|c| c.pid())
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
    // The permissions as the config file says now.
    let config = crate::config::load().map(|c| c.agent);
    let mut conn = Connection {
        ctx,
        session: None,
        config,
        program,
    };
    let mut line = Zeroizing::new(first);
    loop {
        let answer = if line.len() >= MAX_KEY_LINE && !line.ends_with(b"\n") {
            let a = error_line(None, &refuse("too_long", "the request line is too long"));
            let _ = reader.get_mut().write_all(&a).await;
            break;
        } else {
            conn.answer(&line).await
        };
        if reader.get_mut().write_all(&answer).await.is_err() {
            break;
        }
        // Wiped, not only emptied: the last request may have held a plaintext.
        zeroize::Zeroize::zeroize(&mut *line);
        let read = tokio::time::timeout(
            IDLE,
            (&mut reader)
                .take(MAX_KEY_LINE as u64)
                .read_until(b'\n', &mut line),
        )
        .await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            break;
        }
    }
    if let Some(s) = conn.session.take() {
        s.close().await;
    }
}

struct Connection {
    ctx: Context,
    /// The vault, opened at the first request that needs it.
    session: Option<Session>,
    config: Result<AgentConfig, String>,
    /// The peer's executable, when the OS says.
    program: Option<PathBuf>,
}

fn error_line(id: Option<Json>, r: &Refusal) -> Zeroizing<Vec<u8>> {
    let mut v = json!({ "v": 1, "ok": false, "code": r.code, "error": r.message });
    if let Some(id) = id {
        v["id"] = id;
    }
    let mut out = Zeroizing::new(serde_json::to_vec(&v).unwrap_or_default());
    out.push(b'\n');
    out
}

fn b64(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn unb64(what: &str, s: &str) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(Zeroizing::new)
        .map_err(|_| refuse("bad_request", format!("`{what}` is not base64")))
}

impl Connection {
    async fn answer(&mut self, line: &[u8]) -> Zeroizing<Vec<u8>> {
        let _ = self.ctx.touched.send(());
        let request: KeyRequest = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                let id = serde_json::from_slice::<Json>(line)
                    .ok()
                    .and_then(|v| v.get("id").cloned());
                return error_line(
                    id,
                    &refuse(
                        "bad_request",
                        format!("the line is not a request of the key protocol: {e}"),
                    ),
                );
            }
        };
        let id = request.id.clone();
        match self.run(&request).await {
            Ok(mut v) => {
                v["v"] = json!(1);
                v["ok"] = json!(true);
                if let Some(id) = id {
                    v["id"] = id;
                }
                let mut out = Zeroizing::new(serde_json::to_vec(&v).unwrap_or_default());
                out.push(b'\n');
                // The answer may hold a plaintext or derived bytes.
                wipe_json(v);
                out
            }
            Err(r) => {
                tracing::info!(op = %request.op, code = r.code, "key request refused");
                error_line(id, &r)
            }
        }
    }

    /// Checks the permission, then runs the operation.
    async fn run(&mut self, r: &KeyRequest) -> Result<Json, Refusal> {
        if r.v.is_some_and(|v| v != 1) {
            return Err(refuse(
                "bad_request",
                "this agent speaks version 1 of the key protocol",
            ));
        }
        if !OPS.contains(&r.op.as_str()) {
            return Err(refuse(
                "bad_request",
                format!(
                    "unknown operation {:?}; the operations are {}",
                    r.op,
                    OPS.join(", ")
                ),
            ));
        }
        let config = self
            .config
            .as_ref()
            .map_err(|e| refuse("config", e.clone()))?;
        let Some((name, rule)) = config.key_rule(&r.key) else {
            return Err(not_permitted(&r.key, &r.op));
        };
        if !rule.allows(&r.op) || !program_allowed(rule, self.program.as_deref()) {
            return Err(not_permitted(&r.key, &r.op));
        }
        let name = name.to_owned();
        let session = self.session().await?;
        let vault = r
            .vault
            .as_deref()
            .map(|v| session.resolve_vault(v))
            .transpose()?;
        let key = session.use_named_key(&name, vault).await?;
        // The name the config gave must be the key's own (not an id prefix
        // that happens to match another item).
        if !key.info().name.eq_ignore_ascii_case(&name) {
            return Err(not_permitted(&r.key, &r.op));
        }
        let info = key.info();
        let mut out = json!({ "key": info.name });
        let data = || -> Result<Zeroizing<Vec<u8>>, Refusal> {
            unb64(
                "data_b64",
                r.data_b64
                    .as_deref()
                    .ok_or_else(|| refuse("bad_request", format!("{} needs `data_b64`", r.op)))?,
            )
        };
        match r.op.as_str() {
            "encrypt" => {
                let env = key.encrypt(&data()?)?;
                out["version"] = json!(info.current_version);
                out["data_b64"] = json!(b64(&env).as_str());
            }
            "decrypt" => {
                let env = data()?;
                let plain = key.decrypt(&env)?;
                out["version"] =
                    json!(crate::engine::named_keys::envelope_version(&env).unwrap_or(0));
                out["data_b64"] = json!(b64(&plain).as_str());
            }
            "sign" | "mac" => {
                let (v, sig) = key.sign(&data()?)?;
                out["version"] = json!(v);
                out["signature_b64"] = json!(b64(&sig).as_str());
            }
            "verify" => {
                let sig = unb64(
                    "signature_b64",
                    r.signature_b64
                        .as_deref()
                        .ok_or_else(|| refuse("bad_request", "verify needs `signature_b64`"))?,
                )?;
                let v = key.verify(&data()?, &sig, r.version)?;
                out["version"] = json!(v);
                out["valid"] = json!(true);
            }
            "derive" => {
                let ctx = r
                    .context
                    .as_deref()
                    .ok_or_else(|| refuse("bad_request", "derive needs `context`"))?;
                let (v, bytes) = key.derive(ctx.as_bytes(), r.length.unwrap_or(32), r.version)?;
                out["version"] = json!(v);
                out["data_b64"] = json!(b64(&bytes).as_str());
            }
            "public" => {
                let (v, pk) = key.public(r.version)?;
                out["version"] = json!(v);
                out["public_key_b64"] = json!(b64(&pk).as_str());
            }
            _ => {
                out = serde_json::to_value(info).unwrap_or(Json::Null);
            }
        }
        Ok(out)
    }

    /// The open vault (opened now if not yet; caught up with other
    /// processes' writes otherwise, reopened if that fails).
    async fn session(&mut self) -> Result<&mut Session, Refusal> {
        if let Some(s) = self.session.as_mut()
            && s.catch_up().await.is_err()
            && let Some(s) = self.session.take()
        {
            s.close().await;
        }
        if self.session.is_none() {
            let s =
                Session::unlock_with_password_key(&self.ctx.vault, &self.ctx.password_key, None)
                    .await?;
            self.session = Some(s);
        }
        self.session
            .as_mut()
            .ok_or_else(|| refuse("error", "the vault did not open"))
    }
}

fn not_permitted(key: &str, op: &str) -> Refusal {
    refuse(
        "not_permitted",
        format!(
            "operation {op:?} on key {:?} is not permitted: [agent.keys] in the config file does \
             not allow it",
            crate::text::line(key)
        ),
    )
}

/// Whether the peer's program may use a key restricted to some programs.
fn program_allowed(rule: &AgentKeyRule, program: Option<&Path>) -> bool {
    if rule.programs.is_empty() {
        return true;
    }
    program.is_some_and(|p| {
        rule.programs
            .iter()
            .any(|allowed| std::fs::canonicalize(allowed).is_ok_and(|a| a == p) || allowed == p)
    })
}

/// Wipes the strings of an answer that may hold secrets.
fn wipe_json(v: Json) {
    use zeroize::Zeroize as _;
    if let Json::Object(map) = v {
        for (_, value) in map {
            if let Json::String(mut s) = value {
                s.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clis_own_requests_are_not_key_requests() {
        assert!(!is_key_request(br#"{"v":1,"op":"keys"}"#));
        assert!(!is_key_request(br#"{"v":1,"op":"status"}"#));
        assert!(!is_key_request(br#"{"v":7,"op":"lock"}"#));
        assert!(is_key_request(br#"{"op":"encrypt","key":"k"}"#));
        assert!(is_key_request(b"garbage"));
    }

    #[test]
    fn programs_restrict_only_when_named() {
        let open = AgentKeyRule {
            ops: vec!["sign".into()],
            programs: vec![],
        };
        assert!(program_allowed(&open, None));
        let only = AgentKeyRule {
            ops: vec!["sign".into()],
            programs: vec![PathBuf::from("/usr/bin/app")],
        };
        assert!(!program_allowed(&only, None));
        assert!(!program_allowed(&only, Some(Path::new("/usr/bin/other"))));
        assert!(program_allowed(&only, Some(Path::new("/usr/bin/app"))));
    }
}
