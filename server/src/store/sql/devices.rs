//! Devices and their sessions (tokens are kept as hashes).

use super::*;

/// Implements [`DeviceStore`] for one SQL backend (see the parent module).
macro_rules! sql_devices {
    ($store:ident, $db:ty) => {
        impl $store {
            /// The access hashes of deleted sessions.
            fn access_hashes(rows: &[<$db as sqlx::Database>::Row]) -> StoreResult<Vec<Vec<u8>>> {
                rows.iter()
                    .map(|row| Ok(row.try_get("access_hash")?))
                    .collect()
            }

            /// Housekeeping after a refresh: drops refresh tokens and sessions
            /// that can no longer be used. Best effort: a failure only delays it.
            async fn collect_expired(&self, now: i64) {
                let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await;
                let sessions = sqlx::query(
                    "DELETE FROM sessions WHERE refresh_expires_at <= $1 AND access_expires_at <= $1",
                )
                .bind(now)
                .execute(&self.pool)
                .await;
                if let Err(e) = tokens.and(sessions) {
                    tracing::debug!(error = %e, "expiring old sessions failed; will retry later");
                }
            }
        }

        #[async_trait]
        impl DeviceStore for $store {
            async fn upsert_device(&self, device: &Device) -> StoreResult<Device> {
                let id = device.id.to_string();
                let account_id = device.account_id.to_string();
                let inserted = sqlx::query(concat!(
                    "INSERT INTO devices (",
                    device_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (account_id, id) DO NOTHING RETURNING ",
                    device_columns!()
                ))
                .bind(&id)
                .bind(&account_id)
                .bind(&device.name)
                .bind(device.created_at)
                .bind(device.last_seen_at)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = inserted {
                    return from_row(&row);
                }
                // The account knows the id: it may come back unless it was revoked.
                let updated = sqlx::query(concat!(
                    "UPDATE devices SET name = $1, last_seen_at = $2 \
                     WHERE id = $3 AND account_id = $4 AND revoked_at IS NULL RETURNING ",
                    device_columns!()
                ))
                .bind(&device.name)
                .bind(device.last_seen_at)
                .bind(&id)
                .bind(&account_id)
                .fetch_optional(&self.pool)
                .await?;
                match updated {
                    Some(row) => from_row(&row),
                    None => Err(StoreError::Conflict),
                }
            }

            async fn devices(&self, account_id: Uuid) -> StoreResult<Vec<Device>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    device_columns!(),
                    " FROM devices WHERE account_id = $1 ORDER BY created_at, id"
                ))
                .bind(account_id.to_string())
                .fetch_all(&self.pool)
                .await?)
            }

            async fn device(&self, account_id: Uuid, device_id: Uuid) -> StoreResult<Option<Device>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    device_columns!(),
                    " FROM devices WHERE id = $1 AND account_id = $2"
                ))
                .bind(device_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn rename_device(&self, account_id: Uuid, device_id: Uuid, name: &str) -> StoreResult<()> {
                let sql = "UPDATE devices SET name = $1 WHERE id = $2 AND account_id = $3";
                let query = sqlx::query(sql).bind(name).bind(device_id.to_string());
                changed_one(query.bind(account_id.to_string()).execute(&self.pool).await?.rows_affected())
            }

            async fn touch_device(&self, account_id: Uuid, device_id: Uuid, at: i64) -> StoreResult<()> {
                // Never moves backwards; an unknown device is not an error.
                sqlx::query(
                    "UPDATE devices SET last_seen_at = $1 \
                     WHERE account_id = $2 AND id = $3 AND last_seen_at < $1",
                )
                    .bind(at)
                    .bind(account_id.to_string())
                    .bind(device_id.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn device_key_hash(&self, account_id: Uuid, device_id: Uuid) -> StoreResult<Option<Vec<u8>>> {
                let hash: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                    "SELECT key_hash FROM devices WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
                )
                .bind(device_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                Ok(hash.flatten())
            }

            async fn set_device_key_hash(&self, account_id: Uuid, device_id: Uuid, hash: &[u8]) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE devices SET key_hash = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
                )
                .bind(hash)
                .bind(device_id.to_string())
                .bind(account_id.to_string())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn revoke_device(&self, account_id: Uuid, device_id: Uuid, at: i64) -> StoreResult<Vec<Vec<u8>>> {
                let device_id = device_id.to_string();
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) \
                     WHERE id = $2 AND account_id = $3",
                )
                .bind(at)
                .bind(&device_id)
                .bind(account_id.to_string())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                let rows = sqlx::query(
                    "DELETE FROM sessions WHERE account_id = $1 AND device_id = $2 RETURNING access_hash",
                )
                    .bind(account_id.to_string())
                    .bind(&device_id)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Self::access_hashes(&rows)
            }

            async fn create_session(&self, session: &Session) -> StoreResult<()> {
                let id = session.id.to_string();
                let mut tx = self.begin_write().await?;
                sqlx::query(concat!(
                    "INSERT INTO sessions (",
                    session_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&id)
                .bind(session.account_id.to_string())
                .bind(session.device_id.to_string())
                .bind(session.access_hash.as_slice())
                .bind(session.access_expires_at)
                .bind(session.refresh_hash.as_slice())
                .bind(session.refresh_expires_at)
                .bind(session.authenticated_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (hash, session_id, used_at, expires_at) \
                     VALUES ($1, $2, NULL, $3)",
                )
                .bind(session.refresh_hash.as_slice())
                .bind(&id)
                .bind(session.refresh_expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn session_by_access(&self, access_hash: &[u8], now: i64) -> StoreResult<Option<Session>> {
                sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE access_hash = $1 AND access_expires_at > $2 \
                     AND EXISTS (SELECT 1 FROM devices \
                                 WHERE devices.account_id = sessions.account_id \
                               AND devices.id = sessions.device_id AND devices.revoked_at IS NULL)"
                ))
                .bind(access_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(from_row)
                .transpose()
            }

            async fn refresh_session(&self, refresh_hash: &[u8], new: NewTokens<'_>, now: i64) -> StoreResult<RefreshOutcome> {
                let mut tx = self.begin_write().await?;
                // Claim the token. A concurrent claim of the same token
                // (PostgreSQL) waits for this one and then finds it used.
                let claimed = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 \
                     WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING session_id",
                )
                .bind(now)
                .bind(refresh_hash)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = claimed {
                    let session_id: String = row.try_get("session_id")?;
                    let replaced: Vec<u8> = sqlx::query("SELECT access_hash FROM sessions WHERE id = $1")
                        .bind(&session_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.try_get("access_hash"))
                        .transpose()?
                        .unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO refresh_tokens (hash, session_id, used_at, expires_at) \
                         VALUES ($1, $2, NULL, $3)",
                    )
                    .bind(new.refresh_hash)
                    .bind(&session_id)
                    .bind(new.refresh_expires_at)
                    .execute(&mut *tx)
                    .await?;
                    let row = sqlx::query(concat!(
                        "UPDATE sessions SET access_hash = $1, access_expires_at = $2, \
                         refresh_hash = $3, refresh_expires_at = $4 \
                         WHERE id = $5 AND EXISTS (SELECT 1 FROM devices \
                             WHERE devices.account_id = sessions.account_id \
                               AND devices.id = sessions.device_id AND devices.revoked_at IS NULL) \
                         RETURNING ",
                        session_columns!()
                    ))
                    .bind(new.access_hash)
                    .bind(new.access_expires_at)
                    .bind(new.refresh_hash)
                    .bind(new.refresh_expires_at)
                    .bind(&session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    // Tokens go with their session, and revoking a device ends
                    // its sessions; a session on a revoked device (created by
                    // mistake) is not renewed. Dropping `tx` rolls back the claim.
                    let Some(row) = row else {
                        return Ok(RefreshOutcome::Invalid);
                    };
                    let session = from_row(&row)?;
                    tx.commit().await?;
                    self.collect_expired(now).await;
                    return Ok(RefreshOutcome::Rotated { session, replaced_access_hash: replaced });
                }

                let row = sqlx::query(
                    "SELECT refresh_tokens.used_at, refresh_tokens.expires_at, \
                            sessions.account_id, sessions.device_id \
                     FROM refresh_tokens JOIN sessions ON sessions.id = refresh_tokens.session_id \
                     WHERE refresh_tokens.hash = $1",
                )
                .bind(refresh_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(RefreshOutcome::Invalid);
                };
                let used_at: Option<i64> = row.try_get("used_at")?;
                let expires_at: i64 = row.try_get("expires_at")?;
                if used_at.is_none() || expires_at <= now {
                    return Ok(RefreshOutcome::Invalid);
                }
                // Reuse: someone holds a copy of a rotated token. End every
                // session of the device (their tokens go with them).
                let account_id = parse_uuid(&row.try_get::<String, _>("account_id")?)?;
                let device_id_text: String = row.try_get("device_id")?;
                let device_id = parse_uuid(&device_id_text)?;
                let rows = sqlx::query(
                    "DELETE FROM sessions WHERE account_id = $1 AND device_id = $2 RETURNING access_hash",
                )
                    .bind(account_id.to_string())
                    .bind(&device_id_text)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(RefreshOutcome::Reused {
                    account_id,
                    device_id,
                    revoked_access_hashes: Self::access_hashes(&rows)?,
                })
            }

            async fn delete_session(&self, session_id: Uuid) -> StoreResult<Option<Vec<u8>>> {
                let row = sqlx::query("DELETE FROM sessions WHERE id = $1 RETURNING access_hash")
                    .bind(session_id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|row| row.try_get("access_hash")).transpose()?)
            }

            async fn delete_other_sessions(&self, account_id: Uuid, keep: Uuid) -> StoreResult<Vec<Vec<u8>>> {
                let rows = sqlx::query(
                    "DELETE FROM sessions WHERE account_id = $1 AND id <> $2 RETURNING access_hash",
                )
                .bind(account_id.to_string())
                .bind(keep.to_string())
                .fetch_all(&self.pool)
                .await?;
                Self::access_hashes(&rows)
            }
        }
    };
}

sql_devices!(SqliteStore, sqlx::Sqlite);
sql_devices!(PgStore, sqlx::Postgres);
