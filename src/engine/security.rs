//! The account's security history (issue 13): every security event (a
//! device added, approved or revoked; the password, the Secret Key or a key
//! changed; recovery set up or used; emergency access; a member added,
//! removed or given another role; a named key created or rotated) is an
//! entry signed by the account's identity key (its Ed25519 key, which every
//! device of the account holds) in a per-account hash chain the server
//! stores (`/v1/account/history`) but cannot forge, reorder or drop
//! unnoticed.
//!
//! # Recording an event
//! Call [`Session::record_security`] after the event happened, with its
//! [`SecurityKind`] and a few non-secret facts ([`Detail`]: names, ids,
//! roles, versions; never a key or a password):
//!
//! ```ignore
//! session
//!     .record_security(SecurityKind::KeyRotated, detail([("key", "deploy"), ("version", "3")]))
//!     .await;
//! ```
//!
//! It never fails: the event goes into this device's pending queue (sealed
//! in the vault, so an offline event is not lost) and is sent at once when
//! the vault is logged in, or at the next sync. Sending signs the entry on
//! top of the server's head; when another device appended first the server
//! answers 409 and the entry is signed again on the new head.
//!
//! # The entry
//! `seq` (from 1), `prev` (the hash of the entry before; zeros for the
//! first), `at` (unix seconds, the signing device's clock; not required to
//! grow), `device_id`, `kind` (a stable name; kinds from newer clients are
//! kept as text) and `detail` (a JSON object of strings), encoded as
//! [`openk_server::api::history`] documents (fixed fields and
//! length-prefixed ones, so one set of bytes means one entry) and signed
//! with Ed25519 over `openk/v1/security-history\0 || entry`. The next
//! entry's `prev` is SHA-256 over the entry and its signature. The signing
//! device adds its own name to the detail as `by`.
//!
//! # Verification
//! [`Session::security_history`] reads the whole chain and checks every
//! entry's signature with the account's own public key (the one this device
//! holds), that the numbers run 1, 2, 3 … without a gap and that each entry
//! names the one before by hash. This device remembers the highest entry
//! (number and hash) it has seen or written; a chain that ends below it, or
//! holds another entry at its number, is a dropped tail or a rewrite. Any
//! of these is [`Tamper`], naming the first bad entry.
//!
//! What it cannot see: a server may withhold entries newer than any
//! device of the account has seen (docs/security.md).

use std::collections::BTreeMap;

use openk_server::api::history::{self as format, FORMAT, MAX_DETAIL, MAX_KIND};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{Error, Result};
use super::{Session, open_json, seal_json};
use crate::crypto::keys::verify_signature;
use crate::crypto::{Aad, AccountKeyPair};
use crate::sync::SyncError;

/// The meta key of this device's sealed history state.
pub(super) const HISTORY_KEY: &str = "security_history";
/// The signature's context.
const CONTEXT: &[u8] = b"openk/v1/security-history\0";
/// Entries this device keeps to show offline (the newest).
const KEEP: usize = 500;
/// Events this device keeps queued at most while it cannot send them (the
/// oldest go first, with a warning).
const MAX_PENDING: usize = 1000;
/// Times an append is signed again after another device appended first.
const RETRIES: usize = 8;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityKind {
    /// A device of the account joined it (registered, or logged in).
    DeviceAdded,
    /// A signed-in device approved a new one.
    DeviceApproved,
    DeviceRevoked,
    /// The master password was changed.
    PasswordChanged,
    SecretKeyRotated,
    AccountKeyRotated,
    /// A vault's key was rotated.
    VaultKeyRotated,
    RecoverySetup,
    RecoveryUsed,
    EmergencyGranted,
    EmergencyRequested,
    EmergencyDenied,
    EmergencyReleased,
    EmergencyRevoked,
    /// A contact with a released takeover grant set new credentials.
    EmergencyTakeover,
    /// This account invited another one to a shared vault.
    MemberInvited,
    /// This account joined a vault shared with it.
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    /// This account left a vault shared with it.
    MemberLeft,
    /// A named key was created.
    KeyCreated,
    KeyRotated,
    /// A kind this build does not know (a newer client's), as written.
    Other(String),
}

