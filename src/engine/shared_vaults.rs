//! Shared vaults on this device (DESIGN §7): making a vault shared,
//! inviting an account with a role (its keys pinned and shown as a
//! fingerprint first), accepting an invitation, listing members. What the
//! server says is checked: the membership log is verified from the
//! creator's entry (whose keys must be the owner's pinned keys, or this
//! account's own), and the sealed vault key must be this account's.
//!
//! A shared vault's key, once opened, is kept wrapped under this account's
//! key like a personal vault's, so the rest of the engine (items, search,
//! sync) treats both alike. What this device knows about its shared vaults
//! (the owner, the role, the last log entry it accepted) is sealed with the
//! account key in the vault's meta table.

use super::security::SecurityKind;
use std::collections::BTreeMap;

use openk_server::api::types::{self as wire, AppendLogRequest, LogEntry, MemberChange};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::contacts::{Contact, Trust, digits};
use super::error::{Error, Result};
use super::members::{
    Action, Authorship, Entry, Member, Membership, Role, SignedEntry, open_vault_key,
    seal_vault_key, vault_key_check,
};
use super::model::now_millis;
use super::vault::Vault;
use super::{Session, open_json, seal_json};
use crate::crypto::{self, Aad};
use crate::store::VaultRecord;

/// The meta key of the sealed share states.
pub(super) const SHARES_KEY: &str = "shares";
/// The first vault key's epoch.
pub(super) const FIRST_EPOCH: u32 = 1;

/// What this device keeps about one shared vault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ShareState {
    pub(super) owner_email: String,
    /// This account created it.
    pub(super) mine: bool,
    pub(super) role: Role,
    /// The last log entry accepted here (number, hash in hex).
    pub(super) seen_seq: u64,
    pub(super) seen_hash: String,
}

/// One vault as the front ends list it.
#[derive(Debug, Clone, Serialize)]
pub struct VaultInfo {
    pub id: Uuid,
    pub name: String,
    /// `None` for a personal vault.
    pub shared: Option<SharedInfo>,
}

/// A shared vault's standing on this device.
#[derive(Debug, Clone, Serialize)]
pub struct SharedInfo {
    pub owner_email: String,
    pub role: Role,
    pub mine: bool,
}

/// An invitation waiting for this account's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    pub vault_id: Uuid,
    /// As the vault's metadata says (sealed with the vault key); data to
    /// strip of terminal controls before it is shown.
    pub name: String,
    pub owner_email: String,
    pub role: String,
}

/// A member as the verified log shows it, with this device's trust in its
/// keys.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub email: String,
    pub account_id: Uuid,
    pub role: Role,
    pub fingerprint: String,
    /// `pinned`, `verified`, `CHANGED`, `you` (or `unknown`: never looked
    /// up on this device).
    pub trust: String,
    /// Accepted (`active`) or still `invited`, as the server says.
    pub status: String,
}

pub(super) fn me_as_member(s: &Session) -> Result<Member> {
    let keys = s.keypair.public();
    Ok(Member {
        account_id: s.header.account_id,
        email: s.remote_or_err()?.email.clone(),
        x25519: keys.x25519,
        ed25519: keys.ed25519,
    })
}

pub(super) fn entry_wire(signed: &SignedEntry, seq: u64) -> LogEntry {
    LogEntry {
        seq,
        entry: wire::B64(signed.entry.clone()),
        signature: wire::B64(signed.signature.clone()),
    }
}

/// A vault name: 1 to 100 printable characters, trimmed.
fn check_vault_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 100 {
        return Err(Error::Invalid(
            "a vault name must be 1 to 100 printable characters".into(),
        ));
    }
    Ok(name)
}

pub(super) fn untrusted(vault_id: Uuid, e: impl std::fmt::Display) -> Error {
    Error::Untrusted(format!("shared vault {vault_id}: {e}"))
}

impl Session {
    /// The vaults on this device, personal and shared.
    ///
    /// # Errors
    /// [`Error::Tampered`] when the sealed share states do not open.
    pub async fn vault_list(&self) -> Result<Vec<VaultInfo>> {
        let shares = self.shares().await?;
        Ok(self
            .vaults
            .iter()
            .map(|v| VaultInfo {
                id: v.id,
                name: v.name.clone(),
                shared: shares.get(&v.id).map(|s| SharedInfo {
                    owner_email: s.owner_email.clone(),
                    role: s.role,
                    mine: s.mine,
                }),
            })
            .collect())
    }

