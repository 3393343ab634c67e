//! Wire types of the OpenK API (`/v1`): plain serde structs shared by the
//! server and the client (`openk::sync`). Binary values travel as standard
//! base64 strings ([`B64`]); the server never interprets them.
//!
//! Request bodies refuse unknown fields, so a typo in a client is an error
//! rather than a silently ignored value.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

/// API version prefix.
pub const API_PREFIX: &str = "/v1";

/// Opaque bytes, base64 (standard alphabet, padded) on the wire.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl std::fmt::Debug for B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(B64)
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

impl utoipa::PartialSchema for B64 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
            .description(Some("base64 (standard alphabet, padded)"))
            .into()
    }
}

impl ToSchema for B64 {}

/// Argon2id parameters an account was registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

// ---------------------------------------------------------------- accounts

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreloginRequest {
    pub email: String,
}

/// What a client needs to derive the auth key. For an unknown email the
/// server answers with stable made-up values, so existence does not leak.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreloginResponse {
    /// The account id (part of the key derivation); made up for unknown emails.
    pub account_id: Uuid,
    pub kdf: KdfParams,
    pub salt: B64,
}

/// A device as the client describes itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    pub id: Uuid,
    pub name: String,
    /// What the device runs on (e.g. `linux x86_64`), shown in the device
    /// list; up to 100 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// `Debug` shows `[redacted]` for the invite code (a one-time bearer
/// credential); the auth key is a [`B64`], which shows only its length.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub account_id: Uuid,
    pub email: String,
    pub kdf: KdfParams,
    pub salt: B64,
    /// The auth key (32 bytes); the server stores only a salted hash.
    pub auth_key: B64,
    /// The account key wrapped by the unlock key (opaque to the server).
    pub wrapped_account_key: B64,
    pub public_x25519: B64,
    pub public_ed25519: B64,
    /// The account's private keys wrapped by the account key (opaque).
    pub wrapped_private_keys: B64,
    /// The account's self-signature over its identity (Ed25519 over the
    /// account id, email, key version 1 and both public keys); the server
    /// keeps it opaque and publishes it with the keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_signature: Option<B64>,
    pub device: DeviceInfo,
    /// A one-time invite code (`openk-server invite`); required when the
    /// server's registration is `invite-only`, ignored otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
    /// This device's key (32 random bytes the client keeps; the server stores
    /// only a hash). Later logins that present it count in the device's own
    /// rate-limit bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_proof: Option<B64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub auth_key: B64,
    pub device: DeviceInfo,
    /// The device's key (32 bytes). When it matches the key this device id
    /// last logged in with, the attempt counts in the device's own bucket,
    /// not the account's; a successful login stores it for the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_proof: Option<B64>,
    /// The device approval this new device was let in by
    /// (`POST /v1/approvals`): an approved request of this account, used
    /// once; the device list then names the device that approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Uuid>,
}

/// Tokens are opaque 256-bit random strings; the server stores their hashes.
/// `Debug` shows `[redacted]` for them.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub account_id: Uuid,
    pub device_id: Uuid,
    pub access_token: String,
    /// Seconds until the access token expires.
    pub access_expires_in: u64,
    /// Single use: each refresh returns a new one. Presenting a used one
    /// again ends the device's whole session.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("kdf", &self.kdf)
            .field("salt", &self.salt)
            .field("auth_key", &self.auth_key)
            .field("wrapped_account_key", &self.wrapped_account_key)
            .field("public_x25519", &self.public_x25519)
            .field("public_ed25519", &self.public_ed25519)
            .field("wrapped_private_keys", &self.wrapped_private_keys)
            .field("device", &self.device)
            .field("invite", &self.invite.as_ref().map(|_| "[redacted]"))
            .field("device_proof", &self.device_proof)
            .finish()
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("account_id", &self.account_id)
            .field("device_id", &self.device_id)
            .field("access_token", &"[redacted]")
            .field("access_expires_in", &self.access_expires_in)
            .field("refresh_token", &"[redacted]")
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

/// `Debug` shows `[redacted]` for the token.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

