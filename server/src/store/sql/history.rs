//! The security history ([`HistoryStore`]).
//!
//! An append takes the account row's lock first (as a storing push does),
//! so two devices appending at once are ordered: the second finds the head
//! moved and is told so ([`HistoryAppend::Stale`]).

use super::*;
use crate::store::history::{HistoryAppend, HistoryStore};

/// Implements [`HistoryStore`] for one SQL backend (see the parent module).
macro_rules! sql_history {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl HistoryStore for $store {
            async fn append_history(
                &self,
                account_id: Uuid,
                seq: i64,
                prev: &[u8; 32],
                hash: &[u8; 32],
                entry: &[u8],
                max: i64,
                now: i64,
            ) -> StoreResult<HistoryAppend> {
                let account_id = account_id.to_string();
                let mut tx = self.begin_write().await?;
                let locked =
                    sqlx::query("UPDATE accounts SET created_at = created_at WHERE id = $1")
                        .bind(&account_id)
                        .execute(&mut *tx)
                        .await?;
                changed_one(locked.rows_affected())?;
                let head = sqlx::query(
                    "SELECT seq, hash FROM security_history WHERE account_id = $1 \
                     ORDER BY seq DESC LIMIT 1",
                )
                .bind(&account_id)
                .fetch_optional(&mut *tx)
                .await?;
                let (head_seq, head_hash) = match &head {
                    Some(row) => (
                        row.try_get::<i64, _>("seq")?,
                        row.try_get::<Vec<u8>, _>("hash")?,
                    ),
                    None => (0, vec![0u8; 32]),
                };
                if seq != head_seq + 1 || prev.as_slice() != head_hash.as_slice() {
                    return Ok(HistoryAppend::Stale { head: head_seq });
                }
                if head_seq >= max {
                    return Ok(HistoryAppend::Full { max });
                }
                sqlx::query(
                    "INSERT INTO security_history (account_id, seq, entry, hash, stored_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&account_id)
                .bind(seq)
                .bind(entry)
                .bind(hash.as_slice())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(HistoryAppend::Stored)
            }

            async fn history(
                &self,
                account_id: Uuid,
                after: i64,
                limit: u32,
            ) -> StoreResult<Vec<(i64, Vec<u8>)>> {
                sqlx::query(
                    "SELECT seq, entry FROM security_history \
                     WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(account_id.to_string())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| Ok((row.try_get("seq")?, row.try_get("entry")?)))
                .collect()
            }

            async fn history_head(&self, account_id: Uuid) -> StoreResult<i64> {
                Ok(sqlx::query(
                    "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS head \
                     FROM security_history WHERE account_id = $1",
                )
                .bind(account_id.to_string())
                .fetch_one(&self.pool)
                .await?
                .try_get("head")?)
            }
        }
    };
}

sql_history!(SqliteStore, sqlx::Sqlite);
sql_history!(PgStore, sqlx::Postgres);
