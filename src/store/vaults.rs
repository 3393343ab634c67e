//! Whole-vault writes: a shared vault's key changed (every item key of every
//! version re-wrapped under the new key, in one transaction), and a shared
//! vault this device no longer has access to (everything of it removed).

use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::{ItemRecord, Result, Store, parse_id, parse_version, version_param};

/// One stored version whose item key is to be re-wrapped.
#[derive(Debug, Clone, Copy)]
pub struct WrappedKeyRef<'a> {
    pub item_id: Uuid,
    pub vault_id: Uuid,
    pub version: u64,
    pub wrapped_key: &'a [u8],
}

/// Which activity row: an item's version, or its purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityKey {
    pub item_id: Uuid,
    pub version: u64,
    pub deleted: bool,
}

/// Records (replaces) one activity row.
pub(super) async fn put_activity(
    tx: &mut Transaction<'static, Sqlite>,
    key: ActivityKey,
    vault_id: Uuid,
    sealed: &[u8],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO activity (item_id, version, deleted, vault_id, sealed) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT(item_id, version, deleted) DO UPDATE SET vault_id = excluded.vault_id, \
         sealed = excluded.sealed",
    )
    .bind(key.item_id.to_string())
    .bind(version_param(key.version))
    .bind(i64::from(key.deleted))
    .bind(vault_id.to_string())
    .bind(sealed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records one activity row on its own (a purge about to happen).
    ///
    /// # Errors
    /// Database errors; a read-only vault.
    pub async fn put_activity(
        &self,
        key: ActivityKey,
        vault_id: Uuid,
        sealed: &[u8],
    ) -> Result<()> {
        let mut tx = self.write().await?;
        put_activity(&mut tx, key, vault_id, sealed).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One activity row's sealed value.
    ///
    /// # Errors
    /// Database errors.
    pub async fn activity_row(&self, key: ActivityKey) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query(
            "SELECT sealed FROM activity WHERE item_id = ? AND version = ? AND deleted = ?",
        )
        .bind(key.item_id.to_string())
        .bind(version_param(key.version))
        .bind(i64::from(key.deleted))
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get("sealed"))
        .transpose()?)
    }

    /// A vault's activity rows.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn activity(&self, vault_id: Uuid) -> Result<Vec<(ActivityKey, Vec<u8>)>> {
        sqlx::query("SELECT item_id, version, deleted, sealed FROM activity WHERE vault_id = ?")
            .bind(vault_id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let id: String = r.try_get("item_id")?;
                Ok((
                    ActivityKey {
                        item_id: parse_id(&id, "bad item id")?,
                        version: parse_version(&id, r.try_get("version")?)?,
                        deleted: r.try_get::<i64, _>("deleted")? != 0,
                    },
                    r.try_get("sealed")?,
                ))
            })
            .collect()
    }

    /// The current version of every item of a vault, with details.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn vault_records(&self, vault_id: Uuid) -> Result<Vec<ItemRecord>> {
        sqlx::query(
            "SELECT id, vault_id, version, wrapped_key, overview, details FROM items WHERE vault_id = ?",
        )
        .bind(vault_id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Self::item_from_row(r, true))
        .collect()
    }

    /// Replaces a vault's key: `rewrap` gives the new wrapped item key of
    /// each current and earlier version (`None` leaves a version as it is:
    /// it did not open, and stays as damaged as it was), and the vault row
    /// takes `wrapped_key`, `meta` and the new key's epoch. All or nothing.
    ///
    /// # Errors
    /// Database errors and damaged ids; nothing is changed on error.
    pub async fn rewrap_vault(
        &self,
        vault_id: Uuid,
        rewrap: impl Fn(WrappedKeyRef<'_>) -> Option<Vec<u8>>,
        wrapped_key: &[u8],
        meta: &[u8],
        key_epoch: u32,
    ) -> Result<u64> {
        let vault = vault_id.to_string();
        let mut tx = self.write().await?;
        let mut done = 0u64;
        for (table, id_col) in [("items", "id"), ("item_history", "item_id")] {
            let rows = sqlx::query(&format!(
                "SELECT {id_col} AS id, version, wrapped_key FROM {table} WHERE vault_id = ?"
            ))
            .bind(&vault)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let id: String = r.try_get("id")?;
                let version = parse_version(&id, r.try_get("version")?)?;
                let old: Vec<u8> = r.try_get("wrapped_key")?;
                let Some(new) = rewrap(WrappedKeyRef {
                    item_id: parse_id(&id, "bad item id")?,
                    vault_id,
                    version,
                    wrapped_key: &old,
                }) else {
                    continue;
                };
                sqlx::query(&format!(
                    "UPDATE {table} SET wrapped_key = ? WHERE {id_col} = ? AND version = ?"
                ))
                .bind(new)
                .bind(&id)
                .bind(version_param(version))
                .execute(&mut *tx)
                .await?;
                done += 1;
            }
        }
        sqlx::query("UPDATE vaults SET wrapped_key = ?, meta = ?, key_epoch = ? WHERE id = ?")
            .bind(wrapped_key)
            .bind(meta)
            .bind(i64::from(key_epoch))
            .bind(&vault)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Removes a vault and everything of it from this device: items,
    /// history, tombstones, sync state. All or nothing.
    ///
    /// # Errors
    /// Database errors; nothing is removed on error.
    pub async fn forget_vault(&self, vault_id: Uuid) -> Result<()> {
        let vault = vault_id.to_string();
        let mut tx = self.write().await?;
        for table in [
            "items",
            "item_history",
            "tombstones",
            "item_sync",
            "sync_state",
            "activity",
            "vaults",
        ] {
            let col = if table == "vaults" { "id" } else { "vault_id" };
            sqlx::query(&format!("DELETE FROM {table} WHERE {col} = ?"))
                .bind(&vault)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        // What it held must not linger in free pages or the WAL.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