/// Everything a new device needs to unlock the account (all key material wrapped).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountResponse {
    pub account_id: Uuid,
    pub email: String,
    pub kdf: KdfParams,
    pub salt: B64,
    pub wrapped_account_key: B64,
    pub public_x25519: B64,
    pub public_ed25519: B64,
    pub wrapped_private_keys: B64,
    /// The version of the public keys (1 until keys are rotated).
    #[serde(default = "first_key_version")]
    pub key_version: u32,
    /// The account's self-signature over its identity, when it published one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_signature: Option<B64>,
    /// RFC 3339.
    pub created_at: String,
    /// The MAC the client sent with the last password change (see
    /// [`ChangePasswordRequest::mac`]); absent for an account whose password
    /// never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_mac: Option<B64>,
    /// The account key's version (1 until it is first rotated).
    #[serde(default = "first_key_version")]
    pub account_key_version: u32,
}

/// A new account key (`POST /v1/account/key`): wrapped under the same
/// unlock key as before, the private keys and every one of the account's
/// vault keys re-wrapped under it, and the MAC over the new wrap (as for a
/// password change) that other devices check before taking it. Needs a
/// login from the last minutes; ends the account's other sessions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateAccountKeyRequest {
    /// The account key's version now plus one.
    pub account_key_version: u32,
    pub wrapped_account_key: B64,
    pub wrapped_private_keys: B64,
    /// One per vault of the account (its own copy), exactly.
    pub vaults: Vec<VaultKeyWrap>,
    /// `crypto::keys::password_change_mac` under the new account key.
    pub mac: B64,
    /// The new account key sealed to the account's recovery key: given
    /// exactly when the account has recovery set up (409 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_sealed_account_key: Option<B64>,
    /// The new account key sealed to each emergency contact (by grant):
    /// exactly the account's grants (409 otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emergency: Vec<EmergencySeal>,
}

/// The new account key sealed to one emergency grant's contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencySeal {
    pub id: Uuid,
    pub sealed: B64,
}

/// A vault key wrapped under the new account key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VaultKeyWrap {
    pub id: Uuid,
    pub wrapped_key: B64,
}

/// Change of master password or KDF parameters: new auth key and the account
/// key re-wrapped. Requires an access token from a login in the last minutes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub kdf: KdfParams,
    pub salt: B64,
    pub auth_key: B64,
    pub wrapped_account_key: B64,
    /// HMAC-SHA256 (32 bytes) under a key the client derives from the
    /// account key, over the account id, `kdf`, `salt` and
    /// `wrapped_account_key`. The server cannot check it: it stores it and
    /// returns it in [`AccountResponse::password_mac`], so that the
    /// account's other devices can verify the change before adopting it.
    pub mac: B64,
}

// ---------------------------------------------------------------- emergency access

/// A new emergency grant (`POST /v1/emergency`): made on the owner's
/// device, which sealed its account key to the contact's X25519 key and
/// signed the grant with its identity key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantRequest {
    /// Chosen by the owner's device (bound into the sealed box and the signature).
    pub id: Uuid,
    pub contact_email: String,
    /// `view` or `takeover`.
    pub role: String,
    /// How long a request waits before the key is released (the server's
    /// minimum, 1 hour by default, to 90 days).
    pub wait_secs: u64,
    /// The owner's account key and ids sealed to `contact_x25519` (HPKE).
    pub sealed: B64,
    /// Ed25519 by the owner's identity key over the grant (64 bytes).
    pub signature: B64,
    /// The contact's keys the owner sealed to and signed (32 bytes each).
    pub contact_x25519: B64,
    pub contact_ed25519: B64,
}

/// A grant as either side sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantResponse {
    pub id: Uuid,
    /// The owner's account id (as its clients know it) and email.
    pub owner_id: Uuid,
    pub owner_email: String,
    pub contact_id: Uuid,
    pub contact_email: String,
    pub role: String,
    pub wait_secs: u64,
    /// `granted`, `requested` or `released`.
    pub state: String,
    /// RFC 3339, while requested or released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// RFC 3339: when the key is released (requested or released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_at: Option<String>,
    /// Seconds of the wait left (requested only; 0 when it has passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
    pub created_at: String,
    pub signature: B64,
    pub contact_x25519: B64,
    pub contact_ed25519: B64,
}

/// `GET /v1/emergency`: the grants the account gave and the ones it holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantsResponse {
    pub given: Vec<GrantResponse>,
    pub held: Vec<GrantResponse>,
}

/// `GET /v1/emergency/{id}/release`: the sealed key, once the wait passed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseResponse {
    pub grant: GrantResponse,
    pub sealed: B64,
}

