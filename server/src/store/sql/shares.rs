//! Share links ([`ShareStore`]).
//!
//! Opening a link is one `UPDATE … RETURNING` that counts the view only
//! while the link is live, inside a write transaction: SQLite holds the
//! write lock from the start, and PostgreSQL's row lock makes a second
//! concurrent open re-check the condition on the counted row, so the last
//! view is served once.

use super::*;
use crate::store::shares::{Share, ShareStore};

/// Links live at `$2`: not expired, views left.
const LIVE: &str = "expires_at > $2 AND (max_views IS NULL OR views < max_views)";

/// Implements [`ShareStore`] for one SQL backend (see the parent module).
macro_rules! sql_shares {
    ($store:ident, $db:ty) => {
        impl $store {
            fn share_from(row: &<$db as sqlx::Database>::Row) -> StoreResult<Share> {
                let max_views: Option<i64> = row.try_get("max_views")?;
                Ok(Share {
                    id: row.try_get("id")?,
                    account_id: parse_uuid(&row.try_get::<String, _>("account_id")?)?,
                    ciphertext: Vec::new(),
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    max_views: max_views.map(|m| to_u32(m, "max_views")).transpose()?,
                    views: to_u32(row.try_get("views")?, "views")?,
                })
            }
        }

        #[async_trait]
        impl ShareStore for $store {
            async fn create_share(&self, share: &Share, limit: u32) -> StoreResult<()> {
                let account_id = share.account_id.to_string();
                let mut tx = self.begin_write().await?;
                let live: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM share_links WHERE account_id = $1 AND expires_at > $2",
                )
                .bind(&account_id)
                .bind(share.created_at)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                if live >= i64::from(limit) {
                    return Err(StoreError::Invalid(format!(
                        "this account has {limit} live share links, the most it may have; revoke some first"
                    )));
                }
                sqlx::query(
                    "INSERT INTO share_links (id, account_id, ciphertext, created_at, expires_at, max_views, views) \
                     VALUES ($1, $2, $3, $4, $5, $6, 0)",
                )
                .bind(&share.id)
                .bind(&account_id)
                .bind(share.ciphertext.as_slice())
                .bind(share.created_at)
                .bind(share.expires_at)
                .bind(share.max_views.map(i64::from))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn shares(&self, account_id: Uuid, now: i64) -> StoreResult<Vec<Share>> {
                sqlx::query(&format!(
                    "SELECT id, account_id, created_at, expires_at, max_views, views FROM share_links \
                     WHERE account_id = $1 AND {LIVE} ORDER BY created_at DESC, id"
                ))
                .bind(account_id.to_string())
                .bind(now)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::share_from)
                .collect()
            }

            async fn delete_share(&self, account_id: Uuid, id: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM share_links WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account_id.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn open_share(&self, id: &str, now: i64) -> StoreResult<Option<Vec<u8>>> {
                let mut tx = self.begin_write().await?;
                let counted = sqlx::query(&format!(
                    "UPDATE share_links SET views = views + 1 WHERE id = $1 AND {LIVE} \
                     RETURNING ciphertext, views, max_views"
                ))
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let (ciphertext, used_up) = match &counted {
                    Some(row) => {
                        let views: i64 = row.try_get("views")?;
                        let max_views: Option<i64> = row.try_get("max_views")?;
                        let ciphertext: Vec<u8> = row.try_get("ciphertext")?;
                        (Some(ciphertext), max_views.is_some_and(|m| views >= m))
                    }
                    // Unknown, or present but expired or used up.
                    None => (None, true),
                };
                if used_up {
                    sqlx::query("DELETE FROM share_links WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(ciphertext)
            }

            async fn sweep_shares(&self, now: i64) -> StoreResult<u64> {
                let done = sqlx::query(
                    "DELETE FROM share_links WHERE expires_at <= $1 \
                     OR (max_views IS NOT NULL AND views >= max_views)",
                )
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

sql_shares!(SqliteStore, sqlx::Sqlite);
sql_shares!(PgStore, sqlx::Postgres);
