//! The device-approval calls of [`Client`] (`/v1/approvals`). The new
//! device's calls carry its poll token as the bearer token
//! ([`Client::with_token`]); the approver's, its access token.

use openk_server::api::types::{
    ApprovalResponse, ApproveApprovalRequest, B64, ClaimApprovalRequest, CreateApprovalRequest,
    CreateApprovalResponse, RevealApprovalRequest,
};
use reqwest::Method;
use uuid::Uuid;

use super::{Client, SyncError};

impl Client {
    /// A new device asks to be let in (no token).
    pub async fn create_approval(
        &self,
        req: &CreateApprovalRequest,
    ) -> Result<CreateApprovalResponse, SyncError> {
        self.expect(Method::POST, "/v1/approvals", Some(req)).await
    }

    /// The account's open requests.
    pub async fn approvals(&self) -> Result<Vec<ApprovalResponse>, SyncError> {
        self.expect::<(), _>(Method::GET, "/v1/approvals", None)
            .await
    }

    /// One request (poll token or access token).
    pub async fn approval(&self, id: Uuid) -> Result<ApprovalResponse, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/approvals/{id}"), None)
            .await
    }

    pub async fn claim_approval(
        &self,
        id: Uuid,
        pub_a: [u8; 32],
        nonce_a: [u8; 32],
    ) -> Result<ApprovalResponse, SyncError> {
        self.expect(
            Method::POST,
            &format!("/v1/approvals/{id}/claim"),
            Some(&ClaimApprovalRequest {
                pub_a: B64(pub_a.to_vec()),
                nonce_a: B64(nonce_a.to_vec()),
            }),
        )
        .await
    }

    pub async fn reveal_approval(&self, id: Uuid, nonce_n: &[u8]) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            &format!("/v1/approvals/{id}/reveal"),
            Some(&RevealApprovalRequest {
                nonce_n: B64(nonce_n.to_vec()),
            }),
        )
        .await
        .map(|_| ())
    }

    pub async fn approve_approval(&self, id: Uuid, sealed: Vec<u8>) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            &format!("/v1/approvals/{id}/approve"),
            Some(&ApproveApprovalRequest {
                sealed: B64(sealed),
            }),
        )
        .await
        .map(|_| ())
    }

    pub async fn deny_approval(&self, id: Uuid) -> Result<(), SyncError> {
        self.call::<(), serde_json::Value>(Method::POST, &format!("/v1/approvals/{id}/deny"), None)
            .await
            .map(|_| ())
    }

    pub async fn cancel_approval(&self, id: Uuid) -> Result<(), SyncError> {
        self.call::<(), serde_json::Value>(
            Method::POST,
            &format!("/v1/approvals/{id}/cancel"),
            None,
        )
        .await
        .map(|_| ())
    }
}
