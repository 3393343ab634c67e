//! A shared vault's key epochs (DESIGN §7, "removing a member rotates the
//! vault key"): removing a member, leaving, rotating, and taking a rotated
//! key on every other device.
//!
//! A rotation is one log entry (signed by a manager, naming the new epoch
//! and carrying a commitment to the new key) and one server transaction:
//! the new key sealed to every remaining member, every live item key
//! re-wrapped under it, the vault's name and manifest sealed with it. Item
//! keys are fresh for every version ([`super::seal_item`]), so a removed
//! member, who may have kept the keys it had, reads nothing written after.
//!
//! Every device compares the log's epoch with its own at each sync. Behind,
//! it takes its copy of the new key from the server, checks it against the
//! commitment in the signed entry (a server cannot hand it a key of its
//! own), re-wraps its local copies (current versions, history) in one
//! transaction, and pulls the server's re-wrapped records.
//!
//! A member who leaves signs its own entry; the key is then due for a
//! rotation, which the next sync of a manager's device performs.

use super::security::SecurityKind;
use openk_server::api::types::{self as wire, AppendLogRequest, MemberChange, Rotation};
use serde::Serialize;
use uuid::Uuid;

use super::error::{Error, Result};
use super::members::{
    Action, Member, Membership, SignedEntry, open_vault_key, seal_vault_key, vault_key_check,
};
use super::model::{Entry, Item, ItemRef, Overview, now_millis};
use super::shared_vaults::{entry_wire, untrusted};
use super::sync::SyncOptions;
use super::{Session, open_full, seal_item, seal_json};
use crate::crypto::{self, Aad, Key};
use crate::store::{ItemRecord, SyncOp, WrappedKeyRef};

/// Rotations tried before giving up on a vault that keeps changing.
const ATTEMPTS: usize = 5;

/// A shared vault this device no longer has: the member was removed (or
/// left, or the invitation was withdrawn). Unpushed edits were kept as new
/// items of the personal vault.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeftVault {
    pub vault_id: Uuid,
    pub name: String,
    /// The names of the items that hold edits never pushed to it, now in
    /// the personal vault.
    pub kept: Vec<String>,
}

impl Session {
    /// Removes `email` from a shared vault this account manages, and
    /// rotates its key in the same server transaction: the removed member
    /// can still open what it already had, nothing written after.
    ///
    /// # Errors
    /// Not a manager; not a member; the vault's owner or this account
    /// (`leave` is for that); a vault that keeps changing; network errors.
    /// Nothing is removed unless all of it is done.
    pub async fn remove_member(&mut self, vault_id: Uuid, email: &str) -> Result<()> {
        let email =
            openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
        self.rotate_with(vault_id, |me, m| {
            let s = m
                .members
                .values()
                .find(|s| s.member.email == email)
                .ok_or_else(|| Error::NotFound(format!("member {email} of the vault")))?;
            if s.member.account_id == me {
                return Err(Error::Invalid(
                    "to take yourself out of a vault: openk vault leave".into(),
                ));
            }
            if s.member.account_id == m.creator.account_id {
                return Err(Error::Invalid(
                    "the vault's owner cannot be removed from it".into(),
                ));
            }
            Ok((Action::Remove, s.member.clone(), Some(email.clone())))
        })
        .await
    }

    /// Rotates a vault's key: a new key, every item key (of every version)
    /// re-wrapped under it, in one server transaction; for a shared vault
    /// (a manager) the new key is sealed to every member, and a signed log
    /// entry commits to it. A vault this device holds only locally is
    /// re-wrapped here.
    ///
    /// # Errors
    /// As [`Self::remove_member`].
    pub async fn rotate_vault_key(&mut self, vault_id: Uuid) -> Result<()> {
        self.vault_key(vault_id)?;
        if !self.shares().await?.contains_key(&vault_id) {
            return self.rotate_unshared(vault_id).await;
        }
        self.rotate_with(vault_id, |me, m| {
            let s = m.members.get(&me).ok_or_else(|| {
                Error::Invalid("this account is not a member of the vault".into())
            })?;
            Ok((Action::Rotate, s.member.clone(), None))
        })
        .await
    }

