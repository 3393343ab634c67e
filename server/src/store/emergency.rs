//! Emergency access (issue 13): grants of an owner's account key to a
//! contact, released after a wait the owner can interrupt. The store sees
//! ciphertext (the key sealed to the contact on the owner's device), an
//! opaque signature and the contact's public keys as the owner signed them.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Account, StoreResult};

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Given; the contact has not asked.
    Granted,
    /// The contact asked at `requested_at`; the wait runs.
    Requested,
    /// The wait passed and the contact fetched the sealed key.
    Released,
}

impl GrantState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Requested => "requested",
            Self::Released => "released",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "granted" => Some(Self::Granted),
            "requested" => Some(Self::Requested),
            "released" => Some(Self::Released),
            _ => None,
        }
    }
}

/// A grant as stored (ids are the server's account ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: Uuid,
    pub owner: Uuid,
    pub contact: Uuid,
    /// `view` or `takeover`.
    pub role: String,
    pub wait_secs: i64,
    /// The owner's account key (and ids) sealed to `contact_x25519`.
    pub sealed: Vec<u8>,
    /// The owner's Ed25519 signature over the grant (opaque here).
    pub signature: Vec<u8>,
    pub contact_x25519: Vec<u8>,
    pub contact_ed25519: Vec<u8>,
    pub state: GrantState,
    /// Unix milliseconds of the pending (or releasing) request.
    pub requested_at: Option<i64>,
    pub created_at: i64,
}

impl Grant {
    /// Unix milliseconds from which the sealed key is released (`None`
    /// without a request).
    #[must_use]
    pub fn release_at(&self) -> Option<i64> {
        self.requested_at
            .map(|r| r.saturating_add(self.wait_secs.saturating_mul(1000)))
    }
}

/// What came of asking for a grant's sealed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// No such grant held by this contact.
    NotFound,
    /// Not requested (or the request was denied).
    NotRequested,
    /// The wait still runs: this many milliseconds left.
    Waiting(i64),
    /// Released (now or before): the grant.
    Released(Grant),
}

/// Owners' emergency grants.
#[async_trait]
pub trait EmergencyStore: Send + Sync {
    /// Stores a new grant. `Conflict` when the owner already has a grant
    /// for this contact (or the id exists).
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()>;
    /// A grant by id.
    async fn grant(&self, id: Uuid) -> StoreResult<Option<Grant>>;
    /// The grants the account gave (as owner) and holds (as contact).
    async fn grants_of(&self, account: Uuid) -> StoreResult<(Vec<Grant>, Vec<Grant>)>;
    /// The contact's request: `granted` becomes `requested` at `now`.
    /// `false` when the contact holds no such grant; a grant already
    /// requested or released stays as it is (`true`).
    async fn request_grant(&self, id: Uuid, contact: Uuid, now: i64) -> StoreResult<bool>;
    /// The owner's denial of a pending request: back to `granted`, the
    /// request cleared. `false` when the owner has no such grant waiting.
    async fn deny_grant(&self, id: Uuid, owner: Uuid) -> StoreResult<bool>;
    /// The owner's revocation: the grant (and its sealed key) deleted.
    async fn delete_grant(&self, id: Uuid, owner: Uuid) -> StoreResult<bool>;
    /// The contact asks for the sealed key at `now`: released (and marked
    /// so) once a request waited the grant's wait, in one statement.
    async fn release_grant(&self, id: Uuid, contact: Uuid, now: i64) -> StoreResult<Release>;
    /// A takeover by the contact of a released `takeover` grant, in one
    /// transaction: the owner's new credentials (as
    /// [`super::AccountStore::update_account_keys`]), every session of the
    /// owner ended, and the grant deleted (used up). `Conflict` when the
    /// contact holds no such released takeover grant (any more). Returns
    /// the ended sessions' access hashes.
    async fn take_over(
        &self,
        owner: &Account,
        grant: Uuid,
        contact: Uuid,
    ) -> StoreResult<Vec<Vec<u8>>>;
}
