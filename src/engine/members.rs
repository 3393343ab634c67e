//! A shared vault's membership log (DESIGN §7): every grant, role change
//! and removal is an entry signed by a manager of the vault, naming the
//! entry before it by hash; the first entry is the creator's, signed with
//! the creator's own key. A client verifies the whole chain before it uses
//! the vault, so a server can neither add a member, raise a role, reorder
//! entries nor drop one (a chain shorter than one this device has seen is
//! refused by [`Membership::check_extends`]).
//!
//! Entries are signed as bytes: the JSON of [`Entry`] (field order fixed
//! by the struct), so that what is verified is exactly what was signed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::crypto::keys::verify_signature;
use crate::crypto::{AccountKeyPair, CryptoError, Key, PublicKeys};

/// What a member may do. Viewers read; editors also write items; managers
/// also manage members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Manager,
}

impl Role {
    /// Whether this role writes items.
    #[must_use]
    pub fn writes(self) -> bool {
        self >= Self::Editor
    }

    /// Whether this role manages members.
    #[must_use]
    pub fn manages(self) -> bool {
        self == Self::Manager
    }

    /// Parses `viewer`, `editor` or `manager`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "manager" => Some(Self::Manager),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Manager => "manager",
        }
    }
}

/// An account as the log names it: its id, email and public keys (the keys
/// its vault key is sealed to, and that check its signatures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub account_id: Uuid,
    pub email: String,
    #[serde(with = "hex32")]
    pub x25519: [u8; 32],
    #[serde(with = "hex32")]
    pub ed25519: [u8; 32],
}

impl Member {
    #[must_use]
    pub fn keys(&self) -> PublicKeys {
        PublicKeys {
            x25519: self.x25519,
            ed25519: self.ed25519,
        }
    }
}

/// What one entry does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// The vault's first entry: its creator, a manager. The versions the
    /// vault held when it was shared (server revisions up to `at_revision`)
    /// are the creator's, though not signed one by one.
    Create { at_revision: i64 },
    /// A new member with a role (an invitation until they accept).
    Grant { role: Role },
    /// Another role for a member.
    SetRole { role: Role },
    /// A manager removes the member; the vault key is rotated in the same
    /// entry (a new epoch, whose key only the remaining members get).
    Remove,
    /// The member leaves, signed by the member itself; the key stays until
    /// a manager's device rotates it ([`Membership::rotation_due`]).
    Leave,
    /// A manager rotates the vault key (after a member left, or on demand);
    /// `member` is the manager.
    Rotate,
}

impl Action {
    /// Whether the entry starts a new key epoch.
    #[must_use]
    pub fn rotates(&self) -> bool {
        matches!(self, Self::Remove | Self::Rotate)
    }
}

/// One entry of the log, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub vault_id: Uuid,
    /// 0 for the creator's entry, then one more each.
    pub seq: u64,
    /// The hash of the entry before ([`SignedEntry::hash`]); zeros first.
    #[serde(with = "hex32")]
    pub prev: [u8; 32],
    pub action: Action,
    /// Whom it is about (for `Create`, the creator).
    pub member: Member,
    /// The vault key's epoch once this entry holds (a removal raises it).
    pub key_epoch: u32,
    /// The manager who signed it.
    pub signer: Uuid,
    /// Unix milliseconds, as the signer's clock says.
    pub at: i64,
    /// [`vault_key_check`] of the key of the epoch this entry starts (the
    /// creator's entry, a removal, a rotation): the signed fact a member
    /// checks the key sealed to it against, so that a server cannot hand it
    /// a key of its own. Absent only in creator entries from before it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex32_opt")]
    pub key_check: Option<[u8; 32]>,
}

/// The public commitment to a shared vault's key of one epoch, as the log
/// entry that starts the epoch carries it.
#[must_use]
pub fn vault_key_check(key: &Key, vault_id: Uuid, epoch: u32) -> [u8; 32] {
    let context = format!("openk/v1/vault-key-check|{vault_id}|{epoch}");
    crate::crypto::keys::key_commitment(key, context.as_bytes())
}

/// An entry with its signature, as stored by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    /// The JSON of the [`Entry`].
    #[serde(with = "b64")]
    pub entry: Vec<u8>,
    /// Ed25519 by the signer over `openk/v1/vault-log` and `entry`.
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
}

const CONTEXT: &[u8] = b"openk/v1/vault-log\0";

fn message(entry: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + entry.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(entry);
    m
}

impl SignedEntry {
    /// Signs `entry` with `signer` (a manager's key pair).
    #[must_use]
    pub fn sign(entry: &Entry, signer: &AccountKeyPair) -> Self {
        let bytes = serde_json::to_vec(entry).unwrap_or_default();
        let signature = signer.sign(&message(&bytes)).to_vec();
        Self {
            entry: bytes,
            signature,
        }
    }

