//! Shared vaults' members and membership logs.

use super::*;

/// The columns of a shared vault: the vault's (as `vault_columns!` names
/// them), its membership's, and the owner's email.
const SHARED_SELECT: &str = "SELECT v.client_id, v.account_id, v.wrapped_key, v.meta, v.revision, \
     v.manifest, v.created_at, m.account_id AS member_id, m.role, m.status, m.sealed_key, \
     m.key_epoch, m.added_at, a.email AS owner_email \
     FROM vault_members m JOIN vaults v ON v.id = m.vault_id JOIN accounts a ON a.id = v.account_id \
     WHERE m.account_id = $1";

/// Implements [`MemberStore`] for one SQL backend (see the parent module).
macro_rules! sql_members {
    ($store:ident, $db:ty) => {
        impl $store {
            /// The server's id of the owner's vault.
            async fn vault_key_id<'e, E>(executor: E, owner: Uuid, vault_id: Uuid) -> StoreResult<String>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row = sqlx::query("SELECT id FROM vaults WHERE account_id = $1 AND client_id = $2")
                    .bind(owner.to_string())
                    .bind(vault_id.to_string())
                    .fetch_optional(executor)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                Ok(row.try_get("id")?)
            }

            fn membership_from(
                row: &<$db as sqlx::Database>::Row,
                account: &str,
            ) -> StoreResult<Membership> {
                Ok(Membership {
                    account_id: parse_uuid(&row.try_get::<String, _>(account)?)?,
                    role: row.try_get("role")?,
                    status: row.try_get("status")?,
                    sealed_key: row.try_get("sealed_key")?,
                    key_epoch: to_u32(row.try_get("key_epoch")?, "key_epoch")?,
                    added_at: row.try_get("added_at")?,
                })
            }

            /// Applies a rotation inside the append's transaction (see
            /// [`MemberStore::append_log`]); the vault's new head.
            async fn rotate(
                tx: &mut sqlx::Transaction<'static, $db>,
                vault: &str,
                r: &RotationIn,
            ) -> StoreResult<i64> {
                // The vault row's lock: pushes wait for the rotation.
                let row = sqlx::query(
                    "UPDATE vaults SET revision = revision WHERE id = $1 RETURNING revision, key_epoch",
                )
                .bind(vault)
                .fetch_one(&mut **tx)
                .await?;
                let head: i64 = row.try_get("revision")?;
                let epoch = to_u32(row.try_get("key_epoch")?, "key_epoch")?;
                if r.key_epoch != epoch + 1 || r.expected_head != head {
                    return Err(StoreError::Conflict);
                }
                // Exactly the live records, at their versions.
                let live = sqlx::query(
                    "SELECT item_id, version FROM records WHERE vault_id = $1 AND deleted = 0",
                )
                .bind(vault)
                .fetch_all(&mut **tx)
                .await?;
                let mut want = std::collections::HashMap::with_capacity(live.len());
                for row in &live {
                    want.insert(
                        row.try_get::<String, _>("item_id")?,
                        to_u64(row.try_get("version")?, "version")?,
                    );
                }
                if want.len() != r.records.len() {
                    return Err(StoreError::Conflict);
                }
                for rec in &r.records {
                    if want.remove(&rec.item_id.to_string()) != Some(rec.version) {
                        return Err(StoreError::Conflict);
                    }
                }
                // Exactly the members after the change.
                let members = sqlx::query("SELECT account_id FROM vault_members WHERE vault_id = $1")
                    .bind(vault)
                    .fetch_all(&mut **tx)
                    .await?;
                let mut left: std::collections::HashSet<String> = members
                    .iter()
                    .map(|m| m.try_get::<String, _>("account_id"))
                    .collect::<Result<_, _>>()?;
                if left.len() != r.sealed_keys.len()
                    || !r.sealed_keys.iter().all(|(a, _)| left.remove(&a.to_string()))
                {
                    return Err(StoreError::Conflict);
                }
                for (account, sealed) in &r.sealed_keys {
                    sqlx::query(
                        "UPDATE vault_members SET sealed_key = $1, key_epoch = $2 \
                         WHERE vault_id = $3 AND account_id = $4",
                    )
                    .bind(sealed.as_slice())
                    .bind(i64::from(r.key_epoch))
                    .bind(vault)
                    .bind(account.to_string())
                    .execute(&mut **tx)
                    .await?;
                }
                let mut revision = head;
                for rec in &r.records {
                    revision += 1;
                    sqlx::query(
                        "UPDATE records SET wrapped_key = $1, revision = $2, \
                         authorship = COALESCE(authorship, $3) WHERE vault_id = $4 AND item_id = $5",
                    )
                    .bind(rec.wrapped_key.as_slice())
                    .bind(revision)
                    .bind(rec.authorship.as_deref())
                    .bind(vault)
                    .bind(rec.item_id.to_string())
                    .execute(&mut **tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE vaults SET revision = $1, key_epoch = $2, meta = $3, manifest = $4, \
                     wrapped_key = COALESCE($5, wrapped_key) WHERE id = $6",
                )
                .bind(revision)
                .bind(i64::from(r.key_epoch))
                .bind(r.meta.as_slice())
                .bind(r.manifest.as_slice())
                .bind(r.owner_wrapped_key.as_deref())
                .bind(vault)
                .execute(&mut **tx)
                .await?;
                Ok(revision)
            }

            /// Deletes a member's row (`NotFound` when there is none).
            async fn drop_member(
                tx: &mut sqlx::Transaction<'static, $db>,
                vault: &str,
                account: Uuid,
            ) -> StoreResult<()> {
                let gone = sqlx::query("DELETE FROM vault_members WHERE vault_id = $1 AND account_id = $2")
                    .bind(vault)
                    .bind(account.to_string())
                    .execute(&mut **tx)
                    .await?;
                changed_one(gone.rows_affected())
            }

            fn shared_from(row: &<$db as sqlx::Database>::Row) -> StoreResult<SharedVault> {
                Ok(SharedVault {
                    vault: Vault {
                        id: parse_uuid(&row.try_get::<String, _>("client_id")?)?,
                        account_id: parse_uuid(&row.try_get::<String, _>("account_id")?)?,
                        wrapped_key: row.try_get("wrapped_key")?,
                        meta: row.try_get("meta")?,
                        revision: row.try_get("revision")?,
                        manifest: row.try_get("manifest")?,
                        created_at: row.try_get("created_at")?,
                    },
                    membership: Self::membership_from(row, "member_id")?,
                    owner_email: row.try_get("owner_email")?,
                })
            }
        }

        #[async_trait]
        impl MemberStore for $store {
            async fn append_log(
                &self,
                owner: Uuid,
                vault_id: Uuid,
                row: &LogRow,
                write: &MemberWrite,
            ) -> StoreResult<Appended> {
                let mut tx = self.begin_write().await?;
                let vault = Self::vault_key_id(&mut *tx, owner, vault_id).await?;
                let next: i64 = sqlx::query(
                    "SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM vault_log WHERE vault_id = $1",
                )
                .bind(&vault)
                .fetch_one(&mut *tx)
                .await?
                .try_get("next")?;
                if to_u64(next, "seq")? != row.seq {
                    return Err(StoreError::Conflict);
                }
                sqlx::query(
                    "INSERT INTO vault_log (vault_id, seq, entry, signature) VALUES ($1, $2, $3, $4)",
                )
                .bind(&vault)
                .bind(next)
                .bind(row.entry.as_slice())
                .bind(row.signature.as_slice())
                .execute(&mut *tx)
                .await?;
                match write {
                    MemberWrite::Add(m) => {
                        let added = sqlx::query(
                            "INSERT INTO vault_members (vault_id, account_id, role, status, \
                             sealed_key, key_epoch, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                             ON CONFLICT (vault_id, account_id) DO NOTHING",
                        )
                        .bind(&vault)
                        .bind(m.account_id.to_string())
                        .bind(&m.role)
                        .bind(&m.status)
                        .bind(m.sealed_key.as_slice())
                        .bind(i64::from(m.key_epoch))
                        .bind(m.added_at)
                        .execute(&mut *tx)
                        .await?;
                        if added.rows_affected() == 0 {
                            return Err(StoreError::Conflict);
                        }
                    }
                    MemberWrite::SetRole { account_id, role } => {
                        let set = sqlx::query(
                            "UPDATE vault_members SET role = $1 WHERE vault_id = $2 AND account_id = $3",
                        )
                        .bind(role)
                        .bind(&vault)
                        .bind(account_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                        if set.rows_affected() == 0 {
                            return Err(StoreError::NotFound);
                        }
                    }
                    MemberWrite::Leave { account_id } => {
                        Self::drop_member(&mut tx, &vault, *account_id).await?;
                    }
                    MemberWrite::Remove { account_id, rotation } => {
                        Self::drop_member(&mut tx, &vault, *account_id).await?;
                        let head = Self::rotate(&mut tx, &vault, rotation).await?;
                        tx.commit().await?;
                        return Ok(Appended::Rotated { head });
                    }
                    MemberWrite::Rotate(rotation) => {
                        let head = Self::rotate(&mut tx, &vault, rotation).await?;
                        tx.commit().await?;
                        return Ok(Appended::Rotated { head });
                    }
                }
                tx.commit().await?;
                Ok(Appended::Members)
            }

            async fn key_epoch(&self, owner: Uuid, vault_id: Uuid) -> StoreResult<u32> {
                let row = sqlx::query("SELECT key_epoch FROM vaults WHERE account_id = $1 AND client_id = $2")
                    .bind(owner.to_string())
                    .bind(vault_id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                to_u32(row.try_get("key_epoch")?, "key_epoch")
            }

            async fn rotate_unshared(
                &self,
                owner: Uuid,
                vault_id: Uuid,
                rotation: &RotationIn,
            ) -> StoreResult<i64> {
                let mut tx = self.begin_write().await?;
                let vault = Self::vault_key_id(&mut *tx, owner, vault_id).await?;
                let logged: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM vault_log WHERE vault_id = $1",
                )
                .bind(&vault)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                if logged > 0 || rotation.owner_wrapped_key.is_none() {
                    return Err(StoreError::Conflict);
                }
                let head = Self::rotate(&mut tx, &vault, rotation).await?;
                tx.commit().await?;
                Ok(head)
            }

            async fn key_epochs(&self, account: Uuid) -> StoreResult<Vec<(Uuid, u32)>> {
                sqlx::query("SELECT client_id, key_epoch FROM vaults WHERE account_id = $1")
                    .bind(account.to_string())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok((
                            parse_uuid(&r.try_get::<String, _>("client_id")?)?,
                            to_u32(r.try_get("key_epoch")?, "key_epoch")?,
                        ))
                    })
                    .collect()
            }

            async fn shared_own(&self, account: Uuid) -> StoreResult<Vec<Uuid>> {
                sqlx::query(
                    "SELECT v.client_id FROM vaults v WHERE v.account_id = $1 \
                     AND EXISTS (SELECT 1 FROM vault_log l WHERE l.vault_id = v.id)",
                )
                .bind(account.to_string())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| parse_uuid(&r.try_get::<String, _>("client_id")?))
                .collect()
            }

            async fn log(&self, owner: Uuid, vault_id: Uuid) -> StoreResult<Vec<LogRow>> {
                let mut tx = self.begin_read().await?;
                let vault = Self::vault_key_id(&mut *tx, owner, vault_id).await?;
                let rows = sqlx::query(
                    "SELECT seq, entry, signature FROM vault_log WHERE vault_id = $1 ORDER BY seq",
                )
                .bind(&vault)
                .fetch_all(&mut *tx)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(LogRow {
                            seq: to_u64(r.try_get("seq")?, "seq")?,
                            entry: r.try_get("entry")?,
                            signature: r.try_get("signature")?,
                        })
                    })
                    .collect()
            }

            async fn members(&self, owner: Uuid, vault_id: Uuid) -> StoreResult<Vec<MemberInfo>> {
                let mut tx = self.begin_read().await?;
                let vault = Self::vault_key_id(&mut *tx, owner, vault_id).await?;
                let rows = sqlx::query(
                    "SELECT m.account_id, m.role, m.status, m.sealed_key, m.key_epoch, m.added_at, \
                     a.client_id, a.email FROM vault_members m JOIN accounts a ON a.id = m.account_id \
                     WHERE m.vault_id = $1 ORDER BY a.email",
                )
                .bind(&vault)
                .fetch_all(&mut *tx)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(MemberInfo {
                            membership: Self::membership_from(r, "account_id")?,
                            client_id: parse_uuid(&r.try_get::<String, _>("client_id")?)?,
                            email: r.try_get("email")?,
                        })
                    })
                    .collect()
            }

            async fn shared_vault(
                &self,
                account: Uuid,
                vault_id: Uuid,
            ) -> StoreResult<Option<SharedVault>> {
                let sql = format!("{SHARED_SELECT} AND v.client_id = $2 AND v.account_id <> $1");
                sqlx::query(&sql)
                    .bind(account.to_string())
                    .bind(vault_id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| Self::shared_from(&r))
                    .transpose()
            }

            async fn shared_with(&self, account: Uuid) -> StoreResult<Vec<SharedVault>> {
                let sql = format!("{SHARED_SELECT} AND v.account_id <> $1 ORDER BY v.created_at");
                sqlx::query(&sql)
                    .bind(account.to_string())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::shared_from)
                    .collect()
            }

            async fn set_member_status(
                &self,
                owner: Uuid,
                vault_id: Uuid,
                account: Uuid,
                status: Option<&str>,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let vault = Self::vault_key_id(&mut *tx, owner, vault_id).await?;
                let done = match status {
                    Some(s) => sqlx::query(
                        "UPDATE vault_members SET status = $1 WHERE vault_id = $2 AND account_id = $3",
                    )
                    .bind(s)
                    .bind(&vault)
                    .bind(account.to_string())
                    .execute(&mut *tx)
                    .await?,
                    None => sqlx::query(
                        "DELETE FROM vault_members WHERE vault_id = $1 AND account_id = $2",
                    )
                    .bind(&vault)
                    .bind(account.to_string())
                    .execute(&mut *tx)
                    .await?,
                };
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

sql_members!(SqliteStore, sqlx::Sqlite);
sql_members!(PgStore, sqlx::Postgres);
