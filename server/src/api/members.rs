//! Shared vaults (DESIGN §7): the membership log (signed entries the
//! clients verify; the server keeps them in order), the members with their
//! roles and sealed keys, invitations, and the access rule every vault
//! route applies: a vault is the caller's own (manager), or shared with it
//! and accepted, with the role the owner's managers gave. The server
//! refuses what a role does not allow; the clients refuse it too (they
//! check the signed log and each version's author).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath};
use super::types::{
    AppendLogRequest, B64, LogEntry, MemberChange, MemberResponse, MembershipRequest, Rotation,
    SharedVaultResponse, VaultKeyResponse,
};
use super::validate;
use super::vaults::Budgeted;
use crate::error::{ApiError, ApiResult};
use crate::events::VaultChanged;
use crate::state::{AppState, now_millis};
use crate::store::{
    Appended, LogRow, MemberWrite, Membership, RewrappedIn, RotationIn, StoreError,
};

/// The largest signed entry the server keeps.
pub const MAX_ENTRY: usize = 16 * 1024;
/// A sealed vault key: version, HPKE enc, key and tag (81 bytes today).
const SEALED_KEY: (usize, usize) = (49, 512);
/// The most members a rotation seals a key to.
const MAX_MEMBERS: usize = 10_000;

pub const VIEWER: &str = "viewer";
pub const EDITOR: &str = "editor";
pub const MANAGER: &str = "manager";
const INVITED: &str = "invited";
const ACTIVE: &str = "active";

/// How the caller may use a vault.
#[derive(Debug, Clone)]
pub struct Access {
    /// The vault's owner (the server's account id), who names it in the store.
    pub owner: Uuid,
    pub role: String,
    /// Whether an invitation waits for the caller's answer.
    pub invited: bool,
}

impl Access {
    #[must_use]
    pub fn writes(&self) -> bool {
        !self.invited && (self.role == EDITOR || self.role == MANAGER)
    }

    #[must_use]
    pub fn manages(&self) -> bool {
        !self.invited && self.role == MANAGER
    }
}

/// The caller's access to its vault `id` (the caller's own first), or 404
/// exactly as for a vault that does not exist.
pub async fn access(state: &AppState, account: Uuid, id: Uuid) -> ApiResult<Access> {
    if state.store.vault(account, id).await?.is_some() {
        return Ok(Access {
            owner: account,
            role: MANAGER.into(),
            invited: false,
        });
    }
    let shared = state
        .store
        .shared_vault(account, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Access {
        owner: shared.vault.account_id,
        role: shared.membership.role,
        invited: shared.membership.status == INVITED,
    })
}

/// Access for the routes that read or write a vault's items: an accepted
/// membership.
pub async fn member_access(state: &AppState, account: Uuid, id: Uuid) -> ApiResult<Access> {
    let a = access(state, account, id).await?;
    if a.invited {
        return Err(ApiError::Forbidden(
            "accept the invitation to this vault first".into(),
        ));
    }
    Ok(a)
}

fn role(r: &str) -> ApiResult<String> {
    match r {
        VIEWER | EDITOR | MANAGER => Ok(r.to_owned()),
        _ => Err(ApiError::Validation(
            "role must be viewer, editor or manager".into(),
        )),
    }
}

/// Appends an entry to the vault's membership log and applies the change
/// it names. Entry 0 (`create`) by the vault's owner makes it shared;
/// later entries only by a manager, but for `leave` (any member but the
/// owner, for itself). `remove` and `rotate` carry a key rotation, applied
/// with the entry in one transaction or not at all.
#[utoipa::path(post, path = "/v1/vaults/{id}/log", tag = "shared vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = AppendLogRequest,
    responses((status = 204, description = "appended (and, for `remove` and `rotate`, the key rotated)"),
        (status = 403, body = super::types::Problem, description = "`forbidden`: not a manager of the vault (every kind but `leave`)"),
        (status = 404, body = super::types::Problem, description = "no such vault, no account with an email named, or the account to remove (or the one leaving) is not a member"),
        (status = 409, body = super::types::Problem, description = "`head_moved`: a rotation's `expected_head` is not the vault's head (the problem's `head` member says what it is). `conflict`: the entry is not the log's next; the account is a member already; the owner is to be removed or to leave; a rotation that does not fit the vault otherwise (its `key_epoch` is not the next, the records are not exactly the live ones at their versions, or the sealed keys are not for exactly the members after the change). Nothing stored"),
        (status = 422, body = super::types::Problem, description = "sizes out of bounds, an item twice or at version 0 in a rotation, a `key_epoch` under 2, unknown fields")))]