    /// What the next entry names as `prev`: SHA-256 over the entry and its
    /// signature.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"openk/v1/vault-log-hash\0");
        h.update((self.entry.len() as u64).to_be_bytes());
        h.update(&self.entry);
        h.update(&self.signature);
        h.finalize().into()
    }

    fn parsed(&self) -> Result<Entry, LogError> {
        serde_json::from_slice(&self.entry).map_err(|_| LogError::Malformed)
    }
}

/// Why a log is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("the membership log is empty")]
    Empty,
    #[error("an entry of the membership log does not parse")]
    Malformed,
    #[error("entry {0} of the membership log is not for this vault")]
    OtherVault(u64),
    #[error("entry {0} of the membership log is out of order")]
    OutOfOrder(u64),
    #[error("entry {0} of the membership log does not name the entry before it")]
    BrokenChain(u64),
    #[error("entry {0} of the membership log carries no valid signature of its signer")]
    BadSignature(u64),
    #[error("entry {0} of the membership log is signed by someone who is not a manager")]
    NotAManager(u64),
    #[error("entry {0} of the membership log does not apply ({1})")]
    Invalid(u64, &'static str),
    #[error(
        "the membership log ends at entry {have}, but this device has already seen entry {seen}: \
         entries were dropped"
    )]
    Truncated { have: u64, seen: u64 },
    #[error("the membership log differs from the one this device has seen at entry {0}")]
    Forked(u64),
}

/// One member's standing, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub member: Member,
    pub role: Role,
    /// The entry that gave this role.
    pub since: u64,
}

/// A verified log, replayed: who is a member with which role, and the role
/// each account had at each entry.
#[derive(Debug, Clone)]
pub struct Membership {
    pub vault_id: Uuid,
    /// The creator (the anchor: their keys must be known by other means).
    pub creator: Member,
    /// Current members by account id.
    pub members: BTreeMap<Uuid, Standing>,
    /// The current key epoch.
    pub key_epoch: u32,
    /// The last entry's number and hash.
    pub head: (u64, [u8; 32]),
    /// Every entry, parsed, in order.
    pub entries: Vec<Entry>,
}

impl Membership {
    /// Verifies a whole log: the creator's self-signed first entry, then
    /// each entry in order, signed by a manager at that point and naming the
    /// entry before.
    ///
    /// # Errors
    /// The first [`LogError`] met.
    pub fn verify(vault_id: Uuid, log: &[SignedEntry]) -> Result<Self, LogError> {
        let first = log.first().ok_or(LogError::Empty)?;
        let genesis = first.parsed()?;
        if genesis.vault_id != vault_id {
            return Err(LogError::OtherVault(0));
        }
        if genesis.seq != 0 || !matches!(genesis.action, Action::Create { .. }) {
            return Err(LogError::OutOfOrder(0));
        }
        if genesis.prev != [0; 32] {
            return Err(LogError::BrokenChain(0));
        }
        if genesis.signer != genesis.member.account_id {
            return Err(LogError::Invalid(
                0,
                "the creator's entry is signed by another account",
            ));
        }
        verify_signature(
            &genesis.member.ed25519,
            &message(&first.entry),
            &first.signature,
        )
        .map_err(|_| LogError::BadSignature(0))?;
        let mut m = Self {
            vault_id,
            creator: genesis.member.clone(),
            members: BTreeMap::from([(
                genesis.member.account_id,
                Standing {
                    member: genesis.member.clone(),
                    role: Role::Manager,
                    since: 0,
                },
            )]),
            key_epoch: genesis.key_epoch,
            head: (0, first.hash()),
            entries: vec![genesis],
        };
        for signed in &log[1..] {
            m.apply(signed)?;
        }
        Ok(m)
    }

