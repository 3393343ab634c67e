//! The item-usage calls of [`Client`] (`/v1/usage`).

use openk_server::api::types::{B64, PutUsageRequest, PutUsageResponse, UsagePage};
use reqwest::Method;

use super::{Client, SyncError};

impl Client {
    /// Stores this device's sealed usage counters.
    pub async fn put_usage(&self, blob: &[u8]) -> Result<PutUsageResponse, SyncError> {
        self.expect(
            Method::PUT,
            "/v1/usage",
            Some(&PutUsageRequest {
                blob: B64(blob.to_vec()),
            }),
        )
        .await
    }

    /// The account's devices' usage counters uploaded after revision `since`.
    pub async fn usage(&self, since: i64) -> Result<UsagePage, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/usage?since={since}"), None)
            .await
    }
}