// ---------------------------------------------------------------- recovery

/// Sets up (or replaces) the account's recovery data
/// (`PUT /v1/account/recovery`): everything derived from a recovery code
/// the server never sees. Needs a login from the last minutes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRecoveryRequest {
    /// The X25519 public key the code derives (32 bytes).
    pub public_key: B64,
    /// Ed25519 by the account's identity key over the public key (64 bytes).
    pub signature: B64,
    /// The auth key the code derives (32 bytes; stored as a salted hash).
    pub auth_key: B64,
    /// The account key sealed to `public_key` (HPKE).
    pub sealed_account_key: B64,
    /// The version of the account key sealed: the account's now (409 otherwise).
    pub account_key_version: u32,
}

/// The account's recovery data as its devices see it (`GET /v1/account/recovery`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryResponse {
    pub public_key: B64,
    pub signature: B64,
    pub account_key_version: u32,
    /// RFC 3339.
    pub created_at: String,
}

/// The first step of a recovery (`POST /v1/recovery/start`, no session):
/// the email and the auth key the recovery code derives.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryStartRequest {
    pub email: String,
    pub auth_key: B64,
}

/// What the code's holder needs to set new credentials: the account key
/// sealed to the recovery key, and the account's keys to check it against.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryStartResponse {
    pub account_id: Uuid,
    pub kdf: KdfParams,
    pub sealed_account_key: B64,
    pub account_key_version: u32,
    pub wrapped_private_keys: B64,
    pub public_x25519: B64,
    pub public_ed25519: B64,
}

/// The second step (`POST /v1/recovery/complete`, no session): new
/// password-derived values, as for a password change, authorized by the
/// recovery code's auth key. Ends every session and uses the code up.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryCompleteRequest {
    pub email: String,
    /// The auth key the recovery code derives.
    pub recovery_auth_key: B64,
    pub kdf: KdfParams,
    pub salt: B64,
    pub auth_key: B64,
    pub wrapped_account_key: B64,
    /// As [`ChangePasswordRequest::mac`].
    pub mac: B64,
}

// ---------------------------------------------------------------- devices

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceResponse {
    pub id: Uuid,
    pub name: String,
    pub created_at: String,
    pub last_seen_at: String,
    /// The device making this request.
    pub current: bool,
    /// What the device said it runs on at its last login, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The device that approved this one (`openk device approve`), if it
    /// came in by an approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<Uuid>,
}

// ---------------------------------------------------------------- approvals

/// `POST /v1/approvals`: a new device asks a signed-in one to let it in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApprovalRequest {
    pub email: String,
    pub device_name: String,
    /// What the new device runs on (e.g. `linux x86_64`).
    pub platform: String,
    /// The new device's one-time X25519 public key (32 bytes).
    pub pub_n: B64,
    /// SHA-256("openk approval commit v1" || pub_n || nonce_n), 32 bytes.
    pub commit: B64,
}

/// The answer to `POST /v1/approvals`, the same for every email.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateApprovalResponse {
    pub id: Uuid,
    /// The new device's credential for this request only (`Authorization:
    /// Bearer …` on its calls); the server keeps a hash.
    pub poll_token: String,
    /// Seconds until the request expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for CreateApprovalResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateApprovalResponse")
            .field("id", &self.id)
            .field("poll_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A request as either device sees it. The fields after `expires_in`
/// appear as the protocol reaches them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalResponse {
    pub id: Uuid,
    /// `pending`, `claimed`, `revealed`, `approved`, `used`, `denied`,
    /// `cancelled` or `expired`.
    pub state: String,
    pub device_name: String,
    pub platform: String,
    /// RFC 3339.
    pub created_at: String,
    /// Seconds left before it expires (0 once it has).
    pub expires_in: u64,
    pub pub_n: B64,
    pub commit: B64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pub_a: Option<B64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_a: Option<B64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_n: Option<B64>,
    /// The sealed box (to the new device only, once approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<B64>,
    /// The device that claimed it (to the account's devices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<Uuid>,
}

/// `POST /v1/approvals/{id}/claim`: the approver's one-time key and nonce.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimApprovalRequest {
    pub pub_a: B64,
    pub nonce_a: B64,
}

