//! Device approval requests ([`ApprovalStore`]). Every step is one
//! conditional `UPDATE` (state, account and expiry in its `WHERE`), so two
//! approvers racing, or a step repeated, change a request at most once.

use super::*;
use crate::store::approvals::{Approval, ApprovalState, ApprovalStore, DeviceDetails};

/// How long after expiry a request is kept (for `GET` answers that say
/// `expired` rather than not found).
const KEEP_EXPIRED_MS: i64 = 24 * 60 * 60 * 1000;

macro_rules! approval_columns {
    () => {
        "id, account_id, device_name, platform, pub_n, commitment, poll_hash, state, created_at, \
         expires_at, claimed_by, pub_a, nonce_a, nonce_n, sealed, decided_at"
    };
}

/// Implements [`ApprovalStore`] for one SQL backend (see the parent module).
macro_rules! sql_approvals {
    ($store:ident, $db:ty) => {
        impl $store {
            fn approval_from(row: &<$db as sqlx::Database>::Row) -> StoreResult<Approval> {
                let state: String = row.try_get("state")?;
                Ok(Approval {
                    id: parse_uuid(&row.try_get::<String, _>("id")?)?,
                    account_id: parse_opt_uuid(row.try_get("account_id")?)?,
                    device_name: row.try_get("device_name")?,
                    platform: row.try_get("platform")?,
                    pub_n: row.try_get("pub_n")?,
                    commitment: row.try_get("commitment")?,
                    poll_hash: row.try_get("poll_hash")?,
                    state: ApprovalState::parse(&state)
                        .ok_or_else(|| damaged(format!("approval state {state:?}")))?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    claimed_by: parse_opt_uuid(row.try_get("claimed_by")?)?,
                    pub_a: row.try_get("pub_a")?,
                    nonce_a: row.try_get("nonce_a")?,
                    nonce_n: row.try_get("nonce_n")?,
                    sealed: row.try_get("sealed")?,
                    decided_at: row.try_get("decided_at")?,
                })
            }
        }

        #[async_trait]
        impl ApprovalStore for $store {
            async fn create_approval(&self, a: &Approval, now: i64) -> StoreResult<()> {
                sqlx::query("DELETE FROM approvals WHERE expires_at < $1")
                    .bind(now.saturating_sub(KEEP_EXPIRED_MS))
                    .execute(&self.pool)
                    .await?;
                sqlx::query(concat!(
                    "INSERT INTO approvals (",
                    approval_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, NULL, NULL, NULL)"
                ))
                .bind(a.id.to_string())
                .bind(a.account_id.map(|id| id.to_string()))
                .bind(&a.device_name)
                .bind(&a.platform)
                .bind(a.pub_n.as_slice())
                .bind(a.commitment.as_slice())
                .bind(a.poll_hash.as_slice())
                .bind(ApprovalState::Pending.as_str())
                .bind(a.created_at)
                .bind(a.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn approval(&self, id: Uuid) -> StoreResult<Option<Approval>> {
                sqlx::query(concat!("SELECT ", approval_columns!(), " FROM approvals WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::approval_from)
                    .transpose()
            }

            async fn open_approvals(&self, account_id: Uuid, now: i64) -> StoreResult<Vec<Approval>> {
                sqlx::query(concat!(
                    "SELECT ",
                    approval_columns!(),
                    " FROM approvals WHERE account_id = $1 AND expires_at > $2 \
                     AND state IN ('pending', 'claimed', 'revealed') ORDER BY created_at, id"
                ))
                .bind(account_id.to_string())
                .bind(now)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::approval_from)
                .collect()
            }

            async fn claim_approval(
                &self,
                account_id: Uuid,
                id: Uuid,
                device_id: Uuid,
                pub_a: &[u8],
                nonce_a: &[u8],
                now: i64,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE approvals SET state = 'claimed', claimed_by = $3, pub_a = $4, nonce_a = $5 \
                     WHERE id = $1 AND account_id = $2 AND state = 'pending' AND expires_at > $6",
                )
                .bind(id.to_string())
                .bind(account_id.to_string())
                .bind(device_id.to_string())
                .bind(pub_a)
                .bind(nonce_a)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn reveal_approval(&self, id: Uuid, nonce_n: &[u8], now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE approvals SET state = 'revealed', nonce_n = $2 \
                     WHERE id = $1 AND state = 'claimed' AND expires_at > $3",
                )
                .bind(id.to_string())
                .bind(nonce_n)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn approve_approval(
                &self,
                account_id: Uuid,
                id: Uuid,
                device_id: Uuid,
                sealed: &[u8],
                now: i64,
                use_by: i64,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE approvals SET state = 'approved', sealed = $4, decided_at = $5, expires_at = $6 \
                     WHERE id = $1 AND account_id = $2 AND claimed_by = $3 AND state = 'revealed' \
                     AND expires_at > $5",
                )
                .bind(id.to_string())
                .bind(account_id.to_string())
                .bind(device_id.to_string())
                .bind(sealed)
                .bind(now)
                .bind(use_by)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn deny_approval(&self, account_id: Uuid, id: Uuid, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE approvals SET state = 'denied', decided_at = $3 \
                     WHERE id = $1 AND account_id = $2 AND state IN ('pending', 'claimed', 'revealed')",
                )
                .bind(id.to_string())
                .bind(account_id.to_string())
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn cancel_approval(&self, id: Uuid, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE approvals SET state = 'cancelled', decided_at = $2 \
                     WHERE id = $1 AND state IN ('pending', 'claimed', 'revealed')",
                )
                .bind(id.to_string())
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_approval(
                &self,
                account_id: Uuid,
                id: Uuid,
                now: i64,
            ) -> StoreResult<Option<Uuid>> {
                let row = sqlx::query(
                    "UPDATE approvals SET state = 'used' \
                     WHERE id = $1 AND account_id = $2 AND state = 'approved' AND expires_at > $3 \
                     RETURNING claimed_by",
                )
                .bind(id.to_string())
                .bind(account_id.to_string())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    None => Ok(None),
                    Some(row) => parse_opt_uuid(row.try_get("claimed_by")?),
                }
            }

            async fn set_device_details(
                &self,
                account_id: Uuid,
                device_id: Uuid,
                platform: Option<&str>,
                approved_by: Option<Uuid>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE devices SET platform = COALESCE($3, platform), \
                     approved_by = COALESCE($4, approved_by) WHERE account_id = $1 AND id = $2",
                )
                .bind(account_id.to_string())
                .bind(device_id.to_string())
                .bind(platform)
                .bind(approved_by.map(|id| id.to_string()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn device_details(&self, account_id: Uuid) -> StoreResult<Vec<DeviceDetails>> {
                sqlx::query("SELECT id, platform, approved_by FROM devices WHERE account_id = $1")
                    .bind(account_id.to_string())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(DeviceDetails {
                            id: parse_uuid(&row.try_get::<String, _>("id")?)?,
                            platform: row.try_get("platform")?,
                            approved_by: parse_opt_uuid(row.try_get("approved_by")?)?,
                        })
                    })
                    .collect()
            }
        }
    };
}

sql_approvals!(SqliteStore, sqlx::Sqlite);
sql_approvals!(PgStore, sqlx::Postgres);