    /// Applies the next entry.
    fn apply(&mut self, signed: &SignedEntry) -> Result<(), LogError> {
        let e = signed.parsed()?;
        let n = self.head.0 + 1;
        if e.vault_id != self.vault_id {
            return Err(LogError::OtherVault(n));
        }
        if e.seq != n {
            return Err(LogError::OutOfOrder(n));
        }
        if e.prev != self.head.1 {
            return Err(LogError::BrokenChain(n));
        }
        let signer = if e.action == Action::Leave {
            // Anyone may leave; only themselves.
            self.members
                .get(&e.signer)
                .filter(|_| e.signer == e.member.account_id)
                .ok_or(LogError::Invalid(
                    n,
                    "a member leaves only by its own entry",
                ))?
        } else {
            self.members
                .get(&e.signer)
                .filter(|s| s.role.manages())
                .ok_or(LogError::NotAManager(n))?
        };
        verify_signature(
            &signer.member.ed25519,
            &message(&signed.entry),
            &signed.signature,
        )
        .map_err(|_| LogError::BadSignature(n))?;
        let id = e.member.account_id;
        let epoch_ok = if e.action.rotates() {
            e.key_epoch == self.key_epoch + 1 && e.key_check.is_some()
        } else {
            e.key_epoch == self.key_epoch
        };
        if !epoch_ok {
            return Err(LogError::Invalid(n, "its key epoch"));
        }
        match e.action {
            Action::Create { .. } => return Err(LogError::Invalid(n, "a second creation")),
            Action::Grant { role } => {
                if self.members.contains_key(&id) {
                    return Err(LogError::Invalid(n, "already a member"));
                }
                self.members.insert(
                    id,
                    Standing {
                        member: e.member.clone(),
                        role,
                        since: n,
                    },
                );
            }
            Action::SetRole { role } => {
                let s = self
                    .members
                    .get_mut(&id)
                    .filter(|s| s.member == e.member)
                    .ok_or(LogError::Invalid(n, "not a member"))?;
                s.role = role;
                s.since = n;
                self.check_managed(n)?;
            }
            Action::Remove | Action::Leave => {
                if self.members.get(&id).is_none_or(|s| s.member != e.member) {
                    return Err(LogError::Invalid(n, "not a member"));
                }
                if id == self.creator.account_id {
                    return Err(LogError::Invalid(n, "the creator stays a member"));
                }
                self.members.remove(&id);
                self.check_managed(n)?;
            }
            Action::Rotate => {
                if e.member.account_id != e.signer {
                    return Err(LogError::Invalid(n, "a rotation names its manager"));
                }
            }
        }
        self.key_epoch = e.key_epoch;
        self.head = (n, signed.hash());
        self.entries.push(e);
        Ok(())
    }

    /// A vault always keeps a manager.
    fn check_managed(&self, n: u64) -> Result<(), LogError> {
        if self.members.values().any(|s| s.role.manages()) {
            Ok(())
        } else {
            Err(LogError::Invalid(
                n,
                "it leaves the vault without a manager",
            ))
        }
    }

    /// The role `account` held once entry `seq` had been applied (`None`:
    /// not a member then).
    #[must_use]
    pub fn role_at(&self, account: Uuid, seq: u64) -> Option<Role> {
        let mut role = None;
        for e in self.entries.iter().take_while(|e| e.seq <= seq) {
            if e.member.account_id != account {
                continue;
            }
            role = match e.action {
                Action::Create { .. } => Some(Role::Manager),
                Action::Grant { role } | Action::SetRole { role } => Some(role),
                Action::Remove | Action::Leave => None,
                Action::Rotate => role,
            };
        }
        role
    }

    /// The member's keys as the entry in force at `seq` names them.
    #[must_use]
    pub fn keys_at(&self, account: Uuid, seq: u64) -> Option<PublicKeys> {
        self.entries
            .iter()
            .take_while(|e| e.seq <= seq)
            .filter(|e| e.member.account_id == account)
            .last()
            .map(|e| e.member.keys())
    }

    /// Refuses this log if it does not extend what this device saw before
    /// (`seen`: the number and hash of the last entry it accepted).
    ///
    /// # Errors
    /// [`LogError::Truncated`] or [`LogError::Forked`].
    pub fn check_extends(
        &self,
        log: &[SignedEntry],
        seen: (u64, [u8; 32]),
    ) -> Result<(), LogError> {
        let (seq, hash) = seen;
        if self.head.0 < seq {
            return Err(LogError::Truncated {
                have: self.head.0,
                seen: seq,
            });
        }
        let at = usize::try_from(seq).map_err(|_| LogError::Forked(seq))?;
        match log.get(at) {
            Some(e) if e.hash() == hash => Ok(()),
            _ => Err(LogError::Forked(seq)),
        }
    }

    /// The next entry: `action` on `member`, by `signer`, at `at`; a
    /// removal raises the key epoch.
    #[must_use]
    pub fn next_entry(&self, action: Action, member: Member, signer: Uuid, at: i64) -> Entry {
        let (seq, prev) = self.next();
        let key_epoch = self.key_epoch + u32::from(action.rotates());
        Entry {
            vault_id: self.vault_id,
            seq,
            prev,
            action,
            member,
            key_epoch,
            signer,
            at,
            key_check: None,
        }
    }

