//! Emergency access (issue 13): an owner names a contact who may get the
//! owner's account key after a wait, unless the owner says no meanwhile.
//!
//! Grant (`openk emergency grant`, the owner's device): the contact's keys
//! are looked up and pinned (or checked against the fingerprint they read
//! out) exactly as for a vault invitation; the account key is sealed
//! (HPKE) to the contact's X25519 key with the grant's id, both account ids
//! and the role as associated data, and the grant is signed with the
//! owner's identity key over the same ids, the contact's two public keys,
//! the role and the wait. The server keeps the box and the signature.
//!
//! Request, deny, revoke: the contact asks (the wait starts); the owner's
//! devices show the pending request and can deny it (nothing is released)
//! or revoke the grant (the box is deleted). After the wait the server
//! hands the box to the contact, who checks the owner's signature with
//! the owner's pinned identity key, opens it, and reads the owner's vaults
//! through the grant (role `view`).
//!
//! The server is trusted with the wait only: it cannot open the box, forge
//! a grant (the signature) or swap the contact's key (signed, and the box
//! only opens with the contact's private key); a server that releases
//! early, or colludes with the contact, gives the contact the access
//! early (docs/security.md).
//!
//! Each account-key rotation re-seals the new key to every grant
//! (`Session::seal_for_emergency`, in the rotation's transaction), after
//! checking this account's signature over each: a released grant stays
//! good through rotations, and a grant the server altered is refused.

use openk_server::api::types::{self as wire, CreateGrantRequest, GrantResponse};
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::Session;
use super::contacts::{Contact, Trust, digits};
use super::error::{Error, Result};
use super::model::Item;
use super::seal::open_full;
use super::security::{SecurityKind, detail};
use crate::crypto::{self, Key, PublicKeys};
use crate::store::ItemRecord;
use crate::sync::SyncError;

/// HPKE `info` of the sealed account key.
const INFO: &[u8] = b"openk emergency access v1";
/// Domain of the owner's signature over a grant.
const STATEMENT: &[u8] = b"openk emergency grant v1\0";
/// Domain of the sealed box's associated data.
const AAD: &[u8] = b"openk emergency aad v1\0";

/// The longest wait a grant may have (90 days; the shortest is the
/// server's, 1 hour unless its `--emergency-min-wait` says otherwise).
pub const MAX_WAIT_SECS: u64 = 90 * 86_400;

/// What the contact may do with a released grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyRole {
    /// Read the owner's items.
    View,
    /// Read them, and (a later step) take the account over.
    Takeover,
}

impl EmergencyRole {
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "view" => Some(Self::View),
            "takeover" => Some(Self::Takeover),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Takeover => "takeover",
        }
    }
}

/// A grant as `openk emergency ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantInfo {
    pub id: Uuid,
    pub owner_email: String,
    pub contact_email: String,
    pub role: String,
    pub wait_secs: u64,
    /// `granted`, `requested` or `released`.
    pub state: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// RFC 3339: when the key is (or was) released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_at: Option<String>,
    /// While requested: the seconds of the wait left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
    pub created_at: String,
}

impl GrantInfo {
    pub(crate) fn of(g: &GrantResponse) -> Self {
        Self {
            id: g.id,
            owner_email: g.owner_email.clone(),
            contact_email: g.contact_email.clone(),
            role: g.role.clone(),
            wait_secs: g.wait_secs,
            state: g.state.clone(),
            requested_at: g.requested_at.clone(),
            release_at: g.release_at.clone(),
            seconds_left: g.seconds_left,
            created_at: g.created_at.clone(),
        }
    }

    /// Whether a request waits for the owner's answer.
    #[must_use]
    pub fn is_requested(&self) -> bool {
        self.state == "requested"
    }
}

/// The grants this account gave (as owner) and holds (as contact).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grants {
    pub given: Vec<GrantInfo>,
    pub held: Vec<GrantInfo>,
}