    /// The vault a name or id (or id prefix) names.
    ///
    /// # Errors
    /// [`Error::NoSuchVault`] or [`Error::AmbiguousVault`].
    pub fn resolve_vault(&self, query: &str) -> Result<Uuid> {
        let q = query.trim();
        let by_name: Vec<&Vault> = self
            .vaults
            .iter()
            .filter(|v| v.name.eq_ignore_ascii_case(q))
            .collect();
        let found: Vec<&Vault> = if by_name.is_empty() {
            self.vaults
                .iter()
                .filter(|v| !q.is_empty() && v.id.to_string().starts_with(&q.to_lowercase()))
                .collect()
        } else {
            by_name
        };
        match found.as_slice() {
            [v] => Ok(v.id),
            [] => Err(Error::NoSuchVault {
                query: q.to_owned(),
                known: self.vaults.iter().map(|v| v.name.clone()).collect(),
            }),
            many => Err(Error::AmbiguousVault {
                query: q.to_owned(),
                candidates: many
                    .iter()
                    .map(|v| format!("{}  {}", v.id, v.name))
                    .collect(),
            }),
        }
    }

    /// Creates a vault on this device (the next sync puts it on the server).
    ///
    /// # Errors
    /// An empty name or one another vault has; database errors.
    pub async fn create_vault(&mut self, name: &str) -> Result<Uuid> {
        let name = check_vault_name(name)?;
        if self
            .vaults
            .iter()
            .any(|v| v.name.eq_ignore_ascii_case(name))
        {
            return Err(Error::Invalid(format!(
                "a vault named {name:?} already exists"
            )));
        }
        let (vault, record) = Vault::create(
            &self.account_key,
            self.header.account_id,
            name,
            now_millis(),
        );
        self.store.insert_vault(&record).await?;
        let id = vault.id;
        self.vaults.push(vault);
        tracing::info!(vault = %id, "created a vault");
        Ok(id)
    }

    /// Renames a vault: here, and on the server when this device is logged
    /// in (its owner, or a manager of a shared vault); other devices and
    /// members take the name at their next sync.
    ///
    /// # Errors
    /// A bad or taken name; not a manager; network errors (nothing renamed).
    pub async fn rename_vault(&mut self, vault_id: Uuid, name: &str) -> Result<()> {
        let name = check_vault_name(name)?;
        if self
            .vaults
            .iter()
            .any(|v| v.id != vault_id && v.name.eq_ignore_ascii_case(name))
        {
            return Err(Error::Invalid(format!(
                "a vault named {name:?} already exists"
            )));
        }
        if self.is_logged_in() && self.shares().await?.contains_key(&vault_id) {
            // Sealed under the key of the vault's current epoch.
            self.take_current_key(vault_id).await?;
        }
        let vault = self
            .vaults
            .iter()
            .find(|v| v.id == vault_id)
            .ok_or_else(|| Error::NotFound(format!("vault {vault_id}")))?;
        let meta = vault.sealed_meta(name);
        if self.is_logged_in() {
            let on_server = self.authed(|c| async move { c.vaults().await }).await?;
            if on_server.iter().any(|v| v.id == vault_id) || self.is_others(vault_id).await? {
                let m = meta.clone();
                self.authed(|c| {
                    let m = m.clone();
                    async move { c.update_vault(vault_id, &m).await }
                })
                .await?;
            }
        }
        self.store.set_vault_meta(vault_id, &meta).await?;
        if let Some(v) = self.vaults.iter_mut().find(|v| v.id == vault_id) {
            v.name = name.to_owned();
        }
        Ok(())
    }