impl SecurityKind {
    /// Every kind this build knows, in order.
    pub const KNOWN: [Self; 22] = [
        Self::DeviceAdded,
        Self::DeviceApproved,
        Self::DeviceRevoked,
        Self::PasswordChanged,
        Self::SecretKeyRotated,
        Self::AccountKeyRotated,
        Self::VaultKeyRotated,
        Self::RecoverySetup,
        Self::RecoveryUsed,
        Self::EmergencyGranted,
        Self::EmergencyRequested,
        Self::EmergencyDenied,
        Self::EmergencyReleased,
        Self::EmergencyRevoked,
        Self::MemberInvited,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::MemberRoleChanged,
        Self::MemberLeft,
        Self::KeyCreated,
        Self::KeyRotated,
        Self::EmergencyTakeover,
    ];

    /// The stable name (what is signed).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::DeviceAdded => "device_added",
            Self::DeviceApproved => "device_approved",
            Self::DeviceRevoked => "device_revoked",
            Self::PasswordChanged => "password_changed",
            Self::SecretKeyRotated => "secret_key_rotated",
            Self::AccountKeyRotated => "account_key_rotated",
            Self::VaultKeyRotated => "vault_key_rotated",
            Self::RecoverySetup => "recovery_setup",
            Self::RecoveryUsed => "recovery_used",
            Self::EmergencyGranted => "emergency_granted",
            Self::EmergencyRequested => "emergency_requested",
            Self::EmergencyDenied => "emergency_denied",
            Self::EmergencyReleased => "emergency_released",
            Self::EmergencyRevoked => "emergency_revoked",
            Self::EmergencyTakeover => "emergency_takeover",
            Self::MemberInvited => "member_invited",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::MemberRoleChanged => "member_role_changed",
            Self::MemberLeft => "member_left",
            Self::KeyCreated => "key_created",
            Self::KeyRotated => "key_rotated",
            Self::Other(s) => s,
        }
    }

    /// The kind a name stands for (an unknown name: [`Self::Other`]).
    #[must_use]
    pub fn parse(name: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|k| k.as_str() == name)
            .cloned()
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }
}

impl std::fmt::Display for SecurityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SecurityKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SecurityKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

/// An event's non-secret facts, by name (sorted: one encoding).
pub type Detail = BTreeMap<String, String>;

/// A [`Detail`] from pairs.
#[must_use]
pub fn detail<const N: usize>(pairs: [(&str, &str); N]) -> Detail {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// One entry of the chain, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEntry {
    /// From 1, one more each.
    pub seq: u64,
    /// The hash of the entry before (zeros for the first).
    #[serde(serialize_with = "hex")]
    pub prev: [u8; 32],
    /// Unix seconds, as the signing device's clock said.
    pub at: i64,
    /// The device that signed it.
    pub device_id: Uuid,
    pub kind: SecurityKind,
    pub detail: Detail,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn hex<S: serde::Serializer>(v: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&data_encoding::HEXLOWER.encode(v))
}

impl SecurityEntry {
    /// The bytes that are signed (after the context): the record's
    /// layout without the signature. A kind or detail over the bounds is cut
    /// (the kind) or replaced by a note that it was too long (the detail).
    fn encode(&self) -> Vec<u8> {
        let kind = cut(self.kind.as_str(), MAX_KIND);
        let mut detail = serde_json::to_vec(&self.detail).unwrap_or_else(|_| b"{}".to_vec());
        if detail.len() > MAX_DETAIL {
            detail = br#"{"note":"the detail was too long to keep"}"#.to_vec();
        }
        let mut e = Vec::with_capacity(format::HEADER_LEN + kind.len() + 4 + detail.len());
        e.push(FORMAT);
        e.extend_from_slice(&self.seq.to_be_bytes());
        e.extend_from_slice(&self.prev);
        e.extend_from_slice(&self.at.to_be_bytes());
        e.extend_from_slice(self.device_id.as_bytes());
        e.extend_from_slice(&u16::try_from(kind.len()).unwrap_or(0).to_be_bytes());
        e.extend_from_slice(kind.as_bytes());
        e.extend_from_slice(&u32::try_from(detail.len()).unwrap_or(0).to_be_bytes());
        e.extend_from_slice(&detail);
        e
    }

