//! Device approval (issue 13): the requests of new devices that a signed-in
//! device of the account approves. The store relays what the two devices
//! exchange (public keys, nonces, a commitment, a sealed box) and never
//! reads it; the protocol and why the server cannot cheat it are in
//! docs/security.md ("Device approval").
//!
//! A request moves `pending` → `claimed` (an approver sent its key and
//! nonce) → `revealed` (the new device opened its commitment) → `approved`
//! (the sealed box is there) → `used` (the new device logged in with it);
//! or to `denied` (by an approver) or `cancelled` (by the new device) from
//! any state before `approved`. Each step happens once: a step whose state
//! does not fit changes nothing. A request past `expires_at` takes no step.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// A request's state (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    Claimed,
    Revealed,
    Approved,
    Used,
    Denied,
    Cancelled,
}

impl ApprovalState {
    /// The name stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Revealed => "revealed",
            Self::Approved => "approved",
            Self::Used => "used",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state a stored name names.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "claimed" => Self::Claimed,
            "revealed" => Self::Revealed,
            "approved" => Self::Approved,
            "used" => Self::Used,
            "denied" => Self::Denied,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Still waiting for an approver's decision.
    #[must_use]
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Claimed | Self::Revealed)
    }
}

/// A request as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: Uuid,
    /// The server's id of the account; `None` for an unknown email.
    pub account_id: Option<Uuid>,
    pub device_name: String,
    pub platform: String,
    /// The new device's X25519 public key.
    pub pub_n: Vec<u8>,
    /// SHA-256 commitment to `pub_n` and the new device's nonce.
    pub commitment: Vec<u8>,
    /// SHA-256 of the new device's polling token.
    pub poll_hash: Vec<u8>,
    pub state: ApprovalState,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
    /// The approving device (set by the claim).
    pub claimed_by: Option<Uuid>,
    pub pub_a: Option<Vec<u8>>,
    pub nonce_a: Option<Vec<u8>>,
    pub nonce_n: Option<Vec<u8>>,
    pub sealed: Option<Vec<u8>>,
    /// When it was approved, denied or cancelled.
    pub decided_at: Option<i64>,
}

/// A device's platform and approver, as `GET /v1/devices` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDetails {
    pub id: Uuid,
    pub platform: Option<String>,
    pub approved_by: Option<Uuid>,
}

/// The approval requests, and what devices say about themselves.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Stores a new request (state `pending`); forgets requests that
    /// expired more than a day before `now`.
    async fn create_approval(&self, approval: &Approval, now: i64) -> StoreResult<()>;
    /// A request by id, whatever its state.
    async fn approval(&self, id: Uuid) -> StoreResult<Option<Approval>>;
    /// The account's requests still open at `now`, oldest first.
    async fn open_approvals(&self, account_id: Uuid, now: i64) -> StoreResult<Vec<Approval>>;
    /// `pending` → `claimed` by `device_id` with its key and nonce; `false`
    /// (nothing changed) unless the request is the account's, pending and
    /// not expired.
    async fn claim_approval(
        &self,
        account_id: Uuid,
        id: Uuid,
        device_id: Uuid,
        pub_a: &[u8],
        nonce_a: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    /// `claimed` → `revealed` with the new device's nonce; `false` unless
    /// claimed and not expired.
    async fn reveal_approval(&self, id: Uuid, nonce_n: &[u8], now: i64) -> StoreResult<bool>;
    /// `revealed` → `approved` with the sealed box, by the device that
    /// claimed it; the request then stays usable until `use_by`. `false`
    /// unless all of that holds and it has not expired.
    async fn approve_approval(
        &self,
        account_id: Uuid,
        id: Uuid,
        device_id: Uuid,
        sealed: &[u8],
        now: i64,
        use_by: i64,
    ) -> StoreResult<bool>;
    /// An open request of the account → `denied`; `false` when there is none.
    async fn deny_approval(&self, account_id: Uuid, id: Uuid, now: i64) -> StoreResult<bool>;
    /// An open request → `cancelled` (by the new device); `false` when it is not open.
    async fn cancel_approval(&self, id: Uuid, now: i64) -> StoreResult<bool>;
    /// `approved` → `used` at a login of the account: returns the approving
    /// device, or `None` (nothing changed) unless the request is the
    /// account's, approved and not expired.
    async fn use_approval(&self, account_id: Uuid, id: Uuid, now: i64)
    -> StoreResult<Option<Uuid>>;
    /// Sets a device's platform (when given) and approver (when given).
    async fn set_device_details(
        &self,
        account_id: Uuid,
        device_id: Uuid,
        platform: Option<&str>,
        approved_by: Option<Uuid>,
    ) -> StoreResult<()>;
    /// The platform and approver of each of the account's devices.
    async fn device_details(&self, account_id: Uuid) -> StoreResult<Vec<DeviceDetails>>;
}