    /// Takes a vault's name from the server's metadata when it opens with
    /// the vault's key and differs (a rename on another device or by a
    /// manager).
    pub(super) async fn take_name(&mut self, vault_id: Uuid, meta: &[u8]) -> Result<()> {
        let Some(v) = self.vaults.iter_mut().find(|v| v.id == vault_id) else {
            return Ok(());
        };
        match v.name_in(meta) {
            Some(name) if name != v.name => {
                v.name = name;
                self.store.set_vault_meta(vault_id, meta).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The verified membership log of a vault the server has, checked
    /// against what this device accepted before and anchored on the
    /// creator (this account, or the owner's pinned keys).
    pub(super) async fn verified_log(
        &mut self,
        vault_id: Uuid,
        owner_email: &str,
    ) -> Result<Membership> {
        let entries = self
            .authed(|c| async move { c.vault_log(vault_id).await })
            .await?;
        let log: Vec<SignedEntry> = entries
            .into_iter()
            .map(|e| SignedEntry {
                entry: e.entry.0,
                signature: e.signature.0,
            })
            .collect();
        let m = Membership::verify(vault_id, &log).map_err(|e| untrusted(vault_id, e))?;
        if m.creator.account_id == self.header.account_id {
            if m.creator.keys() != self.keypair.public() {
                return Err(untrusted(
                    vault_id,
                    "its creator entry names other keys than this account's",
                ));
            }
        } else {
            // The owner's pinned keys (no request), else a first lookup,
            // which pins them.
            let pinned = self
                .contacts()
                .await?
                .into_iter()
                .find(|c| c.email == owner_email);
            let owner = match pinned {
                Some(c) => c,
                None => self.contact(owner_email).await?,
            };
            owner.check_shareable()?;
            if owner.account_id != m.creator.account_id || owner.keys != m.creator.keys() {
                return Err(untrusted(
                    vault_id,
                    format!("its creator is not {owner_email} as this device knows that account"),
                ));
            }
        }
        if let Some(s) = self.shares().await?.get(&vault_id) {
            let hash: [u8; 32] = data_encoding::HEXLOWER
                .decode(s.seen_hash.as_bytes())
                .ok()
                .and_then(|h| h.try_into().ok())
                .unwrap_or([0; 32]);
            m.check_extends(&log, (s.seen_seq, hash))
                .map_err(|e| untrusted(vault_id, e))?;
            // What was accepted now is the floor from here on.
            if m.head.0 > s.seen_seq {
                self.note_seen(vault_id, m.head.0, m.head.1, None).await?;
            }
        }
        Ok(m)
    }

    /// Invites `email` to a vault of this account (making it shared on the
    /// first invitation) with `role`, after checking `fingerprint` (when
    /// given) against the keys looked up: see [`Self::invite_contact`].
    ///
    /// # Errors
    /// [`Error::FingerprintMismatch`] when `fingerprint` is not theirs; as
    /// [`Self::invite_contact`].
    pub async fn invite(
        &mut self,
        vault_id: Uuid,
        email: &str,
        role: Role,
        fingerprint: Option<&str>,
    ) -> Result<Contact> {
        let contact = self.contact(email).await?;
        if let Some(fp) = fingerprint
            && digits(fp) != digits(&contact.fingerprint)
        {
            return Err(Error::FingerprintMismatch {
                email: contact.email.clone(),
                actual: contact.fingerprint.clone(),
            });
        }
        self.invite_contact(vault_id, &contact, role).await?;
        Ok(contact)
    }

    /// Invites the account `contact` names ([`Self::contact`]'s one lookup,
    /// whose fingerprint the user compared) with `role`: the vault key is
    /// sealed to exactly those keys.
    ///
    /// # Errors
    /// [`Error::KeyChanged`] while the account's keys differ from the pinned
    /// ones; not a manager (the server's `forbidden`); network errors.
    pub async fn invite_contact(
        &mut self,
        vault_id: Uuid,
        contact: &Contact,
        role: Role,
    ) -> Result<()> {
        if contact.trust == Trust::Me {
            return Err(Error::Invalid(
                "you are a member of your own vaults already".into(),
            ));
        }
        contact.check_shareable()?;
        self.ensure_shared(vault_id).await?;
        // The key of the log's current epoch is the one sealed to them.
        self.take_current_key(vault_id).await?;
        let owner_email = self.share_state(vault_id).await?.owner_email;
        let m = self.verified_log(vault_id, &owner_email).await?;
        if m.key_epoch != self.vault_epoch(vault_id) {
            return Err(Error::KeyRotated);
        }
        let member = Member {
            account_id: contact.account_id,
            email: contact.email.clone(),
            x25519: contact.keys.x25519,
            ed25519: contact.keys.ed25519,
        };
        let vk = self.vault_key(vault_id)?.duplicate();
        let sealed = seal_vault_key(&vk, vault_id, m.key_epoch, &member).map_err(Error::Crypto)?;
        let (signed, seq) = self.sign_next(&m, Action::Grant { role }, member);
        let req = AppendLogRequest {
            entry: entry_wire(&signed, seq),
            change: MemberChange::Grant {
                email: contact.email.clone(),
                role: role.as_str().into(),
                sealed_key: wire::B64(sealed),
                key_epoch: m.key_epoch,
            },
        };
        self.append_entry(vault_id, &req).await?;
        self.note_seen(vault_id, seq, signed.hash(), None).await?;
        let d = self.vault_detail(
            vault_id,
            [("member", contact.email.as_str()), ("role", role.as_str())],
        );
        self.record_security(SecurityKind::MemberInvited, d).await;
        tracing::info!(vault = %vault_id, member = %contact.account_id, "invited a member");
        Ok(())
    }

    /// Gives a member another role.
    ///
    /// # Errors
    /// Not a member; not a manager; network errors.
    pub async fn set_role(&mut self, vault_id: Uuid, email: &str, role: Role) -> Result<()> {
        let state = self.share_state(vault_id).await?;
        let m = self.verified_log(vault_id, &state.owner_email).await?;
        let email =
            openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
        let standing = m
            .members
            .values()
            .find(|s| s.member.email == email)
            .ok_or_else(|| Error::NotFound(format!("member {email} of the vault")))?;
        let (signed, seq) = self.sign_next(&m, Action::SetRole { role }, standing.member.clone());
        let req = AppendLogRequest {
            entry: entry_wire(&signed, seq),
            change: MemberChange::SetRole {
                email: email.clone(),
                role: role.as_str().into(),
            },
        };
        self.append_entry(vault_id, &req).await?;
        self.note_seen(vault_id, seq, signed.hash(), None).await?;
        let d = self.vault_detail(
            vault_id,
            [("member", email.as_str()), ("role", role.as_str())],
        );
        self.record_security(SecurityKind::MemberRoleChanged, d)
            .await;
        Ok(())
    }

    /// The vault's members as its verified log shows them.
    ///
    /// # Errors
    /// Not a shared vault here; a log that fails verification; network errors.
    pub async fn members(&mut self, vault_id: Uuid) -> Result<Vec<MemberView>> {
        let state = self.share_state(vault_id).await?;
        let m = self.verified_log(vault_id, &state.owner_email).await?;
        let listed = self
            .authed(|c| async move { c.vault_members_raw(vault_id).await })
            .await
            .unwrap_or_default();
        let pinned = self.contacts().await?;
        let mut out = Vec::new();
        for s in m.members.values() {
            let keys = s.member.keys();
            let trust = if s.member.account_id == self.header.account_id {
                "you".to_owned()
            } else {
                match pinned.iter().find(|c| c.account_id == s.member.account_id) {
                    Some(c) if c.keys == keys => c.trust.label().to_owned(),
                    Some(_) => Trust::Changed {
                        pinned: String::new(),
                    }
                    .label()
                    .to_owned(),
                    None => "unknown".to_owned(),
                }
            };
            out.push(MemberView {
                email: s.member.email.clone(),
                account_id: s.member.account_id,
                role: s.role,
                fingerprint: keys.fingerprint(),
                trust,
                status: listed
                    .iter()
                    .find(|l| l.account_id == s.member.account_id)
                    .map_or_else(|| "active".to_owned(), |l| l.status.clone()),
            });
        }
        out.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(out)
    }

    /// The invitations waiting for this account's answer.
    ///
    /// # Errors
    /// Not logged in; network errors.
    pub async fn invitations(&mut self) -> Result<Vec<Invitation>> {
        let shared = self.authed(|c| async move { c.shared().await }).await?;
        Ok(shared
            .into_iter()
            .filter(|s| s.status == "invited")
            .map(|s| {
                let name = open_vault_key(
                    &self.keypair,
                    self.header.account_id,
                    s.id,
                    s.key_epoch,
                    &s.sealed_key.0,
                )
                .ok()
                .and_then(|k| {
                    open_json::<serde_json::Value>(&k, &Aad::vault_meta(s.id), &s.meta.0).ok()
                })
                .and_then(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "(name does not open)".to_owned());
                Invitation {
                    vault_id: s.id,
                    name,
                    owner_email: s.owner_email,
                    role: s.role,
                }
            })
            .collect())
    }

    /// Accepts an invitation: verifies the vault's log (from the owner's
    /// pinned keys), finds this account in it with these keys, opens the
    /// vault key sealed to it, tells the server, and keeps the vault here.
    ///
    /// # Errors
    /// No such invitation; a log or key that fails verification (nothing is
    /// accepted); network errors.
    pub async fn accept(&mut self, vault_id: Uuid) -> Result<String> {
        let shared = self.authed(|c| async move { c.shared().await }).await?;
        let s = shared
            .into_iter()
            .find(|s| s.id == vault_id)
            .ok_or_else(|| Error::NotFound(format!("invitation to vault {vault_id}")))?;
        let name = self.adopt_shared(&s).await?;
        if s.status == "invited" {
            self.authed(|c| async move { c.answer_invitation(vault_id, true).await })
                .await?;
        }
        let d = self.vault_detail(vault_id, [("vault", name.as_str())]);
        self.record_security(SecurityKind::MemberAdded, d).await;
        Ok(name)
    }

    /// Declines an invitation: a signed entry of this account's own says
    /// it leaves (the key was sealed to it, so the managers rotate it).
    ///
    /// # Errors
    /// Network errors; no such invitation; a log that fails verification.
    pub async fn decline(&mut self, vault_id: Uuid) -> Result<()> {
        let shared = self.authed(|c| async move { c.shared().await }).await?;
        let s = shared
            .into_iter()
            .find(|s| s.id == vault_id)
            .ok_or_else(|| Error::NotFound(format!("invitation to vault {vault_id}")))?;
        let m = self.verified_log(vault_id, &s.owner_email).await?;
        match m.members.get(&self.header.account_id) {
            Some(me) => {
                let (signed, seq) = self.sign_next(&m, Action::Leave, me.member.clone());
                let req = AppendLogRequest {
                    entry: entry_wire(&signed, seq),
                    change: MemberChange::Leave,
                };
                self.append_entry(vault_id, &req).await
            }
            // Not in the log (an invitation the server made up): say no.
            None => {
                self.authed(|c| async move { c.answer_invitation(vault_id, false).await })
                    .await
            }
        }
    }

    /// Takes a vault shared with this account into this device, after
    /// checking its log and its sealed key.
    pub(super) async fn adopt_shared(&mut self, s: &wire::SharedVaultResponse) -> Result<String> {
        let vault_id = s.id;
        if self.vaults.iter().any(|v| v.id == vault_id) {
            return Ok(self.vault_name(vault_id).to_owned());
        }
        let m = self.verified_log(vault_id, &s.owner_email).await?;
        let me = m
            .members
            .get(&self.header.account_id)
            .ok_or_else(|| untrusted(vault_id, "its log does not make this account a member"))?;
        if me.member.keys() != self.keypair.public() {
            return Err(untrusted(
                vault_id,
                "its log names other keys for this account",
            ));
        }
        if s.key_epoch != m.key_epoch {
            return Err(untrusted(vault_id, "its key is not of the log's epoch"));
        }
        let key = open_vault_key(
            &self.keypair,
            self.header.account_id,
            vault_id,
            s.key_epoch,
            &s.sealed_key.0,
        )
        .map_err(|_| untrusted(vault_id, "the key sealed to this account does not open"))?;
        let wrapped = crypto::wrap_key(
            &self.account_key,
            &Aad::vault_key(self.header.account_id, vault_id),
            &key,
        );
        let vault = Vault::unwrap(
            &self.account_key,
            self.header.account_id,
            vault_id,
            &wrapped,
            &s.meta.0,
            m.key_epoch,
        )
        .map_err(Error::Crypto)?;
        let role = me.role;
        let head = m.head;
        self.note_seen(
            vault_id,
            head.0,
            head.1,
            Some(ShareState {
                owner_email: s.owner_email.clone(),
                mine: false,
                role,
                seen_seq: head.0,
                seen_hash: String::new(),
            }),
        )
        .await?;
        self.store
            .insert_vault(&VaultRecord {
                id: vault_id,
                wrapped_key: wrapped,
                meta: s.meta.0.clone(),
                created_at: now_millis(),
                key_epoch: m.key_epoch,
            })
            .await?;
        let name = vault.name.clone();
        self.vaults.push(vault);
        tracing::info!(vault = %vault_id, "joined a shared vault");
        Ok(name)
    }

    /// Takes note that this account's vault `vault_id` is shared (another
    /// of its devices shared it): the log is verified with this account as
    /// its creator, and this device signs what it writes there from now on.
    /// Its key is of the first epoch until the sync compares it with the
    /// log.
    pub(super) async fn note_own_shared(&mut self, vault_id: Uuid) -> Result<()> {
        if self.shares().await?.contains_key(&vault_id) {
            return Ok(());
        }
        let me = me_as_member(self)?;
        let m = self.verified_log(vault_id, &me.email).await?;
        if m.creator.account_id != self.header.account_id {
            return Err(untrusted(
                vault_id,
                "the server lists it as this account's own, but its log names another creator",
            ));
        }
        self.note_seen(
            vault_id,
            m.head.0,
            m.head.1,
            Some(ShareState {
                owner_email: me.email,
                mine: true,
                role: Role::Manager,
                seen_seq: m.head.0,
                seen_hash: String::new(),
            }),
        )
        .await
    }

    /// Makes this account's vault shared: on the server (synced first when
    /// it is not there yet), entry 0 of its log names this account as its
    /// creator and manager.
    async fn ensure_shared(&mut self, vault_id: Uuid) -> Result<()> {
        if let Some(s) = self.shares().await?.get(&vault_id) {
            if !s.mine && !s.role.manages() {
                return Err(Error::Invalid(
                    "only a manager of this vault invites members".into(),
                ));
            }
            return Ok(());
        }
        // On the server and up to date: what the vault holds now is what
        // this account wrote before sharing it.
        self.sync(&super::sync::SyncOptions::default()).await?;
        let at_revision = self.store.sync_state(vault_id).await?.cursor;
        let me = me_as_member(self)?;
        let vk = self.vault_key(vault_id)?.duplicate();
        let sealed = seal_vault_key(&vk, vault_id, FIRST_EPOCH, &me).map_err(Error::Crypto)?;
        let entry = Entry {
            vault_id,
            seq: 0,
            prev: [0; 32],
            action: Action::Create { at_revision },
            member: me.clone(),
            key_epoch: FIRST_EPOCH,
            signer: me.account_id,
            at: now_millis(),
            key_check: Some(vault_key_check(&vk, vault_id, FIRST_EPOCH)),
        };
        let signed = SignedEntry::sign(&entry, &self.keypair);
        let req = AppendLogRequest {
            entry: entry_wire(&signed, 0),
            change: MemberChange::Create {
                sealed_key: wire::B64(sealed),
                key_epoch: FIRST_EPOCH,
            },
        };
        self.append_entry(vault_id, &req).await?;
        self.note_seen(
            vault_id,
            0,
            signed.hash(),
            Some(ShareState {
                owner_email: me.email,
                mine: true,
                role: Role::Manager,
                seen_seq: 0,
                seen_hash: String::new(),
            }),
        )
        .await
    }

    /// The log's next entry, doing `action` to `member`, signed by this
    /// account; and its number.
    pub(super) fn sign_next(
        &self,
        m: &Membership,
        action: Action,
        member: Member,
    ) -> (SignedEntry, u64) {
        let entry = m.next_entry(action, member, self.header.account_id, now_millis());
        (SignedEntry::sign(&entry, &self.keypair), entry.seq)
    }

    /// Sends a signed entry of the vault's log.
    pub(super) async fn append_entry(
        &mut self,
        vault_id: Uuid,
        req: &AppendLogRequest,
    ) -> Result<()> {
        self.authed(|c| {
            let req = req.clone();
            async move { c.append_log(vault_id, &req).await }
        })
        .await
    }

    pub(super) async fn share_state(&self, vault_id: Uuid) -> Result<ShareState> {
        self.shares()
            .await?
            .get(&vault_id)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("vault {vault_id} is not shared")))
    }

    /// The verified membership log of a shared vault (`None` for a
    /// personal one), for a sync to sign and check versions with.
    pub(super) async fn sync_membership(&mut self, vault_id: Uuid) -> Result<Option<Membership>> {
        let Some(state) = self.shares().await?.get(&vault_id).cloned() else {
            return Ok(None);
        };
        Ok(Some(self.verified_log(vault_id, &state.owner_email).await?))
    }

    /// This account's signature over a version it pushes to a shared vault
    /// (`hash`: the version's [`super::members::content_hash`], `None` for a
    /// purge).
    pub(super) fn authorship(
        &self,
        vault_id: Uuid,
        item_id: Uuid,
        version: u64,
        hash: Option<[u8; 32]>,
    ) -> Option<wire::B64> {
        let m = self.share_logs.get(&vault_id)?;
        let a = m.sign_version(
            &self.keypair,
            self.header.account_id,
            item_id,
            version,
            &hash.unwrap_or([0; 32]),
        );
        serde_json::to_vec(&a).ok().map(wire::B64)
    }

    /// Why a pulled version of a shared vault is refused (`None`: its
    /// author was an editor or manager when they wrote it, and signed it).
    pub(super) fn refusal(&self, vault_id: Uuid, r: &wire::Record) -> Option<String> {
        let m = self.share_logs.get(&vault_id)?;
        let hash = if r.deleted {
            [0; 32]
        } else {
            super::members::content_hash(&r.overview.0, &r.details.0)
        };
        let why = match Authorship::from_wire(r.authorship.as_ref()) {
            // Written before the vault was shared: its creator's.
            None if r.revision <= m.shared_at() => return None,
            None => "it carries no author signature".to_owned(),
            Some(a) => match m.check_version(&a, r.item_id, r.version, &hash) {
                Ok(()) => return None,
                Err(e) => format!("{e} (author {})", a.author),
            },
        };
        Some(format!(
            "version {} of item {} was refused: {why}; the last good version is kept",
            r.version, r.item_id
        ))
    }

    /// Refuses a change to a vault this account only views (the server
    /// would refuse it too; here nothing is even written).
    pub(super) async fn check_writable(&self, vault_id: Uuid) -> Result<()> {
        match self.shares().await?.get(&vault_id) {
            Some(s) if !s.mine && !s.role.writes() => Err(Error::Invalid(format!(
                "you are a viewer of the shared vault {}: nothing was changed; ask one of its \
                 managers ({}) for the editor role",
                self.vault_name(vault_id),
                s.owner_email
            ))),
            _ => Ok(()),
        }
    }

    /// Takes the role the server states for a vault shared with this
    /// account (what a manager's signed entry gave it; the server enforces
    /// it, this device only uses it to refuse early).
    pub(super) async fn note_role(&mut self, vault_id: Uuid, role: &str) -> Result<()> {
        let Some(role) = Role::parse(role) else {
            return Ok(());
        };
        let mut all = self.shares().await?;
        match all.get_mut(&vault_id) {
            Some(s) if !s.mine && s.role != role => s.role = role,
            _ => return Ok(()),
        }
        self.save_shares(&all).await
    }

    /// Whether this vault is another account's (this device must not
    /// create it on the server as its own).
    pub(super) async fn is_others(&self, vault_id: Uuid) -> Result<bool> {
        Ok(self.shares().await?.get(&vault_id).is_some_and(|s| !s.mine))
    }

    /// Records the last log entry accepted (and a new share state).
    pub(super) async fn note_seen(
        &mut self,
        vault_id: Uuid,
        seq: u64,
        hash: [u8; 32],
        new: Option<ShareState>,
    ) -> Result<()> {
        let mut all = self.shares().await?;
        let state = match new {
            Some(s) => all.entry(vault_id).or_insert(s),
            None => all
                .get_mut(&vault_id)
                .ok_or_else(|| Error::Invalid(format!("vault {vault_id} is not shared")))?,
        };
        state.seen_seq = seq;
        state.seen_hash = data_encoding::HEXLOWER.encode(&hash);
        self.save_shares(&all).await
    }

    pub(super) async fn save_shares(&self, all: &BTreeMap<Uuid, ShareState>) -> Result<()> {
        let blob = seal_json(&self.account_key, &Aad::shares(self.header.account_id), all);
        self.store.set_meta(SHARES_KEY, Some(&blob)).await?;
        Ok(())
    }

    pub(super) async fn shares(&self) -> Result<BTreeMap<Uuid, ShareState>> {
        let Some(blob) = self.store.meta(SHARES_KEY).await? else {
            return Ok(BTreeMap::new());
        };
        open_json(
            &self.account_key,
            &Aad::shares(self.header.account_id),
            &blob,
        )
        .map_err(|_| Error::Tampered("the shared vaults' states".into()))
    }
}