    /// The signed record: the entry and its Ed25519 signature by `signer`.
    #[must_use]
    pub fn sign(&self, signer: &AccountKeyPair) -> Vec<u8> {
        let mut record = self.encode();
        let mut message = CONTEXT.to_vec();
        message.extend_from_slice(&record);
        record.extend_from_slice(&signer.sign(&message));
        record
    }

    /// Opens a signed record: its layout, its signature by `public` (the
    /// account's Ed25519 key) and its fields.
    ///
    /// # Errors
    /// Why it is not an entry this account signed.
    pub fn open(record: &[u8], public: &[u8; 32]) -> std::result::Result<Self, String> {
        let p = format::split(record).map_err(|why| format!("it is malformed ({why})"))?;
        let mut message = CONTEXT.to_vec();
        message.extend_from_slice(p.entry);
        verify_signature(public, &message, p.signature).map_err(|_| {
            "it does not carry a valid signature of this account's key (forged or altered)"
                .to_owned()
        })?;
        let kind = std::str::from_utf8(p.kind).map_err(|_| "its kind is not text".to_owned())?;
        let detail: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(p.detail).map_err(|_| "its detail is not a JSON object")?;
        let detail = detail
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        Ok(Self {
            seq: p.seq,
            prev: p.prev,
            at: p.at,
            device_id: Uuid::from_bytes(p.device_id),
            kind: SecurityKind::parse(kind),
            detail,
        })
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What is wrong with the chain the server showed: the first bad entry's
/// number and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tamper {
    pub seq: u64,
    pub what: String,
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// A verified entry with its record's hash.
#[derive(Debug, Clone)]
struct Checked {
    entry: SecurityEntry,
    hash: [u8; 32],
}

/// The highest entry a device has seen or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// Checks `records`, which must be entries `first`, `first + 1`, … in
/// order, signed by `public`; the first names `prev` as the entry before
/// (when known: `None` when `first` > 1 and its predecessor was not
/// fetched). Stops at the first bad one: the good ones before it, and what
/// is wrong.
fn walk(
    public: &[u8; 32],
    records: &[Vec<u8>],
    first: u64,
    prev: Option<[u8; 32]>,
) -> (Vec<Checked>, Option<Tamper>) {
    let mut out: Vec<Checked> = Vec::with_capacity(records.len());
    let mut expected_prev = prev;
    for (i, record) in records.iter().enumerate() {
        let seq = first + i as u64;
        let entry = match SecurityEntry::open(record, public) {
            Ok(e) => e,
            Err(why) => {
                let what = format!("entry {seq} is not genuine: {why}");
                return (out, Some(Tamper { seq, what }));
            }
        };
        if entry.seq != seq {
            let what = if entry.seq > seq {
                format!(
                    "entry {seq} is missing: the server sent entry {} in its place (dropped)",
                    entry.seq
                )
            } else {
                format!(
                    "entry {seq} is missing: the server sent entry {} again in its place \
                     (reordered or replayed)",
                    entry.seq
                )
            };
            return (out, Some(Tamper { seq, what }));
        }
        if expected_prev.is_some_and(|p| p != entry.prev) {
            let what = format!(
                "entry {seq} does not follow entry {}: the hash it names is not that entry's \
                 (reordered, replaced or an entry dropped)",
                seq - 1
            );
            return (out, Some(Tamper { seq, what }));
        }
        let hash = format::record_hash(record);
        expected_prev = Some(hash);
        out.push(Checked { entry, hash });
    }
    (out, None)
}

/// Checks a whole chain from entry 1 against the head the server claims
/// (`server_head`) and the one this device remembers.
fn check_chain(
    public: &[u8; 32],
    records: &[Vec<u8>],
    server_head: u64,
    remembered: Head,
) -> (Vec<Checked>, Option<Tamper>) {
    let (good, bad) = walk(public, records, 1, Some([0; 32]));
    if bad.is_some() {
        return (good, bad);
    }
    let n = good.len() as u64;
    if n < server_head {
        let what = format!(
            "the server says its history has {server_head} entries but sent {n}: entry {} is \
             missing",
            n + 1
        );
        return (good, Some(Tamper { seq: n + 1, what }));
    }
    let bad = against_remembered(&good, 1, remembered);
    (good, bad)
}

/// Whether `good` (entries from `first` on) holds the remembered head.
fn against_remembered(good: &[Checked], first: u64, remembered: Head) -> Option<Tamper> {
    if remembered.seq == 0 {
        return None;
    }
    let last = first + good.len() as u64 - 1;
    if good.is_empty() || last < remembered.seq {
        let from = if good.is_empty() { first } else { last + 1 };
        return Some(Tamper {
            seq: from,
            what: format!(
                "entries {from} to {} are missing: this device has seen the history up to \
                 entry {}, the server's ends before it (its tail was dropped or rolled back)",
                remembered.seq, remembered.seq
            ),
        });
    }
    let at = usize::try_from(remembered.seq - first).unwrap_or(usize::MAX);
    match good.get(at) {
        Some(c) if c.hash == remembered.hash => None,
        _ => Some(Tamper {
            seq: remembered.seq,
            what: format!(
                "entry {} is not the one this device saw: the server's history was rewritten \
                 from there (or it shows the devices different histories)",
                remembered.seq
            ),
        }),
    }
}

/// An event waiting to be signed and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    kind: String,
    detail: Detail,
    at: i64,
}

/// What this device keeps of the history, sealed with the account key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Local {
    /// The highest entry seen or written (0: none).
    head_seq: u64,
    #[serde(with = "hexvec")]
    head_hash: Vec<u8>,
    /// Events not sent yet, oldest first.
    pending: Vec<Pending>,
    /// The newest verified records (at most [`KEEP`]), in order.
    known: Vec<openk_server::api::types::B64>,
}

