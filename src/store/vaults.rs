//! Whole-vault writes: a shared vault's key changed (every item key of every
//! version re-wrapped under the new key, in one transaction), and a shared
//! vault this device no longer has access to (everything of it removed).

use sqlx::Row;
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

impl Store {
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
    /// takes `wrapped_key` and `meta`. All or nothing.
    ///
    /// # Errors
    /// Database errors and damaged ids; nothing is changed on error.
    pub async fn rewrap_vault(
        &self,
        vault_id: Uuid,
        rewrap: impl Fn(WrappedKeyRef<'_>) -> Option<Vec<u8>>,
        wrapped_key: &[u8],
        meta: &[u8],
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
        sqlx::query("UPDATE vaults SET wrapped_key = ?, meta = ? WHERE id = ?")
            .bind(wrapped_key)
            .bind(meta)
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
