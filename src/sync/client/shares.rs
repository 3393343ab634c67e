//! The share-link calls of [`Client`] (`/v1/shares`).

use openk_server::api::types::{CreateShareRequest, OpenShareResponse, ShareResponse};
use reqwest::Method;

use super::{Client, SyncError};

impl Client {
    pub async fn create_share(&self, req: &CreateShareRequest) -> Result<ShareResponse, SyncError> {
        self.expect(Method::POST, "/v1/shares", Some(req)).await
    }

    pub async fn shares(&self) -> Result<Vec<ShareResponse>, SyncError> {
        self.expect::<(), _>(Method::GET, "/v1/shares", None).await
    }

    pub async fn revoke_share(&self, id: &str) -> Result<(), SyncError> {
        self.call::<(), serde_json::Value>(Method::DELETE, &format!("/v1/shares/{id}"), None)
            .await
            .map(|_| ())
    }

    /// Opens a share link (no account: a client without a token); counts
    /// one view on the server.
    pub async fn open_share(&self, id: &str) -> Result<OpenShareResponse, SyncError> {
        self.expect::<(), _>(Method::POST, &format!("/v1/shares/{id}/open"), None)
            .await
    }
}