mod hexvec {
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ptr_arg)] // serde's signature
    pub fn serialize<S: Serializer>(v: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        data_encoding::HEXLOWER
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

impl Local {
    fn head(&self) -> Head {
        let mut hash = [0u8; 32];
        if self.head_hash.len() == 32 {
            hash.copy_from_slice(&self.head_hash);
        }
        Head {
            seq: self.head_seq,
            hash,
        }
    }

    /// Remembers `checked` (in order, contiguous) as seen.
    fn saw(&mut self, checked: &[Checked], records: &[Vec<u8>]) {
        let Some(last) = checked.last() else {
            return;
        };
        if last.entry.seq >= self.head_seq {
            self.head_seq = last.entry.seq;
            self.head_hash = last.hash.to_vec();
        }
        let first = checked[0].entry.seq;
        let run = records[..checked.len()]
            .iter()
            .map(|r| openk_server::api::types::B64(r.clone()));
        // The known records stay one run: what follows on from (or
        // overlaps the end of) it extends it; anything else replaces it.
        match self.known_first() {
            Some(kf) if first >= kf && first <= kf + self.known.len() as u64 => {
                self.known
                    .truncate(usize::try_from(first - kf).unwrap_or(usize::MAX));
                self.known.extend(run);
            }
            _ => self.known = run.collect(),
        }
        if self.known.len() > KEEP {
            let drop = self.known.len() - KEEP;
            self.known.drain(..drop);
        }
    }

    /// The number of the first known record.
    fn known_first(&self) -> Option<u64> {
        let first = self.known.first()?;
        format::split(&first.0).ok().map(|p| p.seq)
    }
}

/// One entry as shown: the entry, its record's hash, and whether it is
/// still waiting to be sent (then it is not signed yet: no `seq`).
#[derive(Debug, Clone, Serialize)]
pub struct ShownEntry {
    /// 0 for an event not sent yet.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    pub device_id: Uuid,
    /// The signing device's name as it signed it (`by` in the detail).
    pub device: String,
    pub kind: SecurityKind,
    /// The facts, without `by`.
    pub detail: Detail,
    /// The record's SHA-256 (hex); empty for a pending event.
    pub hash: String,
    /// Not sent yet (this device's, queued).
    pub pending: bool,
}

impl ShownEntry {
    fn of(c: &Checked) -> Self {
        let mut detail = c.entry.detail.clone();
        let device = detail.remove("by").unwrap_or_default();
        Self {
            seq: c.entry.seq,
            at: c.entry.at,
            device_id: c.entry.device_id,
            device,
            kind: c.entry.kind.clone(),
            detail,
            hash: data_encoding::HEXLOWER.encode(&c.hash),
            pending: false,
        }
    }
}

/// The security history as this device could check it.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityHistory {
    /// The whole chain the server holds was read and holds up.
    pub verified: bool,
    /// The server was asked (false: offline, or not connected; `entries`
    /// are what this device knows).
    pub checked_server: bool,
    /// The verified entries, oldest first (on tampering: those before the
    /// first bad one), then this device's pending events.
    pub entries: Vec<ShownEntry>,
    /// What is wrong with the server's chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tampering: Option<Tamper>,
    /// Why the server could not be asked (offline, not connected, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Session {
    /// Records a security event (see the module documentation): queued
    /// here, sent at once when the vault is logged in, or at the next sync.
    /// Never fails: an event that cannot be queued is logged.
    pub async fn record_security(&mut self, kind: SecurityKind, mut detail: Detail) {
        if let Some(r) = &self.remote {
            detail
                .entry("by".into())
                .or_insert_with(|| r.device_name.clone());
        }
        let event = Pending {
            kind: kind.as_str().to_owned(),
            detail,
            at: super::model::now_millis() / 1000,
        };
        let queued = async {
            let mut local = self.history_local().await?;
            local.pending.push(event);
            if local.pending.len() > MAX_PENDING {
                let drop = local.pending.len() - MAX_PENDING;
                tracing::warn!(
                    dropped = drop,
                    "too many security events wait to be sent; the oldest are dropped"
                );
                local.pending.drain(..drop);
            }
            self.save_history_local(&local).await
        };
        if let Err(e) = queued.await {
            tracing::warn!(%kind, error = %e, "security event not recorded");
            return;
        }
        if self.is_logged_in()
            && let Err(e) = self.push_security().await
        {
            tracing::debug!(%kind, error = %e, "security event queued; sent at the next sync");
        }
    }

    /// A detail naming a vault (its id and, when this device holds it, its
    /// name) and more facts.
    pub(super) fn vault_detail<const N: usize>(
        &self,
        vault_id: Uuid,
        more: [(&str, &str); N],
    ) -> Detail {
        let mut d = detail(more);
        d.insert("vault_id".into(), vault_id.to_string());
        if let Some(v) = self.vaults.iter().find(|v| v.id == vault_id) {
            d.insert("vault".into(), v.name.clone());
        }
        d
    }

    /// The events this device has not sent yet.
    ///
    /// # Errors
    /// [`Error::Tampered`] when the sealed state does not open; database errors.
    pub async fn pending_security(&self) -> Result<usize> {
        Ok(self.history_local().await?.pending.len())
    }

    /// Sends this device's pending events: each signed on top of the
    /// server's head (read and checked from the head this device
    /// remembers), again when another device appended first. Returns how
    /// many were sent.
    ///
    /// # Errors
    /// [`Error::HistoryTampered`] when the server's chain does not hold up
    /// (nothing is sent); network errors (the events stay queued).
    pub(super) async fn push_security(&mut self) -> Result<usize> {
        let mut local = self.history_local().await?;
        if local.pending.is_empty() {
            return Ok(0);
        }
        let mut sent = 0;
        let mut retries = 0;
        while let Some(next) = local.pending.first().cloned() {
            self.catch_up_history(&mut local).await?;
            let head = local.head();
            let mut detail = next.detail.clone();
            // An event recorded before the vault had a server: named now.
            if let Some(r) = &self.remote {
                detail
                    .entry("by".into())
                    .or_insert_with(|| r.device_name.clone());
            }
            let entry = SecurityEntry {
                seq: head.seq + 1,
                prev: head.hash,
                at: next.at,
                device_id: self.header.device_id,
                kind: SecurityKind::parse(&next.kind),
                detail,
            };
            let record = entry.sign(&self.keypair);
            let sending = record.clone();
            match self
                .authed(|c| {
                    let r = sending.clone();
                    async move { c.append_history(&r).await }
                })
                .await
            {
                Ok(_) => {
                    let checked = Checked {
                        entry,
                        hash: format::record_hash(&record),
                    };
                    local.saw(&[checked], &[record]);
                    local.pending.remove(0);
                    self.save_history_local(&local).await?;
                    sent += 1;
                }
                Err(Error::Remote(SyncError::Conflict(_))) if retries < RETRIES => {
                    retries += 1;
                }
                Err(e) => {
                    self.save_history_local(&local).await?;
                    return Err(e);
                }
            }
        }
        Ok(sent)
    }

    /// Reads the entries after the head this device remembers (from that
    /// entry itself, to check it is still the one seen) and checks them;
    /// `local` then remembers the server's head.
    async fn catch_up_history(&mut self, local: &mut Local) -> Result<()> {
        let remembered = local.head();
        let public = self.keypair.public().ed25519;
        let after = remembered.seq.saturating_sub(1);
        let (records, server_head) = self.fetch_history(after).await?;
        let first = after + 1;
        let prev = (first == 1).then_some([0u8; 32]);
        let (good, bad) = walk(&public, &records, first, prev);
        if let Some(t) = bad {
            return Err(Error::HistoryTampered(t));
        }
        if let Some(t) = against_remembered(&good, first, remembered) {
            return Err(Error::HistoryTampered(t));
        }
        let last = first + good.len() as u64 - 1;
        if good.len() as u64 + after < server_head {
            return Err(Error::HistoryTampered(Tamper {
                seq: last + 1,
                what: format!(
                    "the server says its history has {server_head} entries but sent up to {last}: \
                     entry {} is missing",
                    last + 1
                ),
            }));
        }
        local.saw(&good, &records);
        Ok(())
    }

    /// Every entry after `after`, page by page, and the server's head.
    async fn fetch_history(&mut self, after: u64) -> Result<(Vec<Vec<u8>>, u64)> {
        let mut records = Vec::new();
        let mut cursor = after;
        let mut head = 0;
        loop {
            let page = self
                .authed(move |c| async move { c.history(cursor).await })
                .await?;
            head = head.max(u64::try_from(page.head).unwrap_or(0));
            let n = page.entries.len() as u64;
            records.extend(page.entries.into_iter().map(|b| b.0));
            cursor += n;
            // A server that says "more" without sending any is not followed.
            if !page.has_more || n == 0 {
                break;
            }
        }
        Ok((records, head))
    }

    /// The security history: the whole chain read from the server and
    /// checked (see the module documentation), this device's pending events
    /// sent first; offline (or not connected), what this device knows.
    /// Never fails for the server's sake: tampering and problems are in the
    /// answer.
    ///
    /// # Errors
    /// Database errors, or this device's sealed history state not opening.
    pub async fn security_history(&mut self) -> Result<SecurityHistory> {
        let mut problem = None;
        if self.remote.is_none() {
            problem = Some("this vault is not connected to a server".to_owned());
        } else if let Err(e) = self.push_security().await {
            match e {
                Error::HistoryTampered(t) => return self.tampered_history(t).await,
                e => problem = Some(problem_text(&e)),
            }
        }
        let mut local = self.history_local().await?;
        let public = self.keypair.public().ed25519;
        if problem.is_none() {
            match self.fetch_history(0).await {
                Ok((records, server_head)) => {
                    let (good, bad) = check_chain(&public, &records, server_head, local.head());
                    let mut entries: Vec<ShownEntry> = good.iter().map(ShownEntry::of).collect();
                    if bad.is_none() {
                        local.saw(&good, &records);
                        self.save_history_local(&local).await?;
                    }
                    entries.extend(pending_shown(&local, self.header.device_id));
                    return Ok(SecurityHistory {
                        verified: bad.is_none(),
                        checked_server: true,
                        entries,
                        tampering: bad,
                        problem: None,
                    });
                }
                Err(e) => problem = Some(problem_text(&e)),
            }
        }
        Ok(SecurityHistory {
            verified: false,
            checked_server: false,
            entries: self.known_shown(&local),
            tampering: None,
            problem,
        })
    }

    /// The answer when reading the head already showed tampering: what this
    /// device knows, and what is wrong.
    async fn tampered_history(&self, t: Tamper) -> Result<SecurityHistory> {
        let local = self.history_local().await?;
        Ok(SecurityHistory {
            verified: false,
            checked_server: true,
            entries: self.known_shown(&local),
            tampering: Some(t),
            problem: None,
        })
    }

    /// The entries this device keeps (checked again), then its pending ones.
    fn known_shown(&self, local: &Local) -> Vec<ShownEntry> {
        let public = self.keypair.public().ed25519;
        let records: Vec<Vec<u8>> = local.known.iter().map(|b| b.0.clone()).collect();
        let first = local.known_first().unwrap_or(1);
        let prev = (first == 1).then_some([0u8; 32]);
        let (good, _) = walk(&public, &records, first, prev);
        let mut out: Vec<ShownEntry> = good.iter().map(ShownEntry::of).collect();
        out.extend(pending_shown(local, self.header.device_id));
        out
    }

    async fn history_local(&self) -> Result<Local> {
        let Some(blob) = self.store.meta(HISTORY_KEY).await? else {
            return Ok(Local::default());
        };
        open_json(
            &self.account_key,
            &Aad::security_history(self.header.account_id),
            &blob,
        )
        .map_err(|_| Error::Tampered("the security history state".into()))
    }

    async fn save_history_local(&self, local: &Local) -> Result<()> {
        let blob = seal_json(
            &self.account_key,
            &Aad::security_history(self.header.account_id),
            local,
        );
        self.store.set_meta(HISTORY_KEY, Some(&blob)).await?;
        Ok(())
    }
}

/// Why the server could not be asked, as said to the user.
fn problem_text(e: &Error) -> String {
    match e {
        Error::NotFound(_) | Error::Remote(SyncError::NotFound) => {
            "the server does not keep a security history (it runs an older OpenK)".to_owned()
        }
        e => e.to_string(),
    }
}

fn pending_shown(local: &Local, device_id: Uuid) -> impl Iterator<Item = ShownEntry> + '_ {
    local.pending.iter().map(move |p| {
        let mut detail = p.detail.clone();
        let device = detail.remove("by").unwrap_or_default();
        ShownEntry {
            seq: 0,
            at: p.at,
            device_id,
            device,
            kind: SecurityKind::parse(&p.kind),
            detail,
            hash: String::new(),
            pending: true,
        }
    })
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
