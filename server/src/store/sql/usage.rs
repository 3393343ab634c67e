//! Item usage blobs ([`ItemUsageStore`]).
//!
//! An upload takes the account row's lock first (as a storing push does),
//! so the uploads of one account are numbered one after the other: the new
//! revision is the account's highest plus one, and no reader can see a
//! higher revision before a lower one is committed. It is at least the
//! upload's time in milliseconds too, so that after the database is
//! restored from an older backup the numbers still grow past every
//! revision a client has seen (and nothing new is skipped).

use super::*;
use crate::store::usage::{ItemUsageStore, UsageBlob};

/// Implements [`ItemUsageStore`] for one SQL backend (see the parent module).
macro_rules! sql_usage {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl ItemUsageStore for $store {
            async fn put_item_usage(
                &self,
                account_id: Uuid,
                device_id: Uuid,
                blob: &[u8],
                now: i64,
            ) -> StoreResult<i64> {
                let account_id = account_id.to_string();
                let mut tx = self.begin_write().await?;
                let locked = sqlx::query("UPDATE accounts SET created_at = created_at WHERE id = $1")
                    .bind(&account_id)
                    .execute(&mut *tx)
                    .await?;
                changed_one(locked.rows_affected())?;
                let highest: i64 = sqlx::query(
                    "SELECT CAST(COALESCE(MAX(revision), 0) AS BIGINT) AS highest \
                     FROM item_usage WHERE account_id = $1",
                )
                .bind(&account_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("highest")?;
                let revision = highest.saturating_add(1).max(now);
                sqlx::query(
                    "INSERT INTO item_usage (account_id, device_id, revision, blob, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, device_id) DO UPDATE SET \
                     revision = excluded.revision, blob = excluded.blob, updated_at = excluded.updated_at",
                )
                .bind(&account_id)
                .bind(device_id.to_string())
                .bind(revision)
                .bind(blob)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(revision)
            }

            async fn item_usage(
                &self,
                account_id: Uuid,
                since: i64,
                limit: u32,
            ) -> StoreResult<Vec<UsageBlob>> {
                sqlx::query(
                    "SELECT device_id, revision, blob, updated_at FROM item_usage \
                     WHERE account_id = $1 AND revision > $2 ORDER BY revision LIMIT $3",
                )
                .bind(account_id.to_string())
                .bind(since)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(UsageBlob {
                        device_id: parse_uuid(&row.try_get::<String, _>("device_id")?)?,
                        revision: row.try_get("revision")?,
                        blob: row.try_get("blob")?,
                        updated_at: row.try_get("updated_at")?,
                    })
                })
                .collect()
            }
        }
    };
}

sql_usage!(SqliteStore, sqlx::Sqlite);
sql_usage!(PgStore, sqlx::Postgres);