pub async fn append(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AppendLogRequest>,
) -> ApiResult<StatusCode> {
    validate::exact(&req.entry.signature, 64, "signature")?;
    validate::bounded(&req.entry.entry, 1, MAX_ENTRY, "entry")?;
    let now = now_millis();
    let (owner, write) = match req.change {
        MemberChange::Create {
            sealed_key,
            key_epoch,
        } => {
            validate::bounded(&sealed_key, SEALED_KEY.0, SEALED_KEY.1, "sealed_key")?;
            if state.store.vault(who.account_id, id).await?.is_none() {
                return Err(ApiError::NotFound);
            }
            (
                who.account_id,
                MemberWrite::Add(Membership {
                    account_id: who.account_id,
                    role: MANAGER.into(),
                    status: ACTIVE.into(),
                    sealed_key: sealed_key.0,
                    key_epoch,
                    added_at: now,
                }),
            )
        }
        MemberChange::Grant {
            email,
            role: r,
            sealed_key,
            key_epoch,
        } => {
            validate::bounded(&sealed_key, SEALED_KEY.0, SEALED_KEY.1, "sealed_key")?;
            let r = role(&r)?;
            let a = managed(&state, who.account_id, id).await?;
            let invitee = account_by_email(&state, &email).await?;
            if invitee == a.owner {
                return Err(ApiError::Conflict(
                    "the vault's owner is a member already".into(),
                ));
            }
            // The invitee's own vaults keep their ids: a shared vault never
            // stands in for one of them.
            if state.store.vault(invitee, id).await?.is_some() {
                return Err(ApiError::Conflict(
                    "this account has a vault of its own with this id".into(),
                ));
            }
            (
                a.owner,
                MemberWrite::Add(Membership {
                    account_id: invitee,
                    role: r,
                    status: INVITED.into(),
                    sealed_key: sealed_key.0,
                    key_epoch,
                    added_at: now,
                }),
            )
        }
        MemberChange::SetRole { email, role: r } => {
            let r = role(&r)?;
            let a = managed(&state, who.account_id, id).await?;
            let member = account_by_email(&state, &email).await?;
            if member == a.owner {
                return Err(ApiError::Conflict(
                    "the vault's owner stays its manager".into(),
                ));
            }
            (
                a.owner,
                MemberWrite::SetRole {
                    account_id: member,
                    role: r,
                },
            )
        }
        MemberChange::Remove { email, rotation } => {
            let a = managed(&state, who.account_id, id).await?;
            let member = account_by_email(&state, &email).await?;
            if member == a.owner {
                return Err(ApiError::Conflict(
                    "the vault's owner stays its member".into(),
                ));
            }
            owners_copy(&a, who.account_id, &rotation)?;
            let rotation = rotation_in(&state, rotation).await?;
            (
                a.owner,
                MemberWrite::Remove {
                    account_id: member,
                    rotation,
                },
            )
        }
        MemberChange::Leave => {
            let a = access(&state, who.account_id, id).await?;
            if a.owner == who.account_id {
                return Err(ApiError::Conflict(
                    "the owner of a vault does not leave it".into(),
                ));
            }
            (
                a.owner,
                MemberWrite::Leave {
                    account_id: who.account_id,
                },
            )
        }
        MemberChange::Rotate { rotation } => {
            let a = managed(&state, who.account_id, id).await?;
            owners_copy(&a, who.account_id, &rotation)?;
            (
                a.owner,
                MemberWrite::Rotate(rotation_in(&state, rotation).await?),
            )
        }
    };
    let row = LogRow {
        seq: req.entry.seq,
        entry: req.entry.entry.0,
        signature: req.entry.signature.0,
    };
    let rotation_head = match &write {
        MemberWrite::Remove { rotation, .. } | MemberWrite::Rotate(rotation) => {
            Some(rotation.expected_head)
        }
        _ => None,
    };
    let appended = match state.store.append_log(owner, id, &row, &write).await {
        Ok(appended) => appended,
        Err(StoreError::Conflict) if let Some(expected) = rotation_head => {
            // The vault moved since the rotation was made (heads only grow,
            // so a head read now that differs means it did): `head_moved`
            // with the head, as for a push, and the client syncs and makes
            // the rotation again.
            let head = state.store.vault(owner, id).await?.map(|v| v.revision);
            return Err(match head {
                Some(head) if head != expected => ApiError::HeadMoved { head },
                _ => ApiError::Conflict(format!(
                    "entry {} is not the next of the vault's log, or the vault changed since \
                     the rotation was made (its epoch, items or members); sync and try again",
                    row.seq
                )),
            });
        }
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "entry {} is not the next of the vault's log, or the account is a member \
                 already; fetch the log and try again",
                row.seq
            )));
        }
        Err(StoreError::NotFound) => return Err(ApiError::NotFound),
        Err(other) => return Err(other.into()),
    };
    if let Appended::Rotated { head } = appended {
        // Every member's devices re-read the vault (and take the new key).
        state.events.publish(VaultChanged {
            account_id: owner,
            vault_id: id,
            head,
            device_id: who.device_id,
        });
        tracing::info!(vault = %id, seq = row.seq, head, "vault key rotated");
    }
    tracing::info!(vault = %id, seq = row.seq, "membership log entry appended");
    Ok(StatusCode::NO_CONTENT)
}

