//! Item records: reading current versions and history, and every local write.

use sqlx::Row;
use uuid::Uuid;

use super::sql::{Tx, insert_versions, mark_dirty, put_tombstone};
use super::{ItemRecord, Result, Store, StoreError, parse_id, parse_version, version_param};

/// Item changes written in one transaction ([`Store::write_items`]).
#[derive(Debug, Default)]
pub struct ItemBatch {
    /// New items (version 1).
    pub inserts: Vec<ItemRecord>,
    /// The next version of existing items.
    pub updates: Vec<ItemRecord>,
    /// Items moved to another vault.
    pub moves: Vec<ItemMove>,
    /// When (ms since the epoch) the moves' tombstones were made.
    pub at: i64,
}

/// One item moved to another vault in an [`ItemBatch`].
#[derive(Debug)]
pub struct ItemMove {
    /// The original item, its vault and its current version.
    pub id: Uuid,
    pub vault_id: Uuid,
    pub version: u64,
    /// Every version of the new item, oldest first; the last is current.
    pub records: Vec<ItemRecord>,
}

impl Store {
    pub(super) fn item_from_row(
        r: &sqlx::sqlite::SqliteRow,
        with_details: bool,
    ) -> Result<ItemRecord> {
        let id: String = r.try_get("id")?;
        let vault_id: String = r.try_get("vault_id")?;
        Ok(ItemRecord {
            id: parse_id(&id, "bad item id")?,
            vault_id: parse_id(&vault_id, "bad vault id")?,
            version: parse_version(&id, r.try_get("version")?)?,
            wrapped_key: r.try_get("wrapped_key")?,
            overview: r.try_get("overview")?,
            details: if with_details {
                r.try_get("details")?
            } else {
                Vec::new()
            },
        })
    }