    /// The commitment to the current epoch's key, from the entry that
    /// started the epoch (`None`: a creator entry from before commitments).
    #[must_use]
    pub fn epoch_check(&self) -> Option<[u8; 32]> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.action.rotates() || matches!(e.action, Action::Create { .. }))
            .and_then(|e| e.key_check)
    }

    /// Whether a member left since the key was last rotated: its key still
    /// opens what is written now, until a manager rotates it.
    #[must_use]
    pub fn rotation_due(&self) -> bool {
        self.entries
            .iter()
            .rev()
            .take_while(|e| !e.action.rotates())
            .any(|e| e.action == Action::Leave)
    }

    /// The last server revision the vault had before it was shared: what
    /// its creator wrote before anyone else had its key.
    #[must_use]
    pub fn shared_at(&self) -> i64 {
        match self.entries.first().map(|e| &e.action) {
            Some(Action::Create { at_revision }) => *at_revision,
            _ => 0,
        }
    }

    /// The next entry's number and `prev`.
    #[must_use]
    pub fn next(&self) -> (u64, [u8; 32]) {
        (self.head.0 + 1, self.head.1)
    }
}

/// Who wrote an item version of a shared vault, as the version carries it:
/// the author's account, the log entry in force when they wrote it, and
/// their Ed25519 signature over the version ([`version_message`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorship {
    pub author: Uuid,
    pub log_seq: u64,
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
    /// Not written by `author`, but vouched for: a version the vault held
    /// before it was shared (its creator's), signed by the manager whose
    /// key rotation renumbered it. Signed as such ([`version_message`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attested: bool,
}

impl Authorship {
    /// The authorship a version carries on the wire (opaque to the server),
    /// if it parses.
    #[must_use]
    pub fn from_wire(blob: Option<&openk_server::api::types::B64>) -> Option<Self> {
        blob.and_then(|a| serde_json::from_slice(&a.0).ok())
    }
}

/// Why a version's author is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorError {
    #[error("its author was not an editor or manager of the vault at that point")]
    NotAWriter,
    #[error("it names a membership entry the vault does not have")]
    UnknownEntry,
    #[error("its author's signature does not verify")]
    BadSignature,
}

/// What an author's signature covers of a version's ciphertexts: the
/// SHA-256 of its overview and details (each length-prefixed). The wrapped
/// item key is left out on purpose: a key rotation re-wraps every item key
/// under the new vault key and must not void its author's signature, and a
/// wrapped key that is not the author's cannot open the signed ciphertexts
/// (they are authenticated under the item key).
#[must_use]
pub fn content_hash(overview: &[u8], details: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"openk/v1/item-content\0");
    for part in [overview, details] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// What an author signs for one version: the purpose, the vault, the item,
/// its version, the log entry in force and the [`content_hash`] of the
/// version (zeros for a purge).
#[must_use]
pub fn version_message(
    vault_id: Uuid,
    item_id: Uuid,
    version: u64,
    log_seq: u64,
    content_hash: &[u8; 32],
    attested: bool,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(100);
    m.extend_from_slice(if attested {
        b"openk/v1/item-version-attested\0"
    } else {
        b"openk/v1/item-version-content\0"
    });
    m.extend_from_slice(vault_id.as_bytes());
    m.extend_from_slice(item_id.as_bytes());
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(&log_seq.to_be_bytes());
    m.extend_from_slice(content_hash);
    m
}

impl Membership {
    /// Signs a version written now by `author` (`pair`'s account).
    #[must_use]
    pub fn sign_version(
        &self,
        pair: &AccountKeyPair,
        author: Uuid,
        item_id: Uuid,
        version: u64,
        content_hash: &[u8; 32],
    ) -> Authorship {
        self.sign_as(pair, author, item_id, version, content_hash, false)
    }

    /// Vouches for a version written before the vault was shared, signed
    /// by `author` (a manager) now: see [`Authorship::attested`].
    #[must_use]
    pub fn attest_version(
        &self,
        pair: &AccountKeyPair,
        author: Uuid,
        item_id: Uuid,
        version: u64,
        content_hash: &[u8; 32],
    ) -> Authorship {
        self.sign_as(pair, author, item_id, version, content_hash, true)
    }

    fn sign_as(
        &self,
        pair: &AccountKeyPair,
        author: Uuid,
        item_id: Uuid,
        version: u64,
        content_hash: &[u8; 32],
        attested: bool,
    ) -> Authorship {
        let log_seq = self.head.0;
        let message = version_message(
            self.vault_id,
            item_id,
            version,
            log_seq,
            content_hash,
            attested,
        );
        Authorship {
            author,
            log_seq,
            signature: pair.sign(&message).to_vec(),
            attested,
        }
    }