/// `POST /v1/approvals/{id}/reveal`: the new device opens its commitment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealApprovalRequest {
    pub nonce_n: B64,
}

/// `POST /v1/approvals/{id}/approve`: the sealed box for the new device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveApprovalRequest {
    pub sealed: B64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameDeviceRequest {
    pub name: String,
}

// ---------------------------------------------------------------- vaults

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVaultRequest {
    pub id: Uuid,
    /// The vault key wrapped by the account key.
    pub wrapped_key: B64,
    /// Vault metadata (its name) sealed with the vault key.
    pub meta: B64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VaultResponse {
    pub id: Uuid,
    pub wrapped_key: B64,
    pub meta: B64,
    /// The vault's head revision.
    pub revision: i64,
    pub created_at: String,
    /// The vault has a membership log (it is shared).
    #[serde(default)]
    pub shared: bool,
    /// The epoch of the vault's key: every live record is wrapped under it
    /// (1 until the key is first rotated).
    #[serde(default = "first_epoch")]
    pub key_epoch: u32,
}

fn first_epoch() -> u32 {
    1
}

/// One stored item version as the server holds it: ids, numbers, ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Record {
    pub item_id: Uuid,
    /// The item version the client sealed (bound into the ciphertext).
    pub version: u64,
    /// The vault revision at which this record last changed.
    pub revision: i64,
    /// A tombstone: the item was purged; the blobs are empty.
    pub deleted: bool,
    pub wrapped_key: B64,
    pub overview: B64,
    pub details: B64,
    /// In a shared vault: the author's signature over this version, as the
    /// client sent it (the server does not read it; readers check it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorship: Option<B64>,
}

/// `GET /v1/vaults/{id}/changes?since=R&limit=N`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Return records that changed after this revision (0 = everything).
    #[serde(default)]
    pub since: i64,
    /// Page size (default 500, at most 1000).
    pub limit: Option<u32>,
}

/// A page of changes, oldest revision first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangesPage {
    pub vault_id: Uuid,
    /// The vault's head revision now.
    pub head: i64,
    pub records: Vec<Record>,
    /// More records are waiting: ask again with `since = next_since`.
    pub has_more: bool,
    pub next_since: i64,
    /// The latest vault manifest a client pushed (opaque; DESIGN §6).
    pub manifest: Option<B64>,
}

/// One change in a push.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub item_id: Uuid,
    /// The revision of the server copy the change was made on (0 for a new item).
    pub base_revision: i64,
    pub version: u64,
    /// Purge the item (blobs must be empty).
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub wrapped_key: B64,
    #[serde(default)]
    pub overview: B64,
    #[serde(default)]
    pub details: B64,
    /// In a shared vault: the author's signature over this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorship: Option<B64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Chosen by the client per batch; a retried batch with the same id
    /// returns the first answer and applies nothing twice.
    pub client_change_id: Uuid,
    pub changes: Vec<Change>,
    /// The vault manifest after these changes (opaque; stored as the latest).
    pub manifest: Option<B64>,
    /// Apply the batch only if the vault's head revision is still this one;
    /// otherwise nothing is applied and the answer is 409 `head_moved`. A
    /// manifest describes the exact state after the push, whose head is
    /// `expected_head + changes.len()`, so a client that sends one should
    /// send this too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_head: Option<i64>,
    /// A shared vault's key epoch the changes are sealed under; a push under
    /// another epoch than the vault's is refused (409 `key_rotated`), and so
    /// is one without it once the key was rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_epoch: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    pub item_id: Uuid,
    pub revision: i64,
}

/// A change whose base revision no longer matches: the server's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushConflict {
    pub item_id: Uuid,
    pub current: Record,
}

/// The outcome of a push: either every change applied, or (when any change
/// conflicts) none applied and every conflict listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    pub head: i64,
    pub applied: Vec<Applied>,
    pub conflicts: Vec<PushConflict>,
}

// ---------------------------------------------------------------- events

/// A vault and its head revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VaultHead {
    pub vault_id: Uuid,
    pub head: i64,
}

/// `event: ready`, the first event of `GET /v1/events`, and sent again
/// whenever the server may have missed changes: the head of every vault of
/// the account. Pull the vaults whose head is past yours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadyEvent {
    pub vaults: Vec<VaultHead>,
}

