//! Accounts, their invites and their storage use.

use super::*;

use sqlx::query::Query;

/// Binds an account's password-derived values (what a password change
/// replaces) to the next seven placeholders: `kdf_memory_kib`,
/// `kdf_iterations`, `kdf_parallelism`, `salt`, `auth_hash`, `auth_salt`,
/// `wrapped_account_key`.
fn bind_password_keys<'q, DB: sqlx::Database>(
    query: Query<'q, DB, DB::Arguments<'q>>,
    account: &'q Account,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(i64::from(account.kdf.memory_kib))
        .bind(i64::from(account.kdf.iterations))
        .bind(i64::from(account.kdf.parallelism))
        .bind(account.salt.as_slice())
        .bind(account.auth_hash.as_slice())
        .bind(account.auth_salt.as_slice())
        .bind(account.wrapped_account_key.as_slice())
}

/// Implements [`AccountStore`] for one SQL backend (see the parent module).
macro_rules! sql_accounts {
    ($store:ident, $db:ty) => {
        impl $store {
            /// Writes an account's password-derived values and MAC
            /// (`NotFound` for no such account).
            pub(super) async fn update_keys_in<'e, E>(executor: E, account: &Account) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let query = sqlx::query(
                    "UPDATE accounts SET kdf_memory_kib = $1, kdf_iterations = $2, \
                     kdf_parallelism = $3, salt = $4, auth_hash = $5, auth_salt = $6, \
                     wrapped_account_key = $7, password_mac = $8 WHERE id = $9",
                );
                let done = bind_password_keys(query, account)
                    .bind(account.password_mac.as_deref())
                    .bind(account.id.to_string())
                    .execute(executor)
                    .await?;
                changed_one(done.rows_affected())
            }

            /// Inserts an account and its first device inside `tx`.
            async fn insert_account(
                tx: &mut sqlx::Transaction<'static, $db>,
                account: &Account,
                device: &Device,
            ) -> StoreResult<()> {
                let account_id = account.id.to_string();
                let query = sqlx::query(concat!(
                    "INSERT INTO accounts (",
                    account_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                ))
                .bind(&account_id)
                .bind(account.client_id.to_string())
                .bind(&account.email);
                bind_password_keys(query, account)
                    .bind(account.public_x25519.as_slice())
                    .bind(account.public_ed25519.as_slice())
                    .bind(account.wrapped_private_keys.as_slice())
                    .bind(account.created_at)
                    .bind(account.password_mac.as_deref())
                    .execute(&mut **tx)
                    .await?;
                // The device belongs to the new account whatever it says.
                sqlx::query(concat!(
                    "INSERT INTO devices (",
                    device_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .bind(device.id.to_string())
                .bind(&account_id)
                .bind(&device.name)
                .bind(device.created_at)
                .bind(device.last_seen_at)
                .bind(device.revoked_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// [`AccountStore::usage`] inside a transaction.
            pub(super) async fn usage_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                account_id: &str,
            ) -> StoreResult<u64> {
                let used: i64 = sqlx::query(USAGE)
                    .bind(account_id)
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get("used")?;
                to_u64(used, "usage")
            }
        }

        #[async_trait]
        impl AccountStore for $store {
            async fn create_account(&self, account: &Account, device: &Device) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_account(&mut tx, account, device).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_invited_account(
                &self,
                account: &Account,
                device: &Device,
                invite_hash: &[u8],
            ) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let claimed = sqlx::query(
                    "UPDATE invites SET used_at = $1, used_by = $2 \
                     WHERE code_hash = $3 AND used_at IS NULL",
                )
                .bind(account.created_at)
                .bind(account.id.to_string())
                .bind(invite_hash)
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() == 0 {
                    return Ok(false);
                }
                // A conflict rolls the claim back with everything else.
                Self::insert_account(&mut tx, account, device).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn create_invite(&self, invite_hash: &[u8], now: i64) -> StoreResult<()> {
                sqlx::query("INSERT INTO invites (code_hash, created_at) VALUES ($1, $2)")
                    .bind(invite_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn usage(&self, account_id: Uuid) -> StoreResult<u64> {
                let mut tx = self.begin_read().await?;
                let used = Self::usage_in(&mut tx, &account_id.to_string()).await?;
                tx.commit().await?;
                Ok(used)
            }

            async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
                sqlx::query(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM accounts WHERE email = $1"
                ))
                .bind(email)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(Self::account_from)
                .transpose()
            }

            async fn account(&self, id: Uuid) -> StoreResult<Option<Account>> {
                sqlx::query(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM accounts WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(Self::account_from)
                .transpose()
            }

            async fn update_account_keys(&self, account: &Account) -> StoreResult<()> {
                Self::update_keys_in(&self.pool, account).await
            }

            async fn change_password(
                &self,
                account: &Account,
                keep_session: Uuid,
            ) -> StoreResult<Vec<Vec<u8>>> {
                let mut tx = self.begin_write().await?;
                Self::update_keys_in(&mut *tx, account).await?;
                let ended = sqlx::query(
                    "DELETE FROM sessions WHERE account_id = $1 AND id <> $2 RETURNING access_hash",
                )
                .bind(account.id.to_string())
                .bind(keep_session.to_string())
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<Vec<u8>, _>("access_hash"))
                .collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok(ended)
            }

            async fn account_key_version(&self, id: Uuid) -> StoreResult<u32> {
                let row = sqlx::query("SELECT account_key_version FROM accounts WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                to_u32(row.try_get("account_key_version")?, "account_key_version")
            }

            async fn rotate_account_key(
                &self,
                id: Uuid,
                r: &AccountKeyRotation,
                keep_session: Uuid,
            ) -> StoreResult<Vec<Vec<u8>>> {
                let account = id.to_string();
                let mut tx = self.begin_write().await?;
                // The account row's lock: one rotation at a time.
                let row = sqlx::query(
                    "UPDATE accounts SET account_key_version = account_key_version \
                     WHERE id = $1 RETURNING account_key_version",
                )
                .bind(&account)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let version = to_u32(row.try_get("account_key_version")?, "account_key_version")?;
                if r.version != version + 1 {
                    return Err(StoreError::Conflict);
                }
                let own = sqlx::query("SELECT client_id FROM vaults WHERE account_id = $1")
                    .bind(&account)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut left: std::collections::HashSet<String> = own
                    .iter()
                    .map(|v| v.try_get::<String, _>("client_id"))
                    .collect::<Result<_, _>>()?;
                if left.len() != r.vaults.len()
                    || !r.vaults.iter().all(|(v, _)| left.remove(&v.to_string()))
                {
                    return Err(StoreError::Conflict);
                }
                // The copy sealed to the recovery key: given exactly when
                // the account has recovery set up.
                let recovery = if let Some(sealed) = &r.recovery {
                    sqlx::query(
                        "UPDATE account_recovery SET sealed_account_key = $1, \
                         account_key_version = $2 WHERE account_id = $3",
                    )
                    .bind(sealed.as_slice())
                    .bind(i64::from(r.version))
                    .bind(&account)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                } else {
                    sqlx::query("SELECT 1 AS one FROM account_recovery WHERE account_id = $1")
                        .bind(&account)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_none()
                };
                if !recovery {
                    return Err(StoreError::Conflict);
                }
                // The copies sealed to emergency contacts: exactly the
                // account's grants, whatever their state.
                let grants = sqlx::query("SELECT id FROM emergency_grants WHERE owner_id = $1")
                    .bind(&account)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut left: std::collections::HashSet<String> = grants
                    .iter()
                    .map(|g| g.try_get::<String, _>("id"))
                    .collect::<Result<_, _>>()?;
                if left.len() != r.emergency.len()
                    || !r.emergency.iter().all(|(g, _)| left.remove(&g.to_string()))
                {
                    return Err(StoreError::Conflict);
                }
                for (grant, sealed) in &r.emergency {
                    sqlx::query(
                        "UPDATE emergency_grants SET sealed = $1 WHERE id = $2 AND owner_id = $3",
                    )
                    .bind(sealed.as_slice())
                    .bind(grant.to_string())
                    .bind(&account)
                    .execute(&mut *tx)
                    .await?;
                }
                for (vault, wrapped) in &r.vaults {
                    sqlx::query(
                        "UPDATE vaults SET wrapped_key = $1 WHERE account_id = $2 AND client_id = $3",
                    )
                    .bind(wrapped.as_slice())
                    .bind(&account)
                    .bind(vault.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE accounts SET wrapped_account_key = $1, wrapped_private_keys = $2, \
                     password_mac = $3, account_key_version = $4 WHERE id = $5",
                )
                .bind(r.wrapped_account_key.as_slice())
                .bind(r.wrapped_private_keys.as_slice())
                .bind(r.mac.as_slice())
                .bind(i64::from(r.version))
                .bind(&account)
                .execute(&mut *tx)
                .await?;
                let ended = sqlx::query(
                    "DELETE FROM sessions WHERE account_id = $1 AND id <> $2 RETURNING access_hash",
                )
                .bind(&account)
                .bind(keep_session.to_string())
                .fetch_all(&mut *tx)
                .await?;
                let hashes = ended
                    .iter()
                    .map(|r| r.try_get::<Vec<u8>, _>("access_hash"))
                    .collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok(hashes)
            }
        }
    };
}

sql_accounts!(SqliteStore, sqlx::Sqlite);
sql_accounts!(PgStore, sqlx::Postgres);