    /// The current version of every item, without details, as a stream
    /// (rows are converted as they arrive). A row whose ids cannot be read
    /// is a [`StoreError::DamagedRecord`] item of the stream.
    pub fn overview_stream(&self) -> futures::stream::BoxStream<'_, Result<ItemRecord>> {
        use futures::StreamExt as _;
        sqlx::query("SELECT id, vault_id, version, wrapped_key, overview FROM items")
            .fetch(&self.pool)
            .map(|row| {
                row.map_err(StoreError::from)
                    .and_then(|r| Self::item_from_row(&r, false))
            })
            .boxed()
    }

    /// Every version of every item (of one vault, or of all), with
    /// details, as one stream in one read: ordered by item id, then
    /// version, so an item's history comes just before its current
    /// version. History is read only for items that still exist (the
    /// current version names the vault). The second value is true for
    /// the current version.
    pub fn export_stream(
        &self,
        vault_id: Option<Uuid>,
    ) -> futures::stream::BoxStream<'_, Result<(ItemRecord, bool)>> {
        use futures::StreamExt as _;
        // A compound SELECT whose ORDER BY each side's index already
        // gives: SQLite merges the two index scans (no sort, no temporary
        // table of ciphertext).
        const ALL: &str = "SELECT i.id AS id, i.vault_id AS vault_id, i.version AS version, \
               i.wrapped_key AS wrapped_key, i.overview AS overview, i.details AS details, 1 AS current \
             FROM items i WHERE ?1 IS NULL OR i.vault_id = ?1 \
             UNION ALL \
             SELECT h.item_id, h.vault_id, h.version, h.wrapped_key, h.overview, h.details, 0 \
             FROM item_history h JOIN items i ON i.id = h.item_id \
             WHERE ?1 IS NULL OR i.vault_id = ?1 \
             ORDER BY 1, 3";
        sqlx::query(ALL)
            .bind(vault_id.map(|v| v.to_string()))
            .fetch(&self.pool)
            .map(|row| {
                let r = row.map_err(StoreError::from)?;
                let current: i64 = r.try_get("current")?;
                Ok((Self::item_from_row(&r, true)?, current == 1))
            })
            .boxed()
    }

    /// How many items [`Store::export_stream`] goes through.
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_items(&self, vault_id: Option<Uuid>) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM items WHERE ?1 IS NULL OR vault_id = ?1")
            .bind(vault_id.map(|v| v.to_string()))
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The current version of one item, with details.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn item(&self, id: Uuid) -> Result<Option<ItemRecord>> {
        let row = sqlx::query(
            "SELECT id, vault_id, version, wrapped_key, overview, details FROM items WHERE id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Self::item_from_row(&r, true)).transpose()
    }

    /// Every earlier version of an item, oldest first.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn history(&self, id: Uuid) -> Result<Vec<ItemRecord>> {
        let rows = sqlx::query(
            "SELECT item_id AS id, vault_id, version, wrapped_key, overview, details FROM item_history WHERE item_id = ? ORDER BY version",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Self::item_from_row(r, true)).collect()
    }

    /// The current version of an item and the highest version number in its
    /// history (0 when it has none), read in one transaction so that a
    /// concurrent edit cannot make the two disagree.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn item_and_newest_history(&self, id: Uuid) -> Result<Option<(ItemRecord, u64)>> {
        let key = id.to_string();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT id, vault_id, version, wrapped_key, overview, details FROM items WHERE id = ?",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let rec = Self::item_from_row(&row, true)?;
        let newest = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) AS v FROM item_history WHERE item_id = ?",
        )
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
        let newest = parse_version(&key, newest.try_get("v")?)?;
        tx.commit().await?;
        Ok(Some((rec, newest)))
    }

    /// Adds new items (one transaction for the whole batch).
    ///
    /// # Errors
    /// Database errors; nothing is written on error.
    pub async fn insert_items(&self, records: &[ItemRecord]) -> Result<()> {
        let mut tx = self.write().await?;
        for rec in records {
            insert_versions(&mut tx, &[], rec).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds items that arrive with their earlier versions (imports): each
    /// list holds one item's versions, oldest first; the last becomes the
    /// current version and the others its history. One transaction: all
    /// of them or none.
    ///
    /// # Errors
    /// Database errors (an id already present among them).
    pub async fn insert_item_versions(&self, items: &[Vec<ItemRecord>]) -> Result<()> {
        let mut tx = self.write().await?;
        for versions in items {
            let Some((current, earlier)) = versions.split_last() else {
                continue;
            };
            insert_versions(&mut tx, earlier, current).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Saves a new version of an item, moving the current one into history,
    /// only if the current version is still `record.version - 1`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another process saved a version first.
    pub async fn update_item(&self, record: &ItemRecord) -> Result<()> {
        let mut tx = self.write().await?;
        update_in(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Destroys an item and its history, leaving a tombstone.
    ///
    /// # Errors
    /// Database errors; nothing is deleted on error.
    pub async fn purge_item(&self, id: Uuid, vault_id: Uuid, version: u64, at: i64) -> Result<()> {
        let mut tx = self.write().await?;
        purge_in(&mut tx, &id.to_string(), vault_id, version, at).await?;
        tx.commit().await?;
        self.wipe_free_pages().await
    }

    /// Moves an item to another vault as a new item, in one transaction:
    /// `moved` (every version of the new item, oldest first; the last is
    /// current) is inserted and the item `id` of `vault_id` is purged,
    /// leaving a tombstone, so that a crash leaves it in exactly one of the
    /// two vaults and the next sync pushes both sides.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the item is no longer at `version`
    /// (another process changed it since it was read); database errors.
    /// Nothing is written on error.
    pub async fn move_item(
        &self,
        id: Uuid,
        vault_id: Uuid,
        version: u64,
        moved: &[ItemRecord],
        at: i64,
    ) -> Result<()> {
        let Some((current, history)) = moved.split_last() else {
            return Err(StoreError::Damaged("a move without a version".into()));
        };
        let key = id.to_string();
        let mut tx = self.write().await?;
        let now: Option<i64> = sqlx::query_scalar("SELECT version FROM items WHERE id = ?")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
        if now != Some(version_param(version)) {
            return Err(StoreError::Conflict(id));
        }
        insert_versions(&mut tx, history, current).await?;
        purge_in(&mut tx, &key, vault_id, version, at).await?;
        tx.commit().await?;
        self.wipe_free_pages().await
    }

    /// Writes a batch of item changes in ONE transaction (bulk edits,
    /// `openk apply`): `inserts` are new items; each of `updates` is the next
    /// version of an item whose current version must still be
    /// `version - 1` (that one moves into history); each of `moves` inserts
    /// the versions of a moved item and purges the original, leaving a
    /// tombstone, as [`Store::move_item`] does. Every written item is marked
    /// dirty for the next sync. A crash at any point leaves all of it or none.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when an updated or moved item is no longer
    /// at the version it was read at; database errors. Nothing is written
    /// on error.
    pub async fn write_items(&self, batch: &ItemBatch) -> Result<()> {
        let mut tx = self.write().await?;
        for rec in &batch.inserts {
            insert_versions(&mut tx, &[], rec).await?;
        }
        for rec in &batch.updates {
            update_in(&mut tx, rec).await?;
        }
        for m in &batch.moves {
            let Some((current, history)) = m.records.split_last() else {
                return Err(StoreError::Damaged("a move without a version".into()));
            };
            let key = m.id.to_string();
            let now: Option<i64> = sqlx::query_scalar("SELECT version FROM items WHERE id = ?")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?;
            if now != Some(version_param(m.version)) {
                return Err(StoreError::Conflict(m.id));
            }
            insert_versions(&mut tx, history, current).await?;
            purge_in(&mut tx, &key, m.vault_id, m.version, batch.at).await?;
        }
        tx.commit().await?;
        if batch.moves.is_empty() {
            Ok(())
        } else {
            self.wipe_free_pages().await
        }
    }

    /// Purged ciphertext must not linger in free pages or the WAL.
    async fn wipe_free_pages(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Deletes an item and its history and leaves a tombstone, inside `tx`.
async fn purge_in(tx: &mut Tx, key: &str, vault_id: Uuid, version: u64, at: i64) -> Result<()> {
    sqlx::query("DELETE FROM item_history WHERE item_id = ?")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM items WHERE id = ?")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    put_tombstone(tx, key, vault_id, version, at).await?;
    mark_dirty(tx, key, vault_id).await
}

/// Saves `record` as the next version of its item inside `tx`, moving the
/// current one into history, only if the current version is still
/// `record.version - 1`.
async fn update_in(tx: &mut Tx, record: &ItemRecord) -> Result<()> {
    let previous = version_param(record.version.saturating_sub(1));
    let id = record.id.to_string();
    let moved = sqlx::query(
        "INSERT INTO item_history (item_id, vault_id, version, wrapped_key, overview, details)
         SELECT id, vault_id, version, wrapped_key, overview, details FROM items WHERE id = ? AND version = ?",
    )
    .bind(&id)
    .bind(previous)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(StoreError::Conflict(record.id));
    }
    sqlx::query("UPDATE items SET version = ?, wrapped_key = ?, overview = ?, details = ? WHERE id = ? AND version = ?")
        .bind(version_param(record.version))
        .bind(&record.wrapped_key)
        .bind(&record.overview)
        .bind(&record.details)
        .bind(&id)
        .bind(previous)
        .execute(&mut **tx)
        .await?;
    mark_dirty(tx, &id, record.vault_id).await
}