/// Only the owner sends (and may send) its own copy of a rotated key.
fn owners_copy(a: &Access, caller: Uuid, r: &Rotation) -> ApiResult<()> {
    if r.owner_wrapped_key.is_some() && a.owner != caller {
        return Err(ApiError::Validation(
            "owner_wrapped_key is the vault owner's own copy: only the owner sends it".into(),
        ));
    }
    Ok(())
}

/// Rotates the key of one of the caller's vaults that is not shared (a
/// shared one rotates through its membership log): every live item key
/// re-wrapped, the owner's copy of the new key, its name and manifest, in
/// one transaction.
#[utoipa::path(post, path = "/v1/vaults/{id}/rotate", tag = "vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Rotation,
    responses((status = 204, description = "rotated"),
        (status = 404, body = super::types::Problem, description = "no such vault of the caller's"),
        (status = 409, body = super::types::Problem, description = "`head_moved`: the vault moved since the rotation was made (sync and make it again); `conflict`: the vault is shared (rotate it through its log), or the epoch or items do not fit"),
        (status = 422, body = super::types::Problem, description = "sizes out of bounds, sealed keys given, or no owner_wrapped_key")))]
pub async fn rotate_unshared(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<Rotation>,
) -> ApiResult<StatusCode> {
    if state.store.vault(who.account_id, id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    if !req.sealed_keys.is_empty() || req.owner_wrapped_key.is_none() {
        return Err(ApiError::Validation(
            "a vault that is not shared is rotated with owner_wrapped_key and no sealed keys"
                .into(),
        ));
    }
    if let Some(k) = &req.owner_wrapped_key {
        validate::bounded(k, 41, validate::MAX_WRAPPED_KEY, "owner_wrapped_key")?;
    }
    let expected = req.expected_head;
    let rotation = rotation_in(&state, req).await?;
    match state
        .store
        .rotate_unshared(who.account_id, id, &rotation)
        .await
    {
        Ok(head) => {
            state.events.publish(VaultChanged {
                account_id: who.account_id,
                vault_id: id,
                head,
                device_id: who.device_id,
            });
            tracing::info!(vault = %id, head, "vault key rotated");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::Conflict) => {
            let head = state
                .store
                .vault(who.account_id, id)
                .await?
                .map(|v| v.revision);
            Err(match head {
                Some(head) if head != expected => ApiError::HeadMoved { head },
                _ => ApiError::Conflict(
                    "the vault is shared (rotate it through its membership log), or the rotation \
                     no longer fits its epoch or items; sync and try again"
                        .into(),
                ),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// A rotation's parts checked for size, its members named by the
/// server's account ids.
async fn rotation_in(state: &AppState, r: Rotation) -> ApiResult<RotationIn> {
    validate::bounded(&r.meta, 41, validate::MAX_MANIFEST, "meta")?;
    validate::bounded(&r.manifest, 1, validate::MAX_MANIFEST, "manifest")?;
    if r.expected_head < 0 || r.key_epoch < 2 {
        return Err(ApiError::Validation(
            "expected_head must be 0 or more and key_epoch 2 or more".into(),
        ));
    }
    if r.sealed_keys.len() > MAX_MEMBERS {
        return Err(ApiError::Validation(format!(
            "at most {MAX_MEMBERS} members"
        )));
    }
    let mut sealed_keys = Vec::with_capacity(r.sealed_keys.len());
    for k in r.sealed_keys {
        validate::bounded(&k.sealed_key, SEALED_KEY.0, SEALED_KEY.1, "sealed_key")?;
        sealed_keys.push((account_by_email(state, &k.email).await?, k.sealed_key.0));
    }
    let mut seen = std::collections::HashSet::with_capacity(r.records.len());
    let mut records = Vec::with_capacity(r.records.len());
    for rec in r.records {
        validate::bounded(
            &rec.wrapped_key,
            41,
            validate::MAX_WRAPPED_KEY,
            "wrapped_key",
        )?;
        if rec.version == 0 || rec.version > i64::MAX as u64 || !seen.insert(rec.item_id) {
            return Err(ApiError::Validation(format!(
                "item {}: a version of 1 or more, once per rotation",
                rec.item_id
            )));
        }
        if let Some(a) = &rec.authorship {
            validate::bounded(a, 1, super::vaults::MAX_AUTHORSHIP, "authorship")?;
        }
        records.push(RewrappedIn {
            item_id: rec.item_id,
            version: rec.version,
            wrapped_key: rec.wrapped_key.0,
            authorship: rec.authorship.map(|a| a.0),
        });
    }
    if let Some(k) = &r.owner_wrapped_key {
        validate::bounded(k, 41, validate::MAX_WRAPPED_KEY, "owner_wrapped_key")?;
    }
    Ok(RotationIn {
        owner_wrapped_key: r.owner_wrapped_key.map(|k| k.0),
        key_epoch: r.key_epoch,
        sealed_keys,
        records,
        meta: r.meta.0,
        manifest: r.manifest.0,
        expected_head: r.expected_head,
    })
}

/// The caller's copy of the vault key: sealed to it, with its epoch (every
/// member, the owner too, takes a rotated key from here).
#[utoipa::path(get, path = "/v1/vaults/{id}/key", tag = "shared vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = VaultKeyResponse),
        (status = 404, body = super::types::Problem, description = "no such vault, or not shared with the caller")))]
pub async fn key(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<VaultKeyResponse>> {
    let a = access(&state, who.account_id, id).await?;
    let me = state
        .store
        .members(a.owner, id)
        .await?
        .into_iter()
        .find(|m| m.membership.account_id == who.account_id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(VaultKeyResponse {
        key_epoch: me.membership.key_epoch,
        sealed_key: B64(me.membership.sealed_key),
    }))
}

/// The caller's access, if it manages the vault.
async fn managed(state: &AppState, account: Uuid, id: Uuid) -> ApiResult<Access> {
    let a = access(state, account, id).await?;
    if !a.manages() {
        return Err(ApiError::Forbidden(
            "only a manager of this vault changes its members".into(),
        ));
    }
    Ok(a)
}

async fn account_by_email(state: &AppState, email: &str) -> ApiResult<Uuid> {
    let email = validate::email(email)?;
    Ok(state
        .store
        .account_by_email(&email)
        .await?
        .ok_or(ApiError::NotFound)?
        .id)
}

/// The vault's membership log, in order (members and invitees read it, to
/// verify before they use or accept the vault).
#[utoipa::path(get, path = "/v1/vaults/{id}/log", tag = "shared vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<LogEntry>), (status = 404, body = super::types::Problem)))]
pub async fn log(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<LogEntry>>> {
    let a = access(&state, who.account_id, id).await?;
    let rows = state.store.log(a.owner, id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| LogEntry {
                seq: r.seq,
                entry: B64(r.entry),
                signature: B64(r.signature),
            })
            .collect(),
    ))
}

/// The vault's members (and invitees) with their roles.
#[utoipa::path(get, path = "/v1/vaults/{id}/members", tag = "shared vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<MemberResponse>), (status = 404, body = super::types::Problem)))]
pub async fn members(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<MemberResponse>>> {
    let a = access(&state, who.account_id, id).await?;
    let members = state.store.members(a.owner, id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|m| MemberResponse {
                account_id: m.client_id,
                email: m.email,
                role: m.membership.role,
                status: m.membership.status,
            })
            .collect(),
    ))
}

/// The vaults other accounts share with the caller, and its invitations.
#[utoipa::path(get, path = "/v1/shared", tag = "shared vaults", security(("bearer" = [])),
    responses((status = 200, body = Vec<SharedVaultResponse>)))]
