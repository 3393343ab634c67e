//! Accounts' published identities.

use super::*;

/// Implements [`IdentityStore`] for one SQL backend (see the parent module).
macro_rules! sql_identities {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl IdentityStore for $store {
            async fn identity(&self, account_id: Uuid) -> StoreResult<Option<Identity>> {
                let row = sqlx::query(
                    "SELECT key_version, signature, published_at FROM identities \
                     WHERE account_id = $1",
                )
                .bind(account_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok(Identity {
                        key_version: to_u32(row.try_get("key_version")?, "key_version")?,
                        signature: row.try_get("signature")?,
                        published_at: row.try_get("published_at")?,
                    })
                })
                .transpose()
            }

            async fn put_identity(&self, account_id: Uuid, identity: &Identity) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO identities (account_id, key_version, signature, published_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET \
                     key_version = excluded.key_version, signature = excluded.signature, \
                     published_at = excluded.published_at",
                )
                .bind(account_id.to_string())
                .bind(i64::from(identity.key_version))
                .bind(identity.signature.as_slice())
                .bind(identity.published_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }
    };
}

sql_identities!(SqliteStore, sqlx::Sqlite);
sql_identities!(PgStore, sqlx::Postgres);
