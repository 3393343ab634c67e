//! Account recovery data ([`RecoveryStore`]).

use super::*;
use crate::store::recovery::{Recovery, RecoveryStore};

/// Implements [`RecoveryStore`] for one SQL backend (see the parent module).
macro_rules! sql_recovery {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl RecoveryStore for $store {
            async fn put_recovery(&self, account_id: Uuid, r: &Recovery) -> StoreResult<()> {
                let account = account_id.to_string();
                let mut tx = self.begin_write().await?;
                // The account row's lock: no rotation in between.
                let row = sqlx::query(
                    "UPDATE accounts SET account_key_version = account_key_version \
                     WHERE id = $1 RETURNING account_key_version",
                )
                .bind(&account)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let version = to_u32(row.try_get("account_key_version")?, "account_key_version")?;
                if version != r.account_key_version {
                    return Err(StoreError::Conflict);
                }
                sqlx::query(
                    "INSERT INTO account_recovery (account_id, public_key, signature, auth_salt, \
                     auth_hash, sealed_account_key, account_key_version, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (account_id) DO UPDATE SET \
                     public_key = excluded.public_key, signature = excluded.signature, \
                     auth_salt = excluded.auth_salt, auth_hash = excluded.auth_hash, \
                     sealed_account_key = excluded.sealed_account_key, \
                     account_key_version = excluded.account_key_version, \
                     created_at = excluded.created_at",
                )
                .bind(&account)
                .bind(r.public_key.as_slice())
                .bind(r.signature.as_slice())
                .bind(r.auth_salt.as_slice())
                .bind(r.auth_hash.as_slice())
                .bind(r.sealed_account_key.as_slice())
                .bind(i64::from(r.account_key_version))
                .bind(r.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn recovery(&self, account_id: Uuid) -> StoreResult<Option<Recovery>> {
                sqlx::query(
                    "SELECT public_key, signature, auth_salt, auth_hash, sealed_account_key, \
                     account_key_version, created_at FROM account_recovery WHERE account_id = $1",
                )
                .bind(account_id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(|row| {
                    Ok(Recovery {
                        public_key: row.try_get("public_key")?,
                        signature: row.try_get("signature")?,
                        auth_salt: row.try_get("auth_salt")?,
                        auth_hash: row.try_get("auth_hash")?,
                        sealed_account_key: row.try_get("sealed_account_key")?,
                        account_key_version: to_u32(
                            row.try_get("account_key_version")?,
                            "account_key_version",
                        )?,
                        created_at: row.try_get("created_at")?,
                    })
                })
                .transpose()
            }

            async fn delete_recovery(&self, account_id: Uuid) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM account_recovery WHERE account_id = $1")
                    .bind(account_id.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn recover_account(
                &self,
                account: &Account,
                auth_hash: &[u8],
            ) -> StoreResult<Vec<Vec<u8>>> {
                let id = account.id.to_string();
                let mut tx = self.begin_write().await?;
                let used = sqlx::query(
                    "DELETE FROM account_recovery WHERE account_id = $1 AND auth_hash = $2",
                )
                .bind(&id)
                .bind(auth_hash)
                .execute(&mut *tx)
                .await?;
                if used.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                Self::update_keys_in(&mut *tx, account).await?;
                let ended =
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1 RETURNING access_hash")
                        .bind(&id)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<Vec<u8>, _>("access_hash"))
                        .collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok(ended)
            }
        }
    };
}

sql_recovery!(SqliteStore, sqlx::Sqlite);
sql_recovery!(PgStore, sqlx::Postgres);