/// `event: vault`: a push applied changes to a vault of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VaultEvent {
    pub vault_id: Uuid,
    /// The vault's head revision after that push.
    pub head: i64,
    /// The device that pushed (a device can ignore its own pushes).
    pub device_id: Uuid,
}

// ------------------------------------------------------------- identity

fn first_key_version() -> u32 {
    1
}

/// Which account's public identity to look up.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityLookup {
    pub email: String,
}

/// An account's public identity as the server publishes it: the client
/// checks the self-signature and pins the keys; the server cannot make a
/// valid one for keys of its own choosing without it showing as a changed
/// fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdentityResponse {
    pub account_id: Uuid,
    /// Normalised.
    pub email: String,
    pub key_version: u32,
    pub public_x25519: B64,
    pub public_ed25519: B64,
    /// Absent for an account that has not published one yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<B64>,
}

/// Publishes the account's self-signature (an account registered before
/// identities were signed, or after a key rotation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityRequest {
    pub key_version: u32,
    pub signature: B64,
}

// ------------------------------------------------------- shared vaults

/// One entry of a shared vault's membership log as the client signed it:
/// opaque bytes to the server, which keeps them in order and hands them
/// out; clients verify the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub seq: u64,
    pub entry: B64,
    pub signature: B64,
}

/// What an appended log entry does, said plainly for the server to enforce
/// (the signed entry says it too; clients check that one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MemberChange {
    /// Entry 0: the caller's own vault becomes shared, the caller its
    /// manager (`sealed_key`: the vault key sealed to the caller).
    Create { sealed_key: B64, key_epoch: u32 },
    /// Invites an account (by email) with a role and the vault key sealed
    /// to it; it becomes a member when it accepts.
    Grant {
        email: String,
        role: String,
        sealed_key: B64,
        key_epoch: u32,
    },
    /// Another role for a member.
    SetRole { email: String, role: String },
    /// Removes a member (by email) and rotates the vault key in the same
    /// transaction.
    Remove { email: String, rotation: Rotation },
    /// The caller leaves the vault (any member but its owner). The key is
    /// rotated by a manager afterwards ([`MemberChange::Rotate`]). No
    /// fields ([`AppendLogRequest`] refuses any).
    Leave,
    /// Rotates the vault key (a manager).
    Rotate { rotation: Rotation },
}

/// A new vault key, all at once: sealed to every remaining member (invited
/// ones too), every live item's key re-wrapped under it, the vault's
/// metadata and manifest sealed with it. Applied in one transaction, and
/// only if the vault is still exactly as the client saw it
/// (`expected_head`, and the items and versions listed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// The new epoch: the vault's current one plus one.
    pub key_epoch: u32,
    /// One per member after the change, by email.
    pub sealed_keys: Vec<SealedKeyFor>,
    /// One per live item of the vault, at its current version.
    pub records: Vec<Rewrapped>,
    /// The vault's metadata sealed with the new key.
    pub meta: B64,
    /// The manifest of the state after the rotation (each re-wrapped record
    /// gets the next revision, in the order listed).
    pub manifest: B64,
    /// The vault's head revision the rotation was computed on.
    pub expected_head: i64,
    /// The new key wrapped under the owner's account key (the owner's own
    /// copy, `GET /v1/vaults`): required when the owner rotates, refused
    /// from anyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_wrapped_key: Option<B64>,
}

/// The new vault key sealed to one member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedKeyFor {
    pub email: String,
    pub sealed_key: B64,
}

/// One live item's key, re-wrapped under the new vault key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rewrapped {
    pub item_id: Uuid,
    pub version: u64,
    pub wrapped_key: B64,
    /// A signature for a version that had none (one the vault held before
    /// it was shared, vouched for by the rotating manager); stored in place
    /// of the absent one, never over one that exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorship: Option<B64>,
}

/// The caller's copy of a shared vault's key: sealed to it, and the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VaultKeyResponse {
    pub key_epoch: u32,
    pub sealed_key: B64,
}

/// Appends an entry to a vault's membership log (a manager only; entry 0
/// by the vault's owner).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendLogRequest {
    pub entry: LogEntry,
    #[serde(deserialize_with = "member_change")]
    pub change: MemberChange,
}