pub async fn shared(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
) -> ApiResult<Json<Vec<SharedVaultResponse>>> {
    let shared = state.store.shared_with(who.account_id).await?;
    Ok(Json(
        shared
            .into_iter()
            .map(|s| SharedVaultResponse {
                id: s.vault.id,
                owner_email: s.owner_email,
                role: s.membership.role,
                status: s.membership.status,
                sealed_key: B64(s.membership.sealed_key),
                key_epoch: s.membership.key_epoch,
                meta: B64(s.vault.meta),
                revision: s.vault.revision,
            })
            .collect(),
    ))
}

/// Replaces a vault's sealed metadata (its name): the owner, or a manager
/// of a shared vault.
#[utoipa::path(patch, path = "/v1/vaults/{id}", tag = "vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = super::types::UpdateVaultRequest,
    responses((status = 204, description = "updated"),
        (status = 403, body = super::types::Problem, description = "`forbidden`: not a manager of the vault"),
        (status = 404, body = super::types::Problem), (status = 422, body = super::types::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<super::types::UpdateVaultRequest>,
) -> ApiResult<StatusCode> {
    validate::bounded(&req.meta, 41, validate::MAX_MANIFEST, "meta")?;
    let a = managed(&state, who.account_id, id).await?;
    state.store.set_vault_meta(a.owner, id, &req.meta.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts or declines an invitation (declining an accepted membership
/// leaves the vault's member list here; managers remove members with a
/// signed log entry).
#[utoipa::path(post, path = "/v1/vaults/{id}/membership", tag = "shared vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = MembershipRequest,
    responses((status = 204, description = "answered"), (status = 404, body = super::types::Problem),
        (status = 409, body = super::types::Problem, description = "the vault is the caller's own")))]
pub async fn answer(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<MembershipRequest>,
) -> ApiResult<StatusCode> {
    let a = access(&state, who.account_id, id).await?;
    if a.owner == who.account_id {
        return Err(ApiError::Conflict("this vault is your own".into()));
    }
    let status = req.accept.then_some(ACTIVE);
    state
        .store
        .set_member_status(a.owner, id, who.account_id, status)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
