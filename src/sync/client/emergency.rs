//! Emergency access routes (`/v1/emergency…`).

use openk_server::api::types::{
    ChangePasswordRequest, ChangesPage, CreateGrantRequest, GrantResponse, GrantsResponse,
    ReleaseResponse, VaultResponse,
};
use reqwest::Method;
use uuid::Uuid;

use super::{Client, SyncError};

impl Client {
    /// Grants emergency access (the owner).
    pub async fn create_grant(&self, req: &CreateGrantRequest) -> Result<GrantResponse, SyncError> {
        self.expect(Method::POST, "/v1/emergency", Some(req)).await
    }

    /// The grants the account gave and holds.
    pub async fn grants(&self) -> Result<GrantsResponse, SyncError> {
        self.expect::<(), _>(Method::GET, "/v1/emergency", None)
            .await
    }

    /// The contact asks for access (the wait starts).
    pub async fn request_grant(&self, id: Uuid) -> Result<GrantResponse, SyncError> {
        self.expect(
            Method::POST,
            &format!("/v1/emergency/{id}/request"),
            Some(&serde_json::json!({})),
        )
        .await
    }

    /// The owner denies a pending request.
    pub async fn deny_grant(&self, id: Uuid) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            &format!("/v1/emergency/{id}/deny"),
            Some(&serde_json::json!({})),
        )
        .await
        .map(|_| ())
    }

    /// The owner revokes a grant.
    pub async fn revoke_grant(&self, id: Uuid) -> Result<(), SyncError> {
        self.call::<(), serde_json::Value>(Method::DELETE, &format!("/v1/emergency/{id}"), None)
            .await
            .map(|_| ())
    }

    /// The sealed key, once the wait passed ([`SyncError::Waiting`] before).
    pub async fn release_grant(&self, id: Uuid) -> Result<ReleaseResponse, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/emergency/{id}/release"), None)
            .await
    }

    /// The owner's vaults, through a released grant.
    pub async fn grant_vaults(&self, id: Uuid) -> Result<Vec<VaultResponse>, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/emergency/{id}/vaults"), None)
            .await
    }

    /// A page of an owner's vault's changes, through a released grant.
    pub async fn grant_changes(
        &self,
        id: Uuid,
        vault: Uuid,
        since: i64,
    ) -> Result<ChangesPage, SyncError> {
        self.expect::<(), _>(
            Method::GET,
            &format!("/v1/emergency/{id}/vaults/{vault}/changes?since={since}&limit=200"),
            None,
        )
        .await
    }

    /// Takes the owner's account over through a released takeover grant.
    pub async fn takeover_grant(
        &self,
        id: Uuid,
        req: &ChangePasswordRequest,
    ) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            &format!("/v1/emergency/{id}/takeover"),
            Some(req),
        )
        .await
        .map(|_| ())
    }
}