    /// Accepts a version only from an account the log made an editor or a
    /// manager at the entry it names, signed with the keys that entry knows
    /// for it. A version written under a key epoch the author no longer had
    /// is refused by the epoch check of the caller (the vault key).
    ///
    /// # Errors
    /// The [`AuthorError`].
    pub fn check_version(
        &self,
        by: &Authorship,
        item_id: Uuid,
        version: u64,
        content_hash: &[u8; 32],
    ) -> Result<(), AuthorError> {
        if by.log_seq > self.head.0 {
            return Err(AuthorError::UnknownEntry);
        }
        if !self
            .role_at(by.author, by.log_seq)
            .is_some_and(Role::writes)
        {
            return Err(AuthorError::NotAWriter);
        }
        let keys = self
            .keys_at(by.author, by.log_seq)
            .ok_or(AuthorError::NotAWriter)?;
        let message = version_message(
            self.vault_id,
            item_id,
            version,
            by.log_seq,
            content_hash,
            by.attested,
        );
        verify_signature(&keys.ed25519, &message, &by.signature)
            .map_err(|_| AuthorError::BadSignature)
    }
}

/// What a vault key sealed to a member is bound to: the purpose, and (as
/// associated data) the vault, the key's epoch and the member.
const VAULT_KEY_INFO: &[u8] = b"openk/v1/vault-key";

fn vault_key_aad(vault_id: Uuid, epoch: u32, member: Uuid) -> Vec<u8> {
    format!("{vault_id}|{epoch}|{member}").into_bytes()
}

/// Seals a shared vault's key (of `epoch`) to `member`'s X25519 key (HPKE).
///
/// # Errors
/// A member key no key can be agreed with.
pub fn seal_vault_key(
    vault_key: &Key,
    vault_id: Uuid,
    epoch: u32,
    member: &Member,
) -> Result<Vec<u8>, CryptoError> {
    crate::crypto::hpke::seal_to(
        &member.x25519,
        VAULT_KEY_INFO,
        &vault_key_aad(vault_id, epoch, member.account_id),
        vault_key.expose(),
    )
}

/// Opens a vault key sealed to this account by [`seal_vault_key`].
///
/// # Errors
/// `CryptoError::Decrypt` for a box made for another account, vault or
/// epoch, or altered.
pub fn open_vault_key(
    pair: &AccountKeyPair,
    account_id: Uuid,
    vault_id: Uuid,
    epoch: u32,
    sealed: &[u8],
) -> Result<Key, CryptoError> {
    let plain = crate::crypto::hpke::open_from(
        pair,
        VAULT_KEY_INFO,
        &vault_key_aad(vault_id, epoch, account_id),
        sealed,
    )?;
    let mut bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed)?;
    Ok(Key::from_bytes(&mut bytes))
}