/// [`MemberChange`] refusing unknown fields in every kind: serde's
/// `deny_unknown_fields` does not reach an internally tagged unit variant,
/// so `{"kind": "leave", "email": …}` (the caller would leave, whoever the
/// email names) would pass unnoticed.
fn member_change<'de, D: Deserializer<'de>>(d: D) -> Result<MemberChange, D::Error> {
    use serde::de::Error as _;
    let value = serde_json::Value::deserialize(d)?;
    if let Some(fields) = value.as_object()
        && fields.get("kind").and_then(serde_json::Value::as_str) == Some("leave")
        && let Some(extra) = fields.keys().find(|k| *k != "kind")
    {
        return Err(D::Error::custom(format!(
            "unknown field `{extra}`: `leave` takes none"
        )));
    }
    MemberChange::deserialize(value).map_err(D::Error::custom)
}

/// A member of a shared vault as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberResponse {
    /// The member's account id (the client's).
    pub account_id: Uuid,
    pub email: String,
    /// `viewer`, `editor` or `manager`.
    pub role: String,
    /// `invited` or `active`.
    pub status: String,
}

/// A vault another account shares with the caller (or invites it to).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedVaultResponse {
    pub id: Uuid,
    pub owner_email: String,
    pub role: String,
    pub status: String,
    /// The vault key sealed to the caller (HPKE), of `key_epoch`.
    pub sealed_key: B64,
    pub key_epoch: u32,
    /// Sealed with the vault key (its name).
    pub meta: B64,
    pub revision: i64,
}

/// New sealed metadata for a vault (a rename; sealed with the vault key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVaultRequest {
    pub meta: B64,
}

/// Accepts or declines an invitation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipRequest {
    pub accept: bool,
}

// ---------------------------------------------------------------- audit

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `register`, `login`, `login_failed`, `refresh_reuse`, `logout`,
    /// `device_added`, `device_renamed`, `device_revoked`, `password_changed`,
    /// `vault_created`, `identity_published`.
    pub kind: String,
    pub device_id: Option<Uuid>,
    pub address: Option<String>,
    /// Non-secret detail (e.g. a device name).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many events, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

// ---------------------------------------------------------------- share links

/// A new share link: the client's ciphertext of one item snapshot (the key
/// stays in the link's URL fragment and never reaches the server).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShareRequest {
    /// `version || nonce || ciphertext+tag` (AES-256-GCM, docs/security.md).
    pub ciphertext: B64,
    /// Seconds until the link is gone (60 s to 30 days).
    pub expires_in: u64,
    /// The link is gone after this many opens (1 to 1000); none: only the expiry ends it.
    #[serde(default)]
    pub max_views: Option<u32>,
}

/// One of the account's live share links (never its ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShareResponse {
    /// The link's id: the `ID` of `/s/ID`.
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    pub max_views: Option<u32>,
    /// Opens left (none: no limit but the expiry).
    pub views_left: Option<u32>,
}

/// What opening a link answers (the view is counted).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenShareResponse {
    pub ciphertext: B64,
}

// ---------------------------------------------------------------- item usage

/// `PUT /v1/usage`: this device's usage counters, sealed by the client
/// (which items it used, how often, when: the server cannot read them).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutUsageRequest {
    /// `version || nonce || ciphertext+tag`, at most 512 KiB.
    pub blob: B64,
}

/// What an upload of usage counters answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PutUsageResponse {
    /// The upload's revision: higher than every earlier upload of the account.
    pub revision: i64,
}

/// `GET /v1/usage?since=R`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// Only blobs uploaded after this revision (0 = every device's).
    #[serde(default)]
    pub since: i64,
}

/// One device's usage counters as the server holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceUsage {
    pub device_id: Uuid,
    pub revision: i64,
    /// RFC 3339: when the device uploaded it.
    pub updated_at: String,
    pub blob: B64,
}

/// A page of the account's devices' usage counters, lowest revision first
/// (revoked devices' included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsagePage {
    pub devices: Vec<DeviceUsage>,
    /// More are waiting: ask again with `since = next_since`.
    pub has_more: bool,
    /// The highest revision in this page (or `since` when it is empty).
    pub next_since: i64,
}

// ---------------------------------------------------------------- security history

/// `POST /v1/account/history`: one entry of the account's security
/// history, as its device signed it (the format is in `api::history`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendHistoryRequest {
    /// The signed entry: header, kind, detail, then the 64-byte signature.
    pub entry: B64,
}