    /// Syncs, then rotates with the entry `what` names (retried when the
    /// vault moved meanwhile), then syncs again to take the new key here.
    async fn rotate_with(
        &mut self,
        vault_id: Uuid,
        what: impl Fn(Uuid, &Membership) -> Result<(Action, Member, Option<String>)>,
    ) -> Result<()> {
        let state = self.share_state(vault_id).await?;
        let opts = SyncOptions {
            skip_rotation: true,
            ..SyncOptions::default()
        };
        for _ in 0..ATTEMPTS {
            // What is re-wrapped is what the server has: nothing unpushed.
            self.sync(&opts).await?;
            if !self.store.dirty_items(vault_id).await?.is_empty() {
                return Err(Error::Invalid(
                    "this vault has changes the sync could not push; run `openk sync`, then try \
                     again"
                        .into(),
                ));
            }
            let m = self.verified_log(vault_id, &state.owner_email).await?;
            let (action, member, removed) = what(self.header.account_id, &m)?;
            let (kind, email) = if matches!(action, Action::Remove) {
                (SecurityKind::MemberRemoved, member.email.clone())
            } else {
                (SecurityKind::VaultKeyRotated, String::new())
            };
            match self
                .send_rotation(vault_id, &m, action, member, removed)
                .await
            {
                Ok(()) => {
                    self.sync(&opts).await?;
                    let epoch = self.vault_epoch(vault_id).to_string();
                    let mut d = self.vault_detail(vault_id, [("key_epoch", epoch.as_str())]);
                    if !email.is_empty() {
                        d.insert("member".into(), email);
                    }
                    self.record_security(kind, d).await;
                    tracing::info!(vault = %vault_id, "rotated a shared vault's key");
                    return Ok(());
                }
                // The vault moved between the sync and the rotation.
                Err(Error::HeadMoved) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::KeptMoving(self.vault_name(vault_id).to_owned()))
    }

    /// Rotates the key of a vault that is not shared: on the server (one
    /// transaction, retried when the vault moved meanwhile) when this
    /// device syncs, else here only.
    async fn rotate_unshared(&mut self, vault_id: Uuid) -> Result<()> {
        let epoch = self.vault_epoch(vault_id) + 1;
        if !self.is_logged_in() {
            self.adopt_key(vault_id, Key::random(), epoch).await?;
            let e = epoch.to_string();
            let d = self.vault_detail(vault_id, [("key_epoch", e.as_str())]);
            self.record_security(SecurityKind::VaultKeyRotated, d).await;
            tracing::info!(vault = %vault_id, epoch, "rotated a local vault's key");
            return Ok(());
        }
        let opts = SyncOptions {
            skip_rotation: true,
            ..SyncOptions::default()
        };
        for _ in 0..ATTEMPTS {
            self.sync(&opts).await?;
            if !self.store.dirty_items(vault_id).await?.is_empty() {
                return Err(Error::Invalid(
                    "this vault has changes the sync could not push; run `openk sync`, then try \
                     again"
                        .into(),
                ));
            }
            let epoch = self.vault_epoch(vault_id) + 1;
            let old = self.vault_key(vault_id)?.duplicate();
            let new = Key::random();
            let plan = self.rewrap_plan(vault_id, None, &old, &new).await?;
            let me = self.header.account_id;
            let rotation = Rotation {
                key_epoch: epoch,
                sealed_keys: Vec::new(),
                records: plan.records,
                meta: wire::B64(vault_meta(&new, vault_id, self.vault_name(vault_id))),
                manifest: wire::B64(plan.manifest),
                expected_head: plan.expected_head,
                owner_wrapped_key: Some(wire::B64(crypto::wrap_key(
                    &self.account_key,
                    &Aad::vault_key(me, vault_id),
                    &new,
                ))),
            };
            let sent = self
                .authed(|c| {
                    let r = rotation.clone();
                    async move { c.rotate_vault(vault_id, &r).await }
                })
                .await;
            match sent {
                Ok(()) => {
                    // The key and the local records re-wrapped under it in
                    // one transaction first: a kill between two writes never
                    // leaves records under a key this device does not hold.
                    self.adopt_key(vault_id, new, epoch).await?;
                    self.store
                        .apply_sync(&plan.local, &self.sync_sealer())
                        .await?;
                    self.sync(&opts).await?;
                    let e = epoch.to_string();
                    let d = self.vault_detail(vault_id, [("key_epoch", e.as_str())]);
                    self.record_security(SecurityKind::VaultKeyRotated, d).await;
                    tracing::info!(vault = %vault_id, epoch, "rotated a vault's key");
                    return Ok(());
                }
                Err(Error::HeadMoved) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::KeptMoving(self.vault_name(vault_id).to_owned()))
    }

    /// Takes a rotated key of this account's own vault that is not shared
    /// (another of its devices rotated it): the server's copy opens only
    /// with the account key, so it is this account's.
    pub(super) async fn take_own_rotated_key(&mut self, v: &wire::VaultResponse) -> Result<()> {
        let epoch = super::vault::own_copy_epoch(v);
        if v.shared || epoch <= self.vault_epoch(v.id) {
            return Ok(());
        }
        let key = crypto::unwrap_key(
            &self.account_key,
            &Aad::vault_key(self.header.account_id, v.id),
            &v.wrapped_key.0,
        )
        .map_err(|_| {
            Error::Untrusted(format!(
                "the server offers a key for vault {} that does not open with this account's key",
                v.id
            ))
        })?;
        self.adopt_key(v.id, key, epoch).await?;
        tracing::info!(vault = %v.id, epoch, "took a vault's rotated key");
        Ok(())
    }

    /// Builds and sends one rotation on the state this device just synced.
    async fn send_rotation(
        &mut self,
        vault_id: Uuid,
        m: &Membership,
        action: Action,
        member: Member,
        removed: Option<String>,
    ) -> Result<()> {
        let me = self.header.account_id;
        if !m.members.get(&me).is_some_and(|s| s.role.manages()) {
            return Err(Error::Invalid(
                "only a manager of this vault removes members or rotates its key".into(),
            ));
        }
        let old = self.vault_key(vault_id)?.duplicate();
        let new = Key::random();
        let mut entry = m.next_entry(action, member.clone(), me, now_millis());
        let epoch = entry.key_epoch;
        entry.key_check = Some(vault_key_check(&new, vault_id, epoch));
        let signed = SignedEntry::sign(&entry, &self.keypair);
        // Sealed to the members after this entry that the server lists (an
        // invitation declined before declines were signed is in the log
        // only); the server refuses a rotation that leaves out one it has.
        let listed = self
            .authed(|c| async move { c.vault_members_raw(vault_id).await })
            .await?;
        let mut sealed_keys = Vec::new();
        for s in m.members.values() {
            if Some(&s.member.email) == removed.as_ref()
                || !listed.iter().any(|l| l.account_id == s.member.account_id)
            {
                continue;
            }
            sealed_keys.push(wire::SealedKeyFor {
                email: s.member.email.clone(),
                sealed_key: wire::B64(
                    seal_vault_key(&new, vault_id, epoch, &s.member).map_err(Error::Crypto)?,
                ),
            });
        }
        let plan = self.rewrap_plan(vault_id, Some(m), &old, &new).await?;
        // The owner keeps its own copy of the key on the server current.
        let owner_wrapped_key = (m.creator.account_id == me).then(|| {
            wire::B64(crypto::wrap_key(
                &self.account_key,
                &Aad::vault_key(me, vault_id),
                &new,
            ))
        });
        let name = self.vault_name(vault_id).to_owned();
        let rotation = Rotation {
            key_epoch: epoch,
            sealed_keys,
            records: plan.records,
            meta: wire::B64(vault_meta(&new, vault_id, &name)),
            manifest: wire::B64(plan.manifest),
            expected_head: plan.expected_head,
            owner_wrapped_key,
        };
        let change = match removed {
            Some(email) => MemberChange::Remove { email, rotation },
            None => MemberChange::Rotate { rotation },
        };
        let req = AppendLogRequest {
            entry: entry_wire(&signed, entry.seq),
            change,
        };
        self.append_entry(vault_id, &req).await?;
        self.note_seen(vault_id, entry.seq, signed.hash(), None)
            .await?;
        // The new key with every local record re-wrapped under it (one
        // transaction), then the server's state after the rotation (it
        // numbered the re-wrapped records as sent). A kill between the two
        // leaves every record readable; the next sync brings the numbers.
        self.adopt_key(vault_id, new, epoch).await?;
        self.store
            .apply_sync(&plan.local, &self.sync_sealer())
            .await
            .map_err(Into::into)
    }

    /// Leaves a vault another account shares with this one: first syncs
    /// (so that this device's edits reach the others), then signs its own
    /// entry, then removes the vault from this device. A manager's device
    /// rotates the key at its next sync.
    ///
    /// # Errors
    /// This account's own vault (owners do not leave); a sync that fails
    /// (nothing is left); network errors.
    pub async fn leave_vault(&mut self, vault_id: Uuid) -> Result<LeftVault> {
        let state = self.share_state(vault_id).await?;
        if state.mine {
            return Err(Error::Invalid(
                "this vault is yours: its owner does not leave it (remove its members, or \
                 move its items out)"
                    .into(),
            ));
        }
        self.sync(&SyncOptions::default()).await?;
        let m = self.verified_log(vault_id, &state.owner_email).await?;
        if let Some(me) = m.members.get(&self.header.account_id) {
            let (signed, seq) = self.sign_next(&m, Action::Leave, me.member.clone());
            let req = AppendLogRequest {
                entry: entry_wire(&signed, seq),
                change: MemberChange::Leave,
            };
            self.append_entry(vault_id, &req).await?;
        }
        let d = self.vault_detail(vault_id, [("owner", state.owner_email.as_str())]);
        let left = self.drop_shared(vault_id).await?;
        self.record_security(SecurityKind::MemberLeft, d).await;
        Ok(left)
    }

    /// Before a sync of a shared vault uses its key: when the verified log
    /// (in `share_logs`) is at a later epoch than this device's key, takes
    /// the new key (checked against the log's commitment) and re-wraps the
    /// local copies under it. Returns the epoch taken, if any.
    pub(super) async fn catch_up_key(&mut self, vault_id: Uuid) -> Result<Option<u32>> {
        let Some((epoch, check)) = self
            .share_logs
            .get(&vault_id)
            .map(|m| (m.key_epoch, m.epoch_check()))
        else {
            return Ok(None);
        };
        if epoch <= self.vault_epoch(vault_id) {
            return Ok(None);
        }
        let got = self
            .authed(|c| async move { c.vault_key(vault_id).await })
            .await?;
        // Rotated again since the log was read: read it again.
        if got.key_epoch > epoch {
            return Err(Error::KeyRotated);
        }
        if got.key_epoch != epoch {
            return Err(untrusted(
                vault_id,
                format!(
                    "the server hands out its key of epoch {}, but its log is at epoch {epoch}",
                    got.key_epoch
                ),
            ));
        }
        let key = open_vault_key(
            &self.keypair,
            self.header.account_id,
            vault_id,
            epoch,
            &got.sealed_key.0,
        )
        .map_err(|_| untrusted(vault_id, "the key sealed to this account does not open"))?;
        if check != Some(vault_key_check(&key, vault_id, epoch)) {
            return Err(untrusted(
                vault_id,
                "the key the server hands out is not the one its managers signed for",
            ));
        }
        self.adopt_key(vault_id, key, epoch).await?;
        tracing::info!(vault = %vault_id, epoch, "took a shared vault's rotated key");
        Ok(Some(epoch))
    }

    /// Re-wraps every local version of the vault from its current key to
    /// `key` (one transaction), keeps `key` wrapped under the account key,
    /// and records its epoch. A push sent under the old key is never sent
    /// again (its items stay dirty and go up under the new key).
    async fn adopt_key(&mut self, vault_id: Uuid, key: Key, epoch: u32) -> Result<()> {
        let old = self.vault_key(vault_id)?.duplicate();
        self.store
            .apply_sync(
                &[SyncOp::Pending {
                    vault_id,
                    pending: None,
                }],
                &self.sync_sealer(),
            )
            .await?;
        let account_id = self.header.account_id;
        let wrapped = crypto::wrap_key(
            &self.account_key,
            &Aad::vault_key(account_id, vault_id),
            &key,
        );
        let name = self.vault_name(vault_id).to_owned();
        let rewrap = |r: WrappedKeyRef<'_>| {
            let aad = Aad::item_key(r.vault_id, r.item_id, r.version);
            // Already under the new key (an earlier attempt): as it is.
            if crypto::unwrap_key(&key, &aad, r.wrapped_key).is_ok() {
                return None;
            }
            let ik = crypto::unwrap_key(&old, &aad, r.wrapped_key).ok()?;
            Some(crypto::wrap_key(&key, &aad, &ik))
        };
        self.store
            .rewrap_vault(
                vault_id,
                rewrap,
                &wrapped,
                &vault_meta(&key, vault_id, &name),
                epoch,
            )
            .await?;
        if let Some(v) = self.vaults.iter_mut().find(|v| v.id == vault_id) {
            v.key = key;
            v.key_epoch = epoch;
        }
        Ok(())
    }

    /// The epoch of the key this device holds for a vault.
    pub(super) fn vault_epoch(&self, vault_id: Uuid) -> u32 {
        self.vaults
            .iter()
            .find(|v| v.id == vault_id)
            .map_or(1, |v| v.key_epoch)
    }

    /// Removes a shared vault from this device (after leaving it, or when
    /// the server no longer shares it with this account). Edits never
    /// pushed to it are kept: each becomes a new item of the personal
    /// vault, named after it (and its vault).
    pub(super) async fn drop_shared(&mut self, vault_id: Uuid) -> Result<LeftVault> {
        let name = self.vault_name(vault_id).to_owned();
        let mut kept = Vec::new();
        let personal = self.default_vault().0;
        if personal != vault_id {
            let vk = self.vault_key(vault_id)?.duplicate();
            for s in self.store.dirty_items(vault_id).await? {
                let Some(rec) = self.store.item(s.item_id).await? else {
                    continue;
                };
                let Ok(item) = open_full(&vk, &rec) else {
                    continue;
                };
                let copy = self.rescued(item, personal, &name).await?;
                kept.push(copy.overview.name.clone());
                self.store.insert_items(&[copy.record]).await?;
            }
        }
        self.store.forget_vault(vault_id).await?;
        self.vaults.retain(|v| v.id != vault_id);
        self.share_logs.remove(&vault_id);
        let mut all = self.shares().await?;
        all.remove(&vault_id);
        self.save_shares(&all).await?;
        self.loaded = None;
        tracing::info!(vault = %vault_id, kept = kept.len(), "a shared vault left this device");
        Ok(LeftVault {
            vault_id,
            name,
            kept,
        })
    }

    /// A new item of `vault_id` with `item`'s contents, named so that it
    /// does not clash: `NAME (from VAULT)`, then numbered.
    async fn rescued(&self, item: Item, vault_id: Uuid, from: &str) -> Result<Rescued> {
        let names: Vec<String> = self
            .store
            .vault_records(vault_id)
            .await?
            .iter()
            .filter_map(|r| {
                super::open_entry(self.vault_key(vault_id).ok()?, r)
                    .ok()
                    .map(|e: Entry| e.overview.name.to_lowercase())
            })
            .collect();
        let base = format!("{} (from {from})", item.overview.name);
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name.to_lowercase()) {
            name = format!("{base} {n}");
            n += 1;
        }
        let overview = Overview {
            name,
            updated_at: now_millis().max(item.overview.updated_at),
            updated_by: Some(self.header.device_id),
            ..item.overview
        };
        let r = ItemRef {
            id: Uuid::now_v7(),
            vault_id,
            version: 1,
        };
        let record = seal_item(self.vault_key(vault_id)?, r, &overview, &item.details);
        Ok(Rescued { overview, record })
    }
}

/// An item kept from a vault this device no longer has.
struct Rescued {
    overview: Overview,
    record: ItemRecord,
}

/// A vault's metadata (its name) sealed with `key`.
fn vault_meta(key: &Key, vault_id: Uuid, name: &str) -> Vec<u8> {
    seal_json(
        key,
        &Aad::vault_meta(vault_id),
        &serde_json::json!({ "name": name }),
    )
}