/// 32 bytes as hex in JSON.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::HEXLOWER.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = data_encoding::HEXLOWER
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// An optional 32 bytes as hex in JSON.
mod hex32_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::hex32::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let v = data_encoding::HEXLOWER
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)?;
        v.try_into()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// Bytes as base64 in JSON.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Person {
        pair: AccountKeyPair,
        member: Member,
    }

    fn person(email: &str) -> Person {
        let pair = AccountKeyPair::generate();
        let k = pair.public();
        Person {
            member: Member {
                account_id: Uuid::now_v7(),
                email: email.into(),
                x25519: k.x25519,
                ed25519: k.ed25519,
            },
            pair,
        }
    }

    struct Log {
        vault: Uuid,
        entries: Vec<SignedEntry>,
    }

    impl Log {
        fn new(creator: &Person) -> Self {
            let vault = Uuid::now_v7();
            let e = Entry {
                vault_id: vault,
                seq: 0,
                prev: [0; 32],
                action: Action::Create { at_revision: 0 },
                member: creator.member.clone(),
                key_epoch: 1,
                signer: creator.member.account_id,
                at: 0,
                key_check: None,
            };
            Self {
                vault,
                entries: vec![SignedEntry::sign(&e, &creator.pair)],
            }
        }

        fn state(&self) -> Result<Membership, LogError> {
            Membership::verify(self.vault, &self.entries)
        }

        fn push(&mut self, by: &Person, action: Action, who: &Person) {
            let m = self.state().expect("valid so far");
            let mut e = m.next_entry(action, who.member.clone(), by.member.account_id, 0);
            if e.action.rotates() {
                e.key_check = Some([e.key_epoch as u8; 32]);
            }
            self.entries.push(SignedEntry::sign(&e, &by.pair));
        }

        /// Appends without checking (what a hostile server could store).
        fn push_raw(&mut self, e: &Entry, by: &AccountKeyPair) {
            self.entries.push(SignedEntry::sign(e, by));
        }
    }

    fn team() -> (Person, Person, Person, Log) {
        let ana = person("ana@example.org");
        let ben = person("ben@example.org");
        let cy = person("cy@example.org");
        let mut log = Log::new(&ana);
        log.push(&ana, Action::Grant { role: Role::Editor }, &ben);
        log.push(&ana, Action::Grant { role: Role::Viewer }, &cy);
        (ana, ben, cy, log)
    }

    #[test]
    fn a_valid_log_replays_to_its_members_and_roles() {
        let (ana, ben, cy, mut log) = team();
        log.push(
            &ana,
            Action::SetRole {
                role: Role::Manager,
            },
            &ben,
        );
        log.push(&ben, Action::Remove, &cy);
        let m = log.state().expect("valid");
        assert_eq!(m.members.len(), 2);
        assert_eq!(m.members[&ben.member.account_id].role, Role::Manager);
        assert_eq!(m.key_epoch, 2, "a removal rotates the key");
        assert_eq!(m.role_at(ben.member.account_id, 1), Some(Role::Editor));
        assert_eq!(m.role_at(ben.member.account_id, 3), Some(Role::Manager));
        assert_eq!(m.role_at(cy.member.account_id, 2), Some(Role::Viewer));
        assert_eq!(m.role_at(cy.member.account_id, 4), None);
        assert_eq!(m.role_at(ana.member.account_id, 0), Some(Role::Manager));
        // Round trip through JSON, as the server stores it.
        let json = serde_json::to_string(&log.entries).expect("json");
        let back: Vec<SignedEntry> = serde_json::from_str(&json).expect("parse");
        assert_eq!(
            Membership::verify(log.vault, &back).expect("valid").head,
            m.head
        );
    }

    #[test]
    fn only_managers_sign_and_a_viewer_cannot_raise_itself() {
        let (_ana, ben, cy, mut log) = team();
        // The editor grants; the viewer makes itself manager.
        let m = log.state().expect("valid");
        let (seq, prev) = m.next();
        let e = Entry {
            vault_id: log.vault,
            seq,
            prev,
            action: Action::SetRole {
                role: Role::Manager,
            },
            member: cy.member.clone(),
            key_epoch: m.key_epoch,
            signer: cy.member.account_id,
            at: 0,
            key_check: None,
        };
        log.push_raw(&e, &cy.pair);
        assert_eq!(log.state().expect_err("refused"), LogError::NotAManager(3));
        log.entries.pop();
        let eve = person("eve@example.org");
        let e = Entry {
            action: Action::Grant {
                role: Role::Manager,
            },
            member: eve.member.clone(),
            signer: ben.member.account_id,
            ..e
        };
        log.push_raw(&e, &ben.pair);
        assert_eq!(log.state().expect_err("refused"), LogError::NotAManager(3));
    }

    #[test]
    fn forged_reordered_truncated_or_foreign_logs_are_refused() {
        let (ana, _ben, cy, log) = team();
        // A server's own entry, signed with a key of its own in a manager's name.
        let mut forged = Log {
            vault: log.vault,
            entries: log.entries.clone(),
        };
        let m = forged.state().expect("valid");
        let (seq, prev) = m.next();
        let eve = person("eve@example.org");
        let e = Entry {
            vault_id: log.vault,
            seq,
            prev,
            action: Action::Grant { role: Role::Editor },
            member: eve.member.clone(),
            key_epoch: m.key_epoch,
            signer: ana.member.account_id,
            at: 0,
            key_check: None,
        };
        forged.push_raw(&e, &eve.pair);
        assert_eq!(
            forged.state().expect_err("forged"),
            LogError::BadSignature(3)
        );
        // A tampered byte in a signed entry.
        let mut tampered = log.entries.clone();
        let text = String::from_utf8(tampered[2].entry.clone()).expect("utf8");
        tampered[2].entry = text.replace("viewer", "manager").into_bytes();
        assert_eq!(
            Membership::verify(log.vault, &tampered).expect_err("tampered"),
            LogError::BadSignature(2)
        );
        // Reordered.
        let mut swapped = log.entries.clone();
        swapped.swap(1, 2);
        assert_eq!(
            Membership::verify(log.vault, &swapped).expect_err("reordered"),
            LogError::OutOfOrder(1)
        );
        // Dropped from the middle.
        let mut gap = log.entries.clone();
        gap.remove(1);
        assert_eq!(
            Membership::verify(log.vault, &gap).expect_err("gap"),
            LogError::OutOfOrder(1)
        );
        // Truncated at the end: valid alone, refused against what was seen.
        let full = log.state().expect("valid");
        let short = Membership::verify(log.vault, &log.entries[..2]).expect("a prefix verifies");
        assert_eq!(
            short.check_extends(&log.entries[..2], full.head),
            Err(LogError::Truncated { have: 1, seen: 2 })
        );
        full.check_extends(&log.entries, short.head)
            .expect("extends");
        // Another vault's log, and another creator's first entry.
        assert_eq!(
            Membership::verify(Uuid::now_v7(), &log.entries).expect_err("foreign"),
            LogError::OtherVault(0)
        );
        let other = Log::new(&cy);
        let mut spliced = log.entries.clone();
        spliced[0] = other.entries[0].clone();
        assert!(Membership::verify(log.vault, &spliced).is_err());
        assert_eq!(
            Membership::verify(log.vault, &[]).expect_err("empty"),
            LogError::Empty
        );
    }

    #[test]
    fn entries_must_apply() {
        let (ana, ben, _cy, mut log) = team();
        // Granting a member again.
        let m = log.state().expect("valid");
        let (seq, prev) = m.next();
        let again = Entry {
            vault_id: log.vault,
            seq,
            prev,
            action: Action::Grant {
                role: Role::Manager,
            },
            member: ben.member.clone(),
            key_epoch: m.key_epoch,
            signer: ana.member.account_id,
            at: 0,
            key_check: None,
        };
        log.push_raw(&again, &ana.pair);
        assert!(matches!(log.state(), Err(LogError::Invalid(3, _))));
        log.entries.pop();
        // A removal that does not rotate the key.
        let no_rotation = Entry {
            action: Action::Remove,
            ..again.clone()
        };
        log.push_raw(&no_rotation, &ana.pair);
        assert!(matches!(log.state(), Err(LogError::Invalid(3, _))));
        log.entries.pop();
        // The last manager removing themselves.
        let alone = Entry {
            action: Action::Remove,
            member: ana.member.clone(),
            key_epoch: m.key_epoch + 1,
            key_check: Some([2; 32]),
            ..again.clone()
        };
        log.push_raw(&alone, &ana.pair);
        assert!(matches!(log.state(), Err(LogError::Invalid(3, _))));
        log.entries.pop();
        // A rotation without the commitment to its new key.
        let unchecked = Entry {
            action: Action::Remove,
            key_epoch: m.key_epoch + 1,
            ..again
        };
        log.push_raw(&unchecked, &ana.pair);
        assert!(matches!(
            log.state(),
            Err(LogError::Invalid(3, "its key epoch"))
        ));
    }

    #[test]
    fn members_leave_by_their_own_entry_and_a_manager_rotates_after() {
        let (ana, ben, cy, mut log) = team();
        assert!(!log.state().expect("valid").rotation_due());
        // Cy (a viewer) leaves; the key is due for a rotation.
        log.push(&cy, Action::Leave, &cy);
        let m = log.state().expect("a member leaves by itself");
        assert!(!m.members.contains_key(&cy.member.account_id));
        assert_eq!(m.key_epoch, 1, "leaving does not rotate by itself");
        assert!(m.rotation_due());
        assert_eq!(m.role_at(cy.member.account_id, 3), None);
        // Only a manager rotates, naming itself.
        let (seq, prev) = m.next();
        let by_ben = Entry {
            vault_id: log.vault,
            seq,
            prev,
            action: Action::Rotate,
            member: ben.member.clone(),
            key_epoch: 2,
            signer: ben.member.account_id,
            at: 0,
            key_check: Some([9; 32]),
        };
        log.push_raw(&by_ben, &ben.pair);
        assert_eq!(
            log.state().expect_err("an editor"),
            LogError::NotAManager(4)
        );
        log.entries.pop();
        let for_ben = Entry {
            signer: ana.member.account_id,
            ..by_ben.clone()
        };
        log.push_raw(&for_ben, &ana.pair);
        assert!(matches!(log.state(), Err(LogError::Invalid(4, _))));
        log.entries.pop();
        log.push(&ana, Action::Rotate, &ana);
        let m = log.state().expect("rotated");
        assert_eq!(m.key_epoch, 2);
        assert!(!m.rotation_due());
        assert_eq!(m.epoch_check(), Some([2; 32]));
        assert_eq!(m.role_at(ana.member.account_id, 4), Some(Role::Manager));
        // Nobody leaves in another's name, and the creator does not leave.
        let (seq, prev) = m.next();
        let for_other = Entry {
            vault_id: log.vault,
            seq,
            prev,
            action: Action::Leave,
            member: ben.member.clone(),
            key_epoch: 2,
            signer: ana.member.account_id,
            at: 0,
            key_check: None,
        };
        log.push_raw(&for_other, &ana.pair);
        assert!(matches!(log.state(), Err(LogError::Invalid(5, _))));
        log.entries.pop();
        let creator = Entry {
            member: ana.member.clone(),
            ..for_other
        };
        log.push_raw(&creator, &ana.pair);
        assert!(matches!(log.state(), Err(LogError::Invalid(5, _))));
    }

    #[test]
    fn a_key_check_binds_the_key_vault_and_epoch() {
        let key = Key::random();
        let vault = Uuid::now_v7();
        let c = vault_key_check(&key, vault, 2);
        assert_eq!(c, vault_key_check(&key, vault, 2));
        assert_ne!(c, vault_key_check(&Key::random(), vault, 2));
        assert_ne!(c, vault_key_check(&key, vault, 3));
        assert_ne!(c, vault_key_check(&key, Uuid::now_v7(), 2));
    }

    #[test]
    fn a_vault_key_opens_for_its_member_vault_and_epoch_only() {
        let ana = person("ana@example.org");
        let ben = person("ben@example.org");
        let vault = Uuid::now_v7();
        let key = Key::random();
        let sealed = seal_vault_key(&key, vault, 3, &ben.member).expect("seal");
        let opened =
            open_vault_key(&ben.pair, ben.member.account_id, vault, 3, &sealed).expect("open");
        assert_eq!(opened.expose(), key.expose());
        assert!(open_vault_key(&ana.pair, ana.member.account_id, vault, 3, &sealed).is_err());
        assert!(open_vault_key(&ben.pair, ben.member.account_id, vault, 2, &sealed).is_err());
        assert!(
            open_vault_key(&ben.pair, ben.member.account_id, Uuid::now_v7(), 3, &sealed).is_err()
        );
    }

    /// A viewer (even with a server that stores what it sends) cannot plant
    /// or alter a version others accept; editors and managers can write.
    #[test]
    fn only_writers_at_that_point_author_versions() {
        let (ana, ben, cy, mut log) = team();
        let m = log.state().expect("valid");
        let item = Uuid::now_v7();
        let hash = [7; 32];
        let by_ben = m.sign_version(&ben.pair, ben.member.account_id, item, 2, &hash);
        m.check_version(&by_ben, item, 2, &hash)
            .expect("an editor writes");
        let by_ana = m.sign_version(&ana.pair, ana.member.account_id, item, 3, &hash);
        m.check_version(&by_ana, item, 3, &hash)
            .expect("a manager writes");
        let by_cy = m.sign_version(&cy.pair, cy.member.account_id, item, 3, &hash);
        assert_eq!(
            m.check_version(&by_cy, item, 3, &hash),
            Err(AuthorError::NotAWriter)
        );
        // Ben's signature does not carry over to other bytes, items or versions.
        assert_eq!(
            m.check_version(&by_ben, item, 2, &[8; 32]),
            Err(AuthorError::BadSignature)
        );
        assert_eq!(
            m.check_version(&by_ben, Uuid::now_v7(), 2, &hash),
            Err(AuthorError::BadSignature)
        );
        // Cy claiming to be Ben, with Cy's key.
        let forged = Authorship {
            author: ben.member.account_id,
            ..by_cy.clone()
        };
        assert_eq!(
            m.check_version(&forged, item, 3, &hash),
            Err(AuthorError::BadSignature)
        );
        // An entry from the future.
        let ahead = Authorship {
            log_seq: 99,
            ..by_ben.clone()
        };
        assert_eq!(
            m.check_version(&ahead, item, 2, &hash),
            Err(AuthorError::UnknownEntry)
        );
        // After Ben is demoted, his earlier versions stand, new ones do not.
        log.push(&ana, Action::SetRole { role: Role::Viewer }, &ben);
        let later = log.state().expect("valid");
        later
            .check_version(&by_ben, item, 2, &hash)
            .expect("written while an editor");
        let now = later.sign_version(&ben.pair, ben.member.account_id, item, 4, &hash);
        assert_eq!(
            later.check_version(&now, item, 4, &hash),
            Err(AuthorError::NotAWriter)
        );
    }

    /// A manager vouches for a version written before sharing; the flag is
    /// signed (flipped, it does not verify), and a viewer cannot vouch.
    #[test]
    fn attested_versions_are_signed_as_such() {
        let (ana, _ben, cy, log) = team();
        let m = log.state().expect("valid");
        let item = Uuid::now_v7();
        let hash = [5; 32];
        let a = m.attest_version(&ana.pair, ana.member.account_id, item, 1, &hash);
        assert!(a.attested);
        m.check_version(&a, item, 1, &hash)
            .expect("a manager vouches");
        let flipped = Authorship {
            attested: false,
            ..a.clone()
        };
        assert_eq!(
            m.check_version(&flipped, item, 1, &hash),
            Err(AuthorError::BadSignature)
        );
        let by_cy = m.attest_version(&cy.pair, cy.member.account_id, item, 1, &hash);
        assert_eq!(
            m.check_version(&by_cy, item, 1, &hash),
            Err(AuthorError::NotAWriter)
        );
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!(Role::parse(" Editor "), Some(Role::Editor));
        assert_eq!(Role::parse("owner"), None);
        assert!(Role::Manager.writes() && Role::Editor.writes() && !Role::Viewer.writes());
        assert!(Role::Manager.manages() && !Role::Editor.manages());
    }
}