impl Grants {
    /// The grants given whose contact has asked (the owner should know).
    #[must_use]
    pub fn pending(&self) -> Vec<&GrantInfo> {
        self.given.iter().filter(|g| g.is_requested()).collect()
    }
}

/// One of the owner's items, read through a released grant.
#[derive(Debug)]
pub struct EmergencyItem {
    /// The name of the owner's vault it is in.
    pub vault: String,
    pub item: Item,
}

/// The owner's items as a released grant shows them.
#[derive(Debug)]
pub struct EmergencyAccess {
    pub owner_email: String,
    pub grant_id: Uuid,
    pub role: EmergencyRole,
    /// The owner's vaults' names.
    pub vaults: Vec<String>,
    /// The live items (not trashed), by vault and name.
    pub items: Vec<EmergencyItem>,
    /// Records that did not open (e.g. of a shared vault whose key a
    /// manager rotated: only the owner's own copy is reachable here).
    pub unreadable: usize,
}

/// What the owner signs: the grant's ids, the contact's keys, the role and
/// the wait.
fn statement(
    grant: Uuid,
    owner: Uuid,
    contact: Uuid,
    contact_keys: &PublicKeys,
    role: &str,
    wait_secs: u64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(STATEMENT.len() + 48 + 64 + 1 + role.len() + 8);
    m.extend_from_slice(STATEMENT);
    m.extend_from_slice(grant.as_bytes());
    m.extend_from_slice(owner.as_bytes());
    m.extend_from_slice(contact.as_bytes());
    m.extend_from_slice(&contact_keys.x25519);
    m.extend_from_slice(&contact_keys.ed25519);
    m.push(u8::try_from(role.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(role.as_bytes());
    m.extend_from_slice(&wait_secs.to_be_bytes());
    m
}

/// The sealed box's associated data.
fn aad(grant: Uuid, owner: Uuid, contact: Uuid, role: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(AAD.len() + 48 + 1 + role.len());
    m.extend_from_slice(AAD);
    m.extend_from_slice(grant.as_bytes());
    m.extend_from_slice(owner.as_bytes());
    m.extend_from_slice(contact.as_bytes());
    m.push(u8::try_from(role.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(role.as_bytes());
    m
}

/// Seals the owner's account key for a grant: `owner || grant || key`.
fn seal_payload(
    contact_x25519: &[u8; 32],
    grant: Uuid,
    owner: Uuid,
    contact: Uuid,
    role: &str,
    account_key: &Key,
) -> Result<Vec<u8>> {
    let mut plain = Zeroizing::new(Vec::with_capacity(64));
    plain.extend_from_slice(owner.as_bytes());
    plain.extend_from_slice(grant.as_bytes());
    plain.extend_from_slice(account_key.expose());
    crypto::hpke::seal_to(
        contact_x25519,
        INFO,
        &aad(grant, owner, contact, role),
        &plain,
    )
    .map_err(Error::Crypto)
}

/// The keys a grant names for its contact.
fn grant_contact_keys(g: &GrantResponse) -> Option<PublicKeys> {
    Some(PublicKeys {
        x25519: g.contact_x25519.0.as_slice().try_into().ok()?,
        ed25519: g.contact_ed25519.0.as_slice().try_into().ok()?,
    })
}

/// A number of seconds as "3d 4h", "2h 5m", "5m 3s" or "9s".
#[must_use]
pub fn human_secs(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A wait as typed: a number with `s`, `m`, `h` or `d` (days; the default
/// unit), e.g. `7d`, `12h`, `90m`.
///
/// # Errors
/// [`Error::Invalid`] for anything else, or more than 90 days.
pub fn parse_wait(text: &str) -> Result<u64> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "d"),
    };
    let bad = || {
        Error::Invalid(format!(
            "{text:?} is not a wait: use a number and s, m, h or d, e.g. 7d or 12h (at most 90d)"
        ))
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    if secs == 0 || secs > MAX_WAIT_SECS {
        return Err(bad());
    }
    Ok(secs)
}

impl Session {
    /// Grants `email` emergency access with `role` after `wait_secs`, after
    /// checking `fingerprint` (when given) against the keys looked up: see
    /// [`Self::emergency_grant_contact`].
    ///
    /// # Errors
    /// [`Error::FingerprintMismatch`]; as [`Self::emergency_grant_contact`].
    pub async fn emergency_grant(
        &mut self,
        email: &str,
        role: EmergencyRole,
        wait_secs: u64,
        fingerprint: Option<&str>,
    ) -> Result<(Contact, GrantInfo)> {
        let contact = self.contact(email).await?;
        if let Some(fp) = fingerprint
            && digits(fp) != digits(&contact.fingerprint)
        {
            return Err(Error::FingerprintMismatch {
                email: contact.email.clone(),
                actual: contact.fingerprint.clone(),
            });
        }
        let g = self
            .emergency_grant_contact(&contact, role, wait_secs)
            .await?;
        Ok((contact, g))
    }

    /// Grants the account `contact` names ([`Self::contact`]'s one lookup,
    /// whose fingerprint the user compared) emergency access: the account
    /// key is sealed to exactly those keys, and the grant signed.
    ///
    /// # Errors
    /// [`Error::KeyChanged`] while the contact's keys differ from the
    /// pinned ones; oneself; a grant to them exists (the server's
    /// conflict); a wait the server does not take; network errors.
    pub async fn emergency_grant_contact(
        &mut self,
        contact: &Contact,
        role: EmergencyRole,
        wait_secs: u64,
    ) -> Result<GrantInfo> {
        self.remote_or_err()?;
        if contact.trust == Trust::Me {
            return Err(Error::Invalid(
                "an account cannot be its own emergency contact".into(),
            ));
        }
        contact.check_shareable()?;
        let owner = self.header.account_id;
        let id = Uuid::now_v7();
        let sealed = seal_payload(
            &contact.keys.x25519,
            id,
            owner,
            contact.account_id,
            role.as_str(),
            &self.account_key,
        )?;
        let signature = self.keypair.sign(&statement(
            id,
            owner,
            contact.account_id,
            &contact.keys,
            role.as_str(),
            wait_secs,
        ));
        let req = CreateGrantRequest {
            id,
            contact_email: contact.email.clone(),
            role: role.as_str().to_owned(),
            wait_secs,
            sealed: wire::B64(sealed),
            signature: wire::B64(signature.to_vec()),
            contact_x25519: wire::B64(contact.keys.x25519.to_vec()),
            contact_ed25519: wire::B64(contact.keys.ed25519.to_vec()),
        };
        let g = self
            .authed(|c| {
                let req = req.clone();
                async move { c.create_grant(&req).await }
            })
            .await?;
        tracing::info!(grant = %g.id, "granted emergency access");
        let d = detail([
            ("contact", contact.email.as_str()),
            ("role", role.as_str()),
            ("wait", &human_secs(wait_secs)),
        ]);
        self.record_security(SecurityKind::EmergencyGranted, d)
            .await;
        Ok(GrantInfo::of(&g))
    }

    /// The grants this account gave and holds, as the server lists them.
    ///
    /// # Errors
    /// Not connected; network errors.
    pub async fn emergency_grants(&mut self) -> Result<Grants> {
        self.remote_or_err()?;
        let all = self.authed(|c| async move { c.grants().await }).await?;
        Ok(Grants {
            given: all.given.iter().map(GrantInfo::of).collect(),
            held: all.held.iter().map(GrantInfo::of).collect(),
        })
    }

    /// The grant this account gave to `contact_email`.
    async fn given_to(&mut self, contact_email: &str) -> Result<GrantResponse> {
        let email = openk_server::email::normalize(contact_email)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        self.remote_or_err()?;
        let all = self.authed(|c| async move { c.grants().await }).await?;
        all.given
            .into_iter()
            .find(|g| g.contact_email == email)
            .ok_or(Error::NoEmergencyGrant(email))
    }

    /// The grant this account holds from `owner_email`.
    async fn held_from(&mut self, owner_email: &str) -> Result<GrantResponse> {
        let email = openk_server::email::normalize(owner_email)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        self.remote_or_err()?;
        let all = self.authed(|c| async move { c.grants().await }).await?;
        all.held
            .into_iter()
            .find(|g| g.owner_email == email)
            .ok_or(Error::NoEmergencyGrant(email))
    }

    /// The contact asks for access to `owner_email`'s account: the wait
    /// starts (asking again changes nothing).
    ///
    /// # Errors
    /// [`Error::NoEmergencyGrant`]; network errors.
    pub async fn emergency_request(&mut self, owner_email: &str) -> Result<GrantInfo> {
        let g = self.held_from(owner_email).await?;
        let id = g.id;
        let g = self
            .authed(|c| async move { c.request_grant(id).await })
            .await?;
        tracing::info!(grant = %id, "requested emergency access");
        self.record_security(
            SecurityKind::EmergencyRequested,
            detail([("owner", owner_email)]),
        )
        .await;
        Ok(GrantInfo::of(&g))
    }

    /// The owner denies the pending request of `contact_email`: nothing is
    /// released (they may ask again).
    ///
    /// # Errors
    /// [`Error::NoEmergencyGrant`]; [`Error::NoEmergencyRequest`] when
    /// nothing is pending; network errors.
    pub async fn emergency_deny(&mut self, contact_email: &str) -> Result<()> {
        let g = self.given_to(contact_email).await?;
        if g.state != "requested" {
            return Err(Error::NoEmergencyRequest(g.contact_email));
        }
        let id = g.id;
        self.authed(|c| async move { c.deny_grant(id).await })
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::NoEmergencyRequest(g.contact_email.clone()),
                other => other,
            })?;
        tracing::info!(grant = %id, "denied an emergency access request");
        self.record_security(
            SecurityKind::EmergencyDenied,
            detail([("contact", contact_email)]),
        )
        .await;
        Ok(())
    }

    /// The owner revokes the grant to `contact_email` (its sealed key is
    /// deleted on the server).
    ///
    /// # Errors
    /// [`Error::NoEmergencyGrant`]; network errors.
    pub async fn emergency_revoke(&mut self, contact_email: &str) -> Result<()> {
        let g = self.given_to(contact_email).await?;
        let id = g.id;
        self.authed(|c| async move { c.revoke_grant(id).await })
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::NoEmergencyGrant(g.contact_email.clone()),
                other => other,
            })?;
        tracing::info!(grant = %id, "revoked an emergency grant");
        self.record_security(
            SecurityKind::EmergencyRevoked,
            detail([("contact", contact_email)]),
        )
        .await;
        Ok(())
    }

    /// The released grant from `owner_email`, checked and opened: the
    /// owner's account key and what it opens.
    ///
    /// # Errors
    /// [`Error::NoEmergencyGrant`]; [`Error::EmergencyWaiting`] while the
    /// wait runs; [`Error::NoEmergencyRequest`] when not asked (or denied);
    /// [`Error::Untrusted`] for a grant whose signature, box or key does
    /// not hold up; [`Error::KeyChanged`] when the owner's keys are not the
    /// pinned ones; network errors.
    pub async fn emergency_open(&mut self, owner_email: &str) -> Result<EmergencyAccess> {
        let (g, role, account_key) = self.released_from(owner_email).await?;
        let id = g.id;
        let owner = g.owner_id;
        let vaults = self
            .authed(|c| async move { c.grant_vaults(id).await })
            .await?;
        let mut access = EmergencyAccess {
            owner_email: g.owner_email.clone(),
            grant_id: id,
            role,
            vaults: Vec::with_capacity(vaults.len()),
            items: Vec::new(),
            unreadable: 0,
        };
        for v in &vaults {
            let opened = super::vault::Vault::unwrap(
                &account_key,
                owner,
                v.id,
                &v.wrapped_key.0,
                &v.meta.0,
                super::vault::own_copy_epoch(v),
            )
            .map_err(|_| {
                Error::Untrusted(format!(
                    "the account key released by the grant of {} does not open their vault {}",
                    g.owner_email, v.id
                ))
            })?;
            let mut since = 0;
            loop {
                let vid = v.id;
                let page = self
                    .authed(|c| async move { c.grant_changes(id, vid, since).await })
                    .await?;
                for r in page.records.iter().filter(|r| !r.deleted) {
                    let rec = ItemRecord {
                        id: r.item_id,
                        vault_id: v.id,
                        version: r.version,
                        wrapped_key: r.wrapped_key.0.clone(),
                        overview: r.overview.0.clone(),
                        details: r.details.0.clone(),
                    };
                    match open_full(&opened.key, &rec) {
                        Ok(item) if item.overview.trashed_at.is_none() => {
                            access.items.push(EmergencyItem {
                                vault: opened.name.clone(),
                                item,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => access.unreadable += 1,
                    }
                }
                if !page.has_more || page.next_since <= since {
                    break;
                }
                since = page.next_since;
            }
            access.vaults.push(opened.name.clone());
        }
        access.items.sort_by(|a, b| {
            (a.vault.as_str(), a.item.overview.name.to_lowercase())
                .cmp(&(b.vault.as_str(), b.item.overview.name.to_lowercase()))
        });
        Ok(access)
    }

    /// The released grant from `owner_email`: fetched, checked and opened.
    async fn released_from(
        &mut self,
        owner_email: &str,
    ) -> Result<(GrantResponse, EmergencyRole, Key)> {
        let held = self.held_from(owner_email).await?;
        let id = held.id;
        let released = self
            .authed(|c| async move { c.release_grant(id).await })
            .await
            .map_err(|e| match e {
                Error::Remote(SyncError::Waiting(secs)) => Error::EmergencyWaiting {
                    owner: held.owner_email.clone(),
                    secs,
                },
                Error::Remote(SyncError::Conflict(_)) => {
                    Error::NoEmergencyRequest(held.owner_email.clone())
                }
                Error::NotFound(_) => Error::NoEmergencyGrant(held.owner_email.clone()),
                other => other,
            })?;
        let g = released.grant;
        let (role, key) = self.open_grant(&g, &released.sealed.0).await?;
        Ok((g, role, key))
    }

    /// Takes `owner_email`'s account over through a released `takeover`
    /// grant: new credentials for it (`new_password` and a new Secret Key;
    /// every session of the owner ends and the grant is used up), then
    /// signs in to it as a new device in `dir` (which must not hold a
    /// vault) and rotates its account key. This account's own vault and
    /// session stay as they are.
    ///
    /// # Errors
    /// [`Error::VaultExists`]; [`Error::Invalid`] for a grant to read
    /// only; as [`Self::emergency_open`]; network errors.
    pub async fn emergency_takeover(
        &mut self,
        owner_email: &str,
        dir: &std::path::Path,
        new_password: crate::crypto::SecretString,
        allow_weak_kdf: bool,
        device_name: &str,
    ) -> Result<super::recovery::Recovered> {
        super::recovery::check_new_home(dir, device_name).await?;
        let (g, role, account_key) = self.released_from(owner_email).await?;
        if role != EmergencyRole::Takeover {
            return Err(Error::Invalid(format!(
                "the emergency grant of {} lets you read their items, not take the account over",
                g.owner_email
            )));
        }
        // The key must open the owner's vaults before anything changes:
        // new credentials around a wrong key would lock the owner out.
        let id = g.id;
        let vaults = self
            .authed(|c| async move { c.grant_vaults(id).await })
            .await?;
        let opens = !vaults.is_empty()
            && vaults.iter().all(|v| {
                crypto::unwrap_key(
                    &account_key,
                    &crate::crypto::Aad::vault_key(g.owner_id, v.id),
                    &v.wrapped_key.0,
                )
                .is_ok()
            });
        if !opens {
            return Err(Error::Untrusted(format!(
                "the account key released by the grant of {} does not open their vaults; nothing \
                 was changed",
                g.owner_email
            )));
        }
        let server = self.remote_or_err()?.server.clone();
        let kdf = super::remote::kdf_to_wire(self.header.kdf);
        let (secret_key, creds) = super::recovery::new_credentials(
            dir,
            g.owner_id,
            &account_key,
            kdf,
            new_password.clone(),
            allow_weak_kdf,
        )
        .await?;
        self.authed(|c| {
            let creds = creds.clone();
            async move { c.takeover_grant(id, &creds).await }
        })
        .await?;
        tracing::info!(grant = %id, "took an account over through emergency access");
        let mut r = super::recovery::sign_in_and_rotate(
            dir,
            &server,
            &g.owner_email,
            new_password,
            &secret_key,
            allow_weak_kdf,
            device_name,
        )
        .await?;
        // On the owner's chain, signed with the owner's keys.
        r.session
            .record_security(
                super::security::SecurityKind::EmergencyTakeover,
                super::security::detail([("grant", &id.to_string()), ("device", device_name)]),
            )
            .await;
        Ok(r)
    }

    /// One of `owner_email`'s items through a released grant: by id, id
    /// prefix or name (one match).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Ambiguous`]; as [`Self::emergency_open`].
    pub async fn emergency_item(&mut self, owner_email: &str, query: &str) -> Result<Item> {
        let access = self.emergency_open(owner_email).await?;
        let q = query.trim().to_lowercase();
        let by_id: Vec<&EmergencyItem> = access
            .items
            .iter()
            .filter(|i| q.len() >= 4 && i.item.r.id.to_string().starts_with(&q))
            .collect();
        let found = if by_id.is_empty() {
            access
                .items
                .iter()
                .filter(|i| i.item.overview.name.to_lowercase() == q)
                .collect()
        } else {
            by_id
        };
        match found.as_slice() {
            [] => Err(Error::NotFound(query.to_owned())),
            [one] => Ok(one.item.clone()),
            many => Err(Error::Ambiguous {
                query: query.to_owned(),
                candidates: many
                    .iter()
                    .map(|i| {
                        format!(
                            "{}  {}  (vault {})",
                            i.item.r.id,
                            crate::text::line(&i.item.overview.name),
                            crate::text::line(&i.vault)
                        )
                    })
                    .collect(),
                across_vaults: false,
            }),
        }
    }

    /// Checks a released grant (the owner's signature with the owner's
    /// pinned keys, over this account's keys) and opens its box.
    async fn open_grant(
        &mut self,
        g: &GrantResponse,
        sealed: &[u8],
    ) -> Result<(EmergencyRole, Key)> {
        let lying = |what: &str| {
            Error::Untrusted(format!(
                "the emergency grant of {} does not hold up ({what})",
                g.owner_email
            ))
        };
        let me = self.header.account_id;
        if g.contact_id != me {
            return Err(lying("it names another contact"));
        }
        let owner = self.contact(&g.owner_email).await?;
        owner.check_shareable()?;
        if owner.account_id != g.owner_id {
            return Err(lying("it names another owner than the pinned one"));
        }
        let role = EmergencyRole::parse(&g.role).ok_or_else(|| lying("an unknown role"))?;
        let own = self.keypair.public();
        crypto::keys::verify_signature(
            &owner.keys.ed25519,
            &statement(g.id, g.owner_id, me, &own, &g.role, g.wait_secs),
            &g.signature.0,
        )
        .map_err(|_| lying("its signature is not the owner's over this grant to you"))?;
        let plain = crypto::hpke::open_from(
            &self.keypair,
            INFO,
            &aad(g.id, g.owner_id, me, &g.role),
            sealed,
        )
        .map_err(|_| lying("the sealed key does not open"))?;
        if plain.len() != 64
            || plain[..16] != *g.owner_id.as_bytes()
            || plain[16..32] != *g.id.as_bytes()
        {
            return Err(lying("the sealed key is not this grant's"));
        }
        let key = Key::from_slice(&plain[32..]).ok_or_else(|| lying("a malformed key"))?;
        Ok((role, key))
    }

    /// For an account-key rotation: the new key sealed to every grant this
    /// account gave, each checked first against this account's signature.
    ///
    /// # Errors
    /// [`Error::Untrusted`] when the server shows a grant this account did
    /// not sign (the rotation then stops: nothing is sealed to a key the
    /// server chose); network errors.
    pub(super) async fn seal_for_emergency(
        &mut self,
        new: &Key,
    ) -> Result<Vec<wire::EmergencySeal>> {
        let all = self.authed(|c| async move { c.grants().await }).await?;
        let me = self.header.account_id;
        let own = self.keypair.public();
        let mut out = Vec::with_capacity(all.given.len());
        for g in &all.given {
            let keys = grant_contact_keys(g).filter(|_| g.owner_id == me);
            let good = keys.as_ref().is_some_and(|k| {
                crypto::keys::verify_signature(
                    &own.ed25519,
                    &statement(g.id, me, g.contact_id, k, &g.role, g.wait_secs),
                    &g.signature.0,
                )
                .is_ok()
            });
            let Some(keys) = keys.filter(|_| good) else {
                return Err(Error::Untrusted(format!(
                    "the server's emergency grant {} is not one this account signed; nothing was \
                     sealed to it (revoke it with `openk emergency revoke`)",
                    g.id
                )));
            };
            out.push(wire::EmergencySeal {
                id: g.id,
                sealed: wire::B64(seal_payload(
                    &keys.x25519,
                    g.id,
                    me,
                    g.contact_id,
                    &g.role,
                    new,
                )?),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_parse_with_units_and_bounds() {
        assert_eq!(parse_wait("7d").ok(), Some(7 * 86_400));
        assert_eq!(parse_wait("12h").ok(), Some(12 * 3600));
        assert_eq!(parse_wait("90m").ok(), Some(5400));
        assert_eq!(parse_wait("2s").ok(), Some(2));
        assert_eq!(parse_wait("3").ok(), Some(3 * 86_400));
        for bad in [
            "",
            "0d",
            "91d",
            "7w",
            "d",
            "-1d",
            "1.5d",
            "99999999999999999999d",
        ] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_shortly() {
        assert_eq!(human_secs(9), "9s");
        assert_eq!(human_secs(303), "5m 3s");
        assert_eq!(human_secs(7500), "2h 5m");
        assert_eq!(human_secs(7 * 86_400 + 3600), "7d 1h");
    }

    #[test]
    fn a_statement_binds_every_field() {
        let keys = PublicKeys {
            x25519: [1; 32],
            ed25519: [2; 32],
        };
        let (g, o, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let base = statement(g, o, c, &keys, "view", 60);
        let other_keys = PublicKeys {
            x25519: [3; 32],
            ed25519: [2; 32],
        };
        for changed in [
            statement(o, g, c, &keys, "view", 60),
            statement(g, c, o, &keys, "view", 60),
            statement(g, o, c, &other_keys, "view", 60),
            statement(g, o, c, &keys, "takeover", 60),
            statement(g, o, c, &keys, "view", 61),
        ] {
            assert_ne!(base, changed);
        }
    }
}
