//! Vaults: creation, pulls, pushes (one transaction each) and item history.

use super::*;

/// Implements [`VaultStore`] for one SQL backend (see the parent module).
macro_rules! sql_vaults {
    ($store:ident, $db:ty) => {
        impl $store {
            /// The server's key, head revision and manifest of the account's
            /// vault `vault_id` (the client's id); `NotFound` when it has none.
            async fn head_of<'e, E: sqlx::Executor<'e, Database = $db>>(
                executor: E,
                vault_id: &str,
                account_id: &str,
            ) -> StoreResult<(String, i64, Option<Vec<u8>>)> {
                let row = sqlx::query(
                    "SELECT id, revision, manifest FROM vaults WHERE client_id = $1 AND account_id = $2",
                )
                .bind(vault_id)
                .bind(account_id)
                .fetch_optional(executor)
                .await?
                .ok_or(StoreError::NotFound)?;
                Ok((row.try_get("id")?, row.try_get("revision")?, row.try_get("manifest")?))
            }
        }

        #[async_trait]
        impl VaultStore for $store {
            async fn create_vault(&self, vault: &Vault) -> StoreResult<()> {
                // The server's own key; the account's id for the vault is `client_id`.
                sqlx::query(concat!(
                    "INSERT INTO vaults (id, ",
                    vault_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(Uuid::now_v7().to_string())
                .bind(vault.id.to_string())
                .bind(vault.account_id.to_string())
                .bind(vault.wrapped_key.as_slice())
                .bind(vault.meta.as_slice())
                .bind(vault.revision)
                .bind(vault.manifest.as_deref())
                .bind(vault.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn vaults(&self, account_id: Uuid) -> StoreResult<Vec<Vault>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    vault_columns!(),
                    " FROM vaults WHERE account_id = $1 ORDER BY created_at, client_id"
                ))
                .bind(account_id.to_string())
                .fetch_all(&self.pool)
                .await?)
            }

            async fn set_vault_meta(
                &self,
                account_id: Uuid,
                vault_id: Uuid,
                meta: &[u8],
            ) -> StoreResult<()> {
                let sql = "UPDATE vaults SET meta = $1 WHERE client_id = $2 AND account_id = $3";
                let query = sqlx::query(sql).bind(meta).bind(vault_id.to_string());
                changed_one(query.bind(account_id.to_string()).execute(&self.pool).await?.rows_affected())
            }

            async fn vault(&self, account_id: Uuid, vault_id: Uuid) -> StoreResult<Option<Vault>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    vault_columns!(),
                    " FROM vaults WHERE client_id = $1 AND account_id = $2"
                ))
                .bind(vault_id.to_string())
                .bind(account_id.to_string())
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn pull(&self, account_id: Uuid, vault_id: Uuid, since: i64, limit: u32) -> StoreResult<Pulled> {
                let (vault_id, account_id) = (vault_id.to_string(), account_id.to_string());
                // Fast path, one statement without a transaction: nothing new.
                let (_, head, manifest) = Self::head_of(&self.pool, &vault_id, &account_id).await?;
                if since >= head {
                    return Ok(Pulled { head, records: Vec::new(), manifest });
                }
                // One snapshot: the head, the records and the manifest agree.
                let mut tx = self.begin_read().await?;
                let (vault_id, head, manifest) = Self::head_of(&mut *tx, &vault_id, &account_id).await?;
                let query = sqlx::query(concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM records WHERE vault_id = $1 AND revision > $2 AND revision <= $3 \
                     ORDER BY revision LIMIT $4"
                ))
                .bind(&vault_id)
                .bind(since)
                .bind(head)
                .bind(i64::from(limit));
                let records = Self::records_in(&mut tx, query).await?;
                tx.commit().await?;
                Ok(Pulled {
                    head,
                    records,
                    manifest,
                })
            }

            async fn push(
                &self,
                account_id: Uuid,
                vault_id: Uuid,
                batch: PushBatch<'_>,
                now: i64,
            ) -> StoreResult<PushOutcome> {
                let PushBatch { client_change_id, changes, manifest, expected_head, quota, key_epoch } = batch;
                let mut seen = HashSet::with_capacity(changes.len());
                let mut versions = Vec::with_capacity(changes.len());
                for change in changes {
                    if !seen.insert(change.item_id) {
                        return Err(StoreError::Invalid(format!(
                            "item {} appears more than once in the batch",
                            change.item_id
                        )));
                    }
                    versions.push(i64::try_from(change.version).map_err(|_| {
                        StoreError::Invalid(format!("item {}: version out of range", change.item_id))
                    })?);
                }
                let vault_id = vault_id.to_string();
                let client_change_id = client_change_id.to_string();

                let mut tx = self.begin_write().await?;
                // A batch that stores something is checked against the quota
                // (a batch of deletions only frees space: never refused). Such
                // pushes of one account run one at a time (the account row's
                // lock), so that two cannot both fit in the last bytes.
                let quota = quota.filter(|_| changes.iter().any(|c| !c.deleted));
                if quota.is_some() {
                    sqlx::query("UPDATE accounts SET created_at = created_at WHERE id = $1")
                        .bind(account_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                // Lock the vault row first: pushes to one vault run one at a time.
                let row = sqlx::query(
                    "UPDATE vaults SET revision = revision WHERE client_id = $1 AND account_id = $2 \
                     RETURNING id, revision, key_epoch",
                )
                .bind(&vault_id)
                .bind(account_id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                // From here on the vault is named by the server's own key.
                let vault_id: String = row.try_get("id")?;
                let head: i64 = row.try_get("revision")?;
                let epoch = to_u32(row.try_get("key_epoch")?, "key_epoch")?;

                if let Some(row) = sqlx::query(
                    "SELECT response FROM push_log WHERE vault_id = $1 AND client_change_id = $2",
                )
                .bind(&vault_id)
                .bind(&client_change_id)
                .fetch_optional(&mut *tx)
                .await?
                {
                    let text: String = row.try_get("response")?;
                    return serde_json::from_str(&text)
                        .map(PushOutcome::Replayed)
                        .map_err(|e| damaged(format!("stored push response: {e}")));
                }
                // After the replay check: a batch applied before a rotation
                // still gets its first answer.
                if key_epoch.map_or(epoch > 1, |e| e != epoch) {
                    return Ok(PushOutcome::KeyRotated { epoch });
                }
                if expected_head.is_some_and(|h| h != head) {
                    // Nothing applied and nothing logged. (Dropping `tx` rolls back.)
                    return Ok(PushOutcome::HeadMoved { head });
                }

                let mut current = Vec::with_capacity(changes.len());
                let mut conflicts = Vec::new();
                for change in changes {
                    let record = sqlx::query(concat!(
                        "SELECT ",
                        record_columns!(),
                        " FROM records WHERE vault_id = $1 AND item_id = $2"
                    ))
                    .bind(&vault_id)
                    .bind(change.item_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .as_ref()
                    .map(Self::record_from)
                    .transpose()?;
                    let revision = record.as_ref().map_or(0, |r| r.revision);
                    if change.base_revision != revision {
                        conflicts.push(PushConflict {
                            item_id: change.item_id,
                            current: record.clone().unwrap_or_else(|| absent_record(change.item_id)),
                        });
                    }
                    current.push(record);
                }
                if !conflicts.is_empty() {
                    // Nothing applied and nothing logged: the client merges
                    // and pushes again under a new id. (Dropping `tx` rolls back.)
                    return Ok(PushOutcome::Done(PushResponse {
                        head,
                        applied: Vec::new(),
                        conflicts,
                    }));
                }

                let mut applied = Vec::with_capacity(changes.len());
                let mut revision = head;
                for ((change, version), old) in changes.iter().zip(versions).zip(&current) {
                    revision += 1;
                    let item_id = change.item_id.to_string();
                    if change.deleted {
                        // A purge destroys: no copy of the item stays on the server.
                        sqlx::query("DELETE FROM record_history WHERE vault_id = $1 AND item_id = $2")
                            .bind(&vault_id)
                            .bind(&item_id)
                            .execute(&mut *tx)
                            .await?;
                    } else if let Some(old) = old
                        && !old.deleted
                    {
                        sqlx::query(
                            "INSERT INTO record_history \
                             (vault_id, item_id, version, revision, wrapped_key, overview, details, authorship) \
                             SELECT vault_id, item_id, version, revision, wrapped_key, overview, details, authorship \
                             FROM records WHERE vault_id = $1 AND item_id = $2",
                        )
                        .bind(&vault_id)
                        .bind(&item_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let empty: &[u8] = &[];
                    let (wrapped_key, overview, details) = if change.deleted {
                        (empty, empty, empty)
                    } else {
                        (
                            change.wrapped_key.as_slice(),
                            change.overview.as_slice(),
                            change.details.as_slice(),
                        )
                    };
                    sqlx::query(concat!(
                        "INSERT INTO records (",
                        record_columns!(),
                        ", vault_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (vault_id, item_id) DO UPDATE SET \
                         version = excluded.version, revision = excluded.revision, \
                         deleted = excluded.deleted, wrapped_key = excluded.wrapped_key, \
                         overview = excluded.overview, details = excluded.details, \
                         authorship = excluded.authorship"
                    ))
                    .bind(&item_id)
                    .bind(version)
                    .bind(revision)
                    .bind(i64::from(change.deleted))
                    .bind(wrapped_key)
                    .bind(overview)
                    .bind(details)
                    .bind(change.authorship.as_deref())
                    .bind(&vault_id)
                    .execute(&mut *tx)
                    .await?;
                    applied.push(Applied {
                        item_id: change.item_id,
                        revision,
                    });
                }
                sqlx::query("UPDATE vaults SET revision = $1, manifest = COALESCE($2, manifest) WHERE id = $3")
                    .bind(revision)
                    .bind(manifest)
                    .bind(&vault_id)
                    .execute(&mut *tx)
                    .await?;
                if let Some(quota) = quota {
                    let used = Self::usage_in(&mut tx, &account_id.to_string()).await?;
                    if used > quota {
                        // Nothing applied and nothing logged. (Dropping `tx` rolls back.)
                        return Ok(PushOutcome::QuotaExceeded { used, quota });
                    }
                }
                let response = PushResponse {
                    head: revision,
                    applied,
                    conflicts: Vec::new(),
                };
                let text = serde_json::to_string(&response)
                    .map_err(|e| StoreError::Other(format!("cannot encode the push response: {e}")))?;
                sqlx::query(
                    "INSERT INTO push_log (vault_id, client_change_id, response, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&vault_id)
                .bind(&client_change_id)
                .bind(&text)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(PushOutcome::Done(response))
            }

            async fn item_history(&self, account_id: Uuid, vault_id: Uuid, item_id: Uuid) -> StoreResult<Vec<Record>> {
                let vault_id = vault_id.to_string();
                let mut tx = self.begin_read().await?;
                let vault_id: String = sqlx::query("SELECT id FROM vaults WHERE client_id = $1 AND account_id = $2")
                    .bind(&vault_id)
                    .bind(account_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?
                    .try_get("id")?;
                let query = sqlx::query(
                    "SELECT item_id, version, revision, CAST(0 AS BIGINT) AS deleted, \
                            wrapped_key, overview, details, authorship \
                     FROM record_history WHERE vault_id = $1 AND item_id = $2 ORDER BY revision",
                )
                .bind(&vault_id)
                .bind(item_id.to_string());
                let records = Self::records_in(&mut tx, query).await?;
                tx.commit().await?;
                Ok(records)
            }
        }
    };
}

sql_vaults!(SqliteStore, sqlx::Sqlite);
sql_vaults!(PgStore, sqlx::Postgres);
