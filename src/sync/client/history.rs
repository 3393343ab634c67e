//! The security-history calls of [`Client`] (`/v1/account/history`).

use openk_server::api::types::{AppendHistoryRequest, AppendHistoryResponse, B64, HistoryPage};
use reqwest::Method;

use super::{Client, SyncError};

impl Client {
    /// Appends one signed entry to the account's security history
    /// ([`SyncError::Conflict`]: it does not name the head any more).
    pub async fn append_history(&self, record: &[u8]) -> Result<AppendHistoryResponse, SyncError> {
        self.expect(
            Method::POST,
            "/v1/account/history",
            Some(&AppendHistoryRequest {
                entry: B64(record.to_vec()),
            }),
        )
        .await
    }

    /// The account's security history after entry `after` (one page).
    pub async fn history(&self, after: u64) -> Result<HistoryPage, SyncError> {
        self.expect::<(), _>(
            Method::GET,
            &format!("/v1/account/history?after={after}"),
            None,
        )
        .await
    }
}