/// What an append answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppendHistoryResponse {
    /// The entry's number: the new head.
    pub seq: i64,
}

/// `GET /v1/account/history?after=N`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only entries numbered above this (0 = from the first).
    #[serde(default)]
    pub after: i64,
}

/// A page of the account's security history, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    /// The signed entries numbered `after + 1`, `after + 2`, … (the number
    /// is inside each entry).
    pub entries: Vec<B64>,
    /// The number of the account's newest entry (0: none).
    pub head: i64,
    /// More are waiting: ask again after the last one here.
    pub has_more: bool,
}

// ---------------------------------------------------------------- errors

/// RFC 9457 problem details, with a stable machine `code` (docs/errors.md).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `head_moved` only: the vault's head revision now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The share-link wire format, pinned (the client and the page read it).
    #[test]
    fn share_wire_format_is_stable() {
        let req: CreateShareRequest =
            serde_json::from_str(r#"{"ciphertext":"AQID","expires_in":3600,"max_views":2}"#)
                .expect("parses");
        assert_eq!(
            (req.ciphertext.0.as_slice(), req.expires_in, req.max_views),
            (&[1u8, 2, 3][..], 3600, Some(2))
        );
        let no_limit: CreateShareRequest =
            serde_json::from_str(r#"{"ciphertext":"AQID","expires_in":60}"#).expect("parses");
        assert_eq!(no_limit.max_views, None);
        assert!(
            serde_json::from_str::<CreateShareRequest>(
                r#"{"ciphertext":"AQID","expires_in":60,"key":"x"}"#
            )
            .is_err(),
            "unknown fields are refused"
        );
        let res = ShareResponse {
            id: "AbC".into(),
            created_at: "2026-12-04T00:00:00Z".into(),
            expires_at: "2026-12-11T00:00:00Z".into(),
            max_views: None,
            views_left: None,
        };
        assert_eq!(
            serde_json::to_string(&res).expect("json"),
            r#"{"id":"AbC","created_at":"2026-12-04T00:00:00Z","expires_at":"2026-12-11T00:00:00Z","max_views":null,"views_left":null}"#
        );
        let open = OpenShareResponse {
            ciphertext: B64(vec![1, 2, 3]),
        };
        assert_eq!(
            serde_json::to_string(&open).expect("json"),
            r#"{"ciphertext":"AQID"}"#
        );
    }

    #[test]
    fn debug_never_shows_tokens_or_auth_keys() {
        let tokens = TokenResponse {
            account_id: Uuid::nil(),
            device_id: Uuid::nil(),
            access_token: "ok_at_Zq-access-secret".into(),
            access_expires_in: 900,
            refresh_token: "ok_rt_Zq-refresh-secret".into(),
            refresh_expires_in: 86_400,
        };
        let shown = format!("{tokens:?} {tokens:#?}");
        assert!(
            !shown.contains("Zq-access") && !shown.contains("Zq-refresh"),
            "{shown}"
        );
        assert!(
            shown.contains("[redacted]") && shown.contains("900"),
            "{shown}"
        );
        let refresh = RefreshRequest {
            refresh_token: "ok_rt_Zq-refresh-secret".into(),
        };
        let shown = format!("{refresh:?}");
        assert!(!shown.contains("Zq-refresh"), "{shown}");
        // Auth keys (LoginRequest, RegisterRequest, ChangePasswordRequest)
        // travel as B64, whose Debug is only a length.
        let key = B64(vec![0x5a; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "B64(32 bytes)");
    }

    #[test]
    fn debug_never_shows_an_invite_code() {
        let request = RegisterRequest {
            account_id: Uuid::nil(),
            email: "a@example.com".into(),
            kdf: KdfParams {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1,
            },
            salt: B64(vec![1; 16]),
            auth_key: B64(vec![2; 32]),
            wrapped_account_key: B64(vec![3; 40]),
            public_x25519: B64(vec![4; 32]),
            public_ed25519: B64(vec![5; 32]),
            wrapped_private_keys: B64(vec![6; 80]),
            identity_signature: None,
            device: DeviceInfo {
                platform: None,
                id: Uuid::nil(),
                name: "laptop".into(),
            },
            invite: Some("inv-Zq-one-time-code".into()),
            device_proof: Some(B64(vec![7; 32])),
        };
        let shown = format!("{request:?} {request:#?}");
        assert!(!shown.contains("Zq-one-time"), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("laptop"),
            "{shown}"
        );
    }

    /// Golden wire format: field names and base64 encoding must not drift.
    #[test]
    fn record_wire_format_is_stable() {
        let r = Record {
            item_id: Uuid::nil(),
            version: 2,
            revision: 7,
            deleted: false,
            wrapped_key: B64(vec![1, 2, 3]),
            overview: B64(vec![]),
            details: B64(vec![255]),
            authorship: None,
        };
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"item_id":"00000000-0000-0000-0000-000000000000","version":2,"revision":7,"deleted":false,"wrapped_key":"AQID","overview":"","details":"/w=="}"#
        );
    }

    #[test]
    fn event_wire_format_is_stable() {
        let nil = Uuid::nil();
        let zero = "00000000-0000-0000-0000-000000000000";
        let ready = ReadyEvent {
            vaults: vec![VaultHead {
                vault_id: nil,
                head: 3,
            }],
        };
        assert_eq!(
            serde_json::to_string(&ready).expect("json"),
            format!(r#"{{"vaults":[{{"vault_id":"{zero}","head":3}}]}}"#)
        );
        let vault = VaultEvent {
            vault_id: nil,
            head: 4,
            device_id: nil,
        };
        assert_eq!(
            serde_json::to_string(&vault).expect("json"),
            format!(r#"{{"vault_id":"{zero}","head":4,"device_id":"{zero}"}}"#)
        );
    }

    /// `expected_head` is optional both ways, so older clients still work.
    #[test]
    fn expected_head_is_optional_on_the_wire() {
        let zero = "00000000-0000-0000-0000-000000000000";
        let push: PushRequest = serde_json::from_str(&format!(
            r#"{{"client_change_id":"{zero}","changes":[],"manifest":null}}"#
        ))
        .expect("without expected_head");
        assert_eq!(push.expected_head, None);
        assert_eq!(
            serde_json::to_string(&push).expect("json"),
            format!(r#"{{"client_change_id":"{zero}","changes":[],"manifest":null}}"#)
        );
        let push: PushRequest = serde_json::from_str(&format!(
            r#"{{"client_change_id":"{zero}","changes":[],"expected_head":9}}"#
        ))
        .expect("with expected_head");
        assert_eq!(push.expected_head, Some(9));
        let problem: Problem = serde_json::from_str(
            r#"{"type":"t","title":"Conflict","status":409,"code":"head_moved","head":12}"#,
        )
        .expect("problem with head");
        assert_eq!(problem.head, Some(12));
    }

    /// Every kind of membership change refuses a field it does not have,
    /// `leave` (a unit variant, which serde alone lets through) too.
    #[test]
    fn member_changes_refuse_unknown_fields() {
        let entry = r#"{"seq":4,"entry":"AQ==","signature":"AQ=="}"#;
        let request = |change: &str| {
            serde_json::from_str::<AppendLogRequest>(&format!(
                r#"{{"entry":{entry},"change":{change}}}"#
            ))
        };
        let leave = request(r#"{"kind":"leave"}"#).expect("leave");
        assert!(matches!(leave.change, MemberChange::Leave), "{leave:?}");
        let sent = serde_json::to_string(&leave).expect("json");
        assert!(sent.ends_with(r#""change":{"kind":"leave"}}"#), "{sent}");
        for change in [
            r#"{"kind":"leave","email":"bob@example.org"}"#,
            r#"{"email":"bob@example.org","kind":"leave"}"#,
            r#"{"kind":"set_role","email":"bob@example.org","role":"viewer","x":1}"#,
            r#"{"kind":"leaves"}"#,
            r#"{"email":"bob@example.org"}"#,
            r#""leave""#,
        ] {
            assert!(request(change).is_err(), "{change} was accepted");
        }
        let role = request(r#"{"kind":"set_role","email":"b@example.org","role":"viewer"}"#)
            .expect("set_role");
        assert!(matches!(role.change, MemberChange::SetRole { .. }));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<B64>("\"not base64!\"").is_err());
        assert!(serde_json::from_str::<PreloginRequest>(r#"{"email":"a@b","extra":1}"#).is_err());
        assert!(serde_json::from_str::<PreloginRequest>(r#"{"email":5}"#).is_err());
        assert!(serde_json::from_str::<PushRequest>("").is_err());
    }
}
