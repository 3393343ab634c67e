//! Account recovery routes (`/v1/account/recovery`, `/v1/recovery/*`).

use openk_server::api::types::{
    PutRecoveryRequest, RecoveryCompleteRequest, RecoveryResponse, RecoveryStartRequest,
    RecoveryStartResponse,
};
use reqwest::Method;

use super::{Client, SyncError};

impl Client {
    /// Sets up (or replaces) the account's recovery data.
    pub async fn put_recovery(&self, req: &PutRecoveryRequest) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(Method::PUT, "/v1/account/recovery", Some(req))
            .await
            .map(|_| ())
    }

    /// The account's recovery data, or `None` when none is set up.
    pub async fn recovery(&self) -> Result<Option<RecoveryResponse>, SyncError> {
        match self
            .expect::<(), _>(Method::GET, "/v1/account/recovery", None)
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(SyncError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the account's recovery data; whether there was any.
    pub async fn delete_recovery(&self) -> Result<bool, SyncError> {
        match self
            .call::<(), serde_json::Value>(Method::DELETE, "/v1/account/recovery", None)
            .await
        {
            Ok(_) => Ok(true),
            Err(SyncError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The first step of a recovery (no session).
    pub async fn recovery_start(
        &self,
        req: &RecoveryStartRequest,
    ) -> Result<RecoveryStartResponse, SyncError> {
        self.expect(Method::POST, "/v1/recovery/start", Some(req))
            .await
    }

    /// The second step: new credentials; every session ends.
    pub async fn recovery_complete(&self, req: &RecoveryCompleteRequest) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(Method::POST, "/v1/recovery/complete", Some(req))
            .await
            .map(|_| ())
    }
}
