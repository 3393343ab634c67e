//! Sync bookkeeping in the local store: per-item server state and dirty
//! flags, per-vault cursor and manifest counter, the unconfirmed push, and
//! the one-transaction application of a sync's decisions.

use sqlx::Row;
use uuid::Uuid;

use super::sql::{bind_item, put_tombstone};
use super::{ItemRecord, Result, Store, StoreError, parse_id, parse_version, version_param};

/// What this device knows of one item on the server, and whether it has
/// local changes to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSync {
    pub item_id: Uuid,
    pub vault_id: Uuid,
    /// Server revision of the copy last seen (0: not on the server).
    pub revision: i64,
    /// Its item version.
    pub version: u64,
    /// SHA-256 of its ciphertext (`None` for a tombstone or nothing).
    pub hash: Option<[u8; 32]>,
    pub deleted: bool,
    pub dirty: bool,
}

/// The fields of a vault's sync state that steer the client (what it pulls
/// from, which manifests it accepts, which server lines it knows), as
/// stored: the engine authenticates them with a MAC kept in the same row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncFields {
    pub cursor: i64,
    /// The stored counter (as the database holds it).
    pub counter: i64,
    pub manifest_id: Option<Vec<u8>>,
    pub lines: Option<Vec<u8>>,
}

impl SyncFields {
    /// Whether this is a row nothing has synced into yet (a pending note
    /// only): there is nothing to authenticate.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cursor == 0 && self.counter == 0 && self.manifest_id.is_none() && self.lines.is_none()
    }
}

/// Computes the MAC of a vault's [`SyncFields`] (the engine's key, so the
/// store never holds one).
pub type SyncSealer<'a> = &'a (dyn Fn(Uuid, &SyncFields) -> Vec<u8> + Send + Sync);

/// Per-vault sync progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    pub cursor: i64,
    pub counter: u64,
    /// The id of the last manifest accepted (`manifest::manifest_id`), kept
    /// in the same row as the counter it belongs to; `None` before the
    /// first manifest (or before the upgrade that added it).
    pub manifest_id: Option<[u8; 32]>,
    pub last_sync: Option<i64>,
    pub pending: Option<String>,
}

/// One write of a sync, applied with the others in one transaction.
#[derive(Debug, Clone)]
pub enum SyncOp {
    /// Fails the whole application (nothing written) unless the item's
    /// current local version and dirty flag are still these: another
    /// process changed it meanwhile and the sync must decide again.
    Expect {
        item_id: Uuid,
        version: Option<u64>,
        dirty: bool,
    },
    /// Makes this the current version (replacing any current row).
    SetCurrent(ItemRecord),
    /// Keeps a version in history (ignored if that version is there).
    PutHistory(ItemRecord),
    /// Removes history versions above `above` (before they are renumbered).
    DropHistoryAbove { item_id: Uuid, above: u64 },
    /// Destroys an item and its history, leaving a tombstone.
    Purge {
        item_id: Uuid,
        vault_id: Uuid,
        version: u64,
        at: i64,
    },
    /// Forgets a local tombstone (the item came back).
    DropTombstone(Uuid),
    /// Records the server's copy of an item. `dirty: None` derives the flag
    /// inside the transaction: set when the local state differs from the
    /// copy (a newer version, or a deletion not yet pushed).
    Server { item: ItemSync, dirty: Option<bool> },
    /// Moves the vault's cursor and manifest counter forward, with the id
    /// of the manifest at that counter.
    Progress {
        vault_id: Uuid,
        cursor: i64,
        counter: u64,
        manifest_id: Option<[u8; 32]>,
        complete: bool,
    },
    /// Replaces the vault's known server lines (see `sync_state.lines`).
    Lines { vault_id: Uuid, blob: Vec<u8> },
    /// Items this device has never had: inserted as current with their
    /// server state, many rows per statement (a first sync).
    InsertNew(Vec<(ItemRecord, ItemSync)>),
    /// Records (or clears) the unconfirmed push.
    Pending {
        vault_id: Uuid,
        pending: Option<String>,
    },
    /// Records what an item version did in a shared vault (sealed by the
    /// engine); replaces a row for the same version.
    Activity {
        item_id: Uuid,
        vault_id: Uuid,
        version: u64,
        deleted: bool,
        sealed: Vec<u8>,
    },
}

fn item_sync_from(r: &sqlx::sqlite::SqliteRow) -> Result<ItemSync> {
    let id: String = r.try_get("item_id")?;
    let vault: String = r.try_get("vault_id")?;
    let hash: Option<Vec<u8>> = r.try_get("hash")?;
    Ok(ItemSync {
        item_id: parse_id(&id, "item id")?,
        vault_id: parse_id(&vault, "vault id")?,
        revision: r.try_get("revision")?,
        version: parse_version(&id, r.try_get("version")?)?,
        hash: hash.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()),
        deleted: r.try_get::<i64, _>("deleted")? != 0,
        dirty: r.try_get::<i64, _>("dirty")? != 0,
    })
}

const ITEM_SYNC_COLUMNS: &str = "item_id, vault_id, revision, version, hash, deleted, dirty";

impl Store {
    /// The sync progress of a vault (zeros when it never synced).
    ///
    /// # Errors
    /// Database errors.
    pub async fn sync_state(&self, vault_id: Uuid) -> Result<SyncState> {
        let row = sqlx::query(
            "SELECT cursor, counter, manifest_id, last_sync, pending FROM sync_state WHERE vault_id = ?",
        )
        .bind(vault_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(SyncState::default());
        };
        Ok(SyncState {
            cursor: r.try_get("cursor")?,
            counter: parse_version("sync_state", r.try_get("counter")?)?,
            manifest_id: r
                .try_get::<Option<Vec<u8>>, _>("manifest_id")?
                .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()),
            last_sync: r.try_get("last_sync")?,
            pending: r.try_get("pending")?,
        })
    }

    /// The server state of every item of a vault this device knows.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn item_syncs(&self, vault_id: Uuid) -> Result<Vec<ItemSync>> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_SYNC_COLUMNS} FROM item_sync WHERE vault_id = ?"
        ))
        .bind(vault_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(item_sync_from).collect()
    }

    /// Items of a vault with local changes to push.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn dirty_items(&self, vault_id: Uuid) -> Result<Vec<ItemSync>> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_SYNC_COLUMNS} FROM item_sync WHERE vault_id = ? AND dirty = 1"
        ))
        .bind(vault_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(item_sync_from).collect()
    }

    /// How many items have local changes to push, over all vaults.
    ///
    /// # Errors
    /// Database errors.
    pub async fn pending_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT count(*) AS n FROM item_sync WHERE dirty = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The vault's known server lines blob, if recorded.
    ///
    /// # Errors
    /// Database errors.
    pub async fn lines_blob(&self, vault_id: Uuid) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT lines FROM sync_state WHERE vault_id = ?")
            .bind(vault_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get("lines")?,
            None => None,
        })
    }

    /// The server state of some items (those this device has heard of).
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn item_sync(&self, item_id: Uuid) -> Result<Option<ItemSync>> {
        let row = sqlx::query(&format!(
            "SELECT {ITEM_SYNC_COLUMNS} FROM item_sync WHERE item_id = ?"
        ))
        .bind(item_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(item_sync_from).transpose()
    }

    /// One version of an item, current or from history.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn item_at(&self, item_id: Uuid, version: u64) -> Result<Option<ItemRecord>> {
        let row = sqlx::query(
            "SELECT id, vault_id, version, wrapped_key, overview, details FROM items WHERE id = ?1 AND version = ?2 \
             UNION ALL SELECT item_id AS id, vault_id, version, wrapped_key, overview, details FROM item_history \
             WHERE item_id = ?1 AND version = ?2 LIMIT 1",
        )
        .bind(item_id.to_string())
        .bind(version_param(version))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Self::item_from_row(&r, true)).transpose()
    }

    /// Every version of an item above `above`, oldest first (history and
    /// the current one).
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn versions_above(&self, item_id: Uuid, above: u64) -> Result<Vec<ItemRecord>> {
        let rows = sqlx::query(
            "SELECT id, vault_id, version, wrapped_key, overview, details FROM items WHERE id = ?1 AND version > ?2 \
             UNION ALL SELECT item_id AS id, vault_id, version, wrapped_key, overview, details FROM item_history \
             WHERE item_id = ?1 AND version > ?2 ORDER BY version",
        )
        .bind(item_id.to_string())
        .bind(version_param(above))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Self::item_from_row(r, true)).collect()
    }

    /// The local tombstone of an item (its version), if it was purged here.
    ///
    /// # Errors
    /// Database errors.
    pub async fn tombstone(&self, item_id: Uuid) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT version FROM tombstones WHERE item_id = ?")
            .bind(item_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse_version("tombstone", r.try_get("version")?))
            .transpose()
    }

    /// Applies a sync's writes in one transaction: all or nothing. Every
    /// vault whose [`SyncFields`] change gets its MAC from `seal`, computed
    /// over the row as it stands at the end of the transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when an [`SyncOp::Expect`] fails (another
    /// process wrote meanwhile); database errors. Nothing is written on error.
    pub async fn apply_sync(&self, ops: &[SyncOp], seal: SyncSealer<'_>) -> Result<()> {
        let mut tx = self.write().await?;
        let mut purged = false;
        let mut sealed: Vec<Uuid> = Vec::new();
        for op in ops {
            if let SyncOp::Progress { vault_id, .. } | SyncOp::Lines { vault_id, .. } = op
                && !sealed.contains(vault_id)
            {
                sealed.push(*vault_id);
            }
            match op {
                SyncOp::Expect {
                    item_id,
                    version,
                    dirty,
                } => {
                    let id = item_id.to_string();
                    let current: Option<i64> =
                        sqlx::query("SELECT version FROM items WHERE id = ?")
                            .bind(&id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get("version"))
                            .transpose()?;
                    let flag: Option<i64> =
                        sqlx::query("SELECT dirty FROM item_sync WHERE item_id = ?")
                            .bind(&id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get("dirty"))
                            .transpose()?;
                    if current != version.map(version_param)
                        || flag.unwrap_or(0) != i64::from(*dirty)
                    {
                        return Err(StoreError::Conflict(*item_id));
                    }
                }
                SyncOp::SetCurrent(rec) => {
                    bind_item(
                        sqlx::query(
                            "INSERT INTO items (id, vault_id, version, wrapped_key, overview, details) VALUES (?, ?, ?, ?, ?, ?) \
                             ON CONFLICT(id) DO UPDATE SET vault_id = excluded.vault_id, version = excluded.version, \
                             wrapped_key = excluded.wrapped_key, overview = excluded.overview, details = excluded.details",
                        ),
                        rec,
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                SyncOp::PutHistory(rec) => {
                    bind_item(
                        sqlx::query(
                            "INSERT OR IGNORE INTO item_history (item_id, vault_id, version, wrapped_key, overview, details) \
                             VALUES (?, ?, ?, ?, ?, ?)",
                        ),
                        rec,
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                SyncOp::DropHistoryAbove { item_id, above } => {
                    sqlx::query("DELETE FROM item_history WHERE item_id = ? AND version > ?")
                        .bind(item_id.to_string())
                        .bind(version_param(*above))
                        .execute(&mut *tx)
                        .await?;
                }
                SyncOp::Purge {
                    item_id,
                    vault_id,
                    version,
                    at,
                } => {
                    let key = item_id.to_string();
                    for q in [
                        "DELETE FROM item_history WHERE item_id = ?",
                        "DELETE FROM items WHERE id = ?",
                    ] {
                        sqlx::query(q).bind(&key).execute(&mut *tx).await?;
                    }
                    put_tombstone(&mut tx, &key, *vault_id, *version, *at).await?;
                    purged = true;
                }
                SyncOp::DropTombstone(item_id) => {
                    sqlx::query("DELETE FROM tombstones WHERE item_id = ?")
                        .bind(item_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                SyncOp::Server { item, dirty } => {
                    let derived = if item.deleted {
                        "EXISTS(SELECT 1 FROM items WHERE id = ?1)"
                    } else {
                        "NOT EXISTS(SELECT 1 FROM items WHERE id = ?1 AND version = ?4)"
                    };
                    let dirty_sql = match dirty {
                        Some(true) => "1".to_owned(),
                        Some(false) => "0".to_owned(),
                        None => derived.to_owned(),
                    };
                    sqlx::query(&format!(
                        "INSERT INTO item_sync (item_id, vault_id, revision, version, hash, deleted, dirty) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, {dirty_sql}) \
                         ON CONFLICT(item_id) DO UPDATE SET vault_id = excluded.vault_id, revision = excluded.revision, \
                         version = excluded.version, hash = excluded.hash, deleted = excluded.deleted, dirty = excluded.dirty"
                    ))
                    .bind(item.item_id.to_string())
                    .bind(item.vault_id.to_string())
                    .bind(item.revision)
                    .bind(version_param(item.version))
                    .bind(item.hash.map(|h| h.to_vec()))
                    .bind(i64::from(item.deleted))
                    .execute(&mut *tx)
                    .await?;
                }
                SyncOp::Progress {
                    vault_id,
                    cursor,
                    counter,
                    manifest_id,
                    complete,
                } => {
                    sqlx::query(
                        "INSERT INTO sync_state (vault_id, cursor, counter, last_sync, manifest_id) VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT(vault_id) DO UPDATE SET cursor = excluded.cursor, counter = excluded.counter, \
                         manifest_id = excluded.manifest_id, \
                         last_sync = COALESCE(excluded.last_sync, sync_state.last_sync)",
                    )
                    .bind(vault_id.to_string())
                    .bind(cursor)
                    .bind(version_param(*counter))
                    .bind(complete.then(crate::util::time::now_millis))
                    .bind(manifest_id.map(|h| h.to_vec()))
                    .execute(&mut *tx)
                    .await?;
                }
                SyncOp::Lines { vault_id, blob } => {
                    sqlx::query(
                        "INSERT INTO sync_state (vault_id, lines) VALUES (?1, ?2) \
                         ON CONFLICT(vault_id) DO UPDATE SET lines = excluded.lines",
                    )
                    .bind(vault_id.to_string())
                    .bind(blob)
                    .execute(&mut *tx)
                    .await?;
                }
                SyncOp::InsertNew(rows) => {
                    const CHUNK: usize = 200;
                    for chunk in rows.chunks(CHUNK) {
                        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                            "INSERT INTO items (id, vault_id, version, wrapped_key, overview, details) ",
                        );
                        q.push_values(chunk, |mut b, (rec, _)| {
                            b.push_bind(rec.id.to_string())
                                .push_bind(rec.vault_id.to_string())
                                .push_bind(version_param(rec.version))
                                .push_bind(&rec.wrapped_key)
                                .push_bind(&rec.overview)
                                .push_bind(&rec.details);
                        });
                        q.push(
                            " ON CONFLICT(id) DO UPDATE SET vault_id = excluded.vault_id, version = excluded.version, \
                             wrapped_key = excluded.wrapped_key, overview = excluded.overview, details = excluded.details",
                        );
                        q.build().execute(&mut *tx).await?;
                        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                            "INSERT INTO item_sync (item_id, vault_id, revision, version, hash, deleted, dirty) ",
                        );
                        q.push_values(chunk, |mut b, (_, s)| {
                            b.push_bind(s.item_id.to_string())
                                .push_bind(s.vault_id.to_string())
                                .push_bind(s.revision)
                                .push_bind(version_param(s.version))
                                .push_bind(s.hash.map(|h| h.to_vec()))
                                .push_bind(i64::from(s.deleted))
                                .push_bind(0i64);
                        });
                        q.push(
                            " ON CONFLICT(item_id) DO UPDATE SET vault_id = excluded.vault_id, revision = excluded.revision, \
                             version = excluded.version, hash = excluded.hash, deleted = excluded.deleted, dirty = 0",
                        );
                        q.build().execute(&mut *tx).await?;
                    }
                }
                SyncOp::Pending { vault_id, pending } => {
                    sqlx::query(
                        "INSERT INTO sync_state (vault_id, pending) VALUES (?1, ?2) \
                         ON CONFLICT(vault_id) DO UPDATE SET pending = excluded.pending",
                    )
                    .bind(vault_id.to_string())
                    .bind(pending)
                    .execute(&mut *tx)
                    .await?;
                }
                SyncOp::Activity {
                    item_id,
                    vault_id,
                    version,
                    deleted,
                    sealed,
                } => {
                    let key = super::vaults::ActivityKey {
                        item_id: *item_id,
                        version: *version,
                        deleted: *deleted,
                    };
                    super::vaults::put_activity(&mut tx, key, *vault_id, sealed).await?;
                }
            }
        }
        for vault_id in sealed {
            let fields = sync_fields_in(&mut tx, vault_id).await?.unwrap_or_default();
            sqlx::query("UPDATE sync_state SET mac = ? WHERE vault_id = ?")
                .bind(seal(vault_id, &fields))
                .bind(vault_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if purged {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Every vault's authenticated sync fields and their MAC.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn sync_macs(&self) -> Result<Vec<(Uuid, SyncFields, Option<Vec<u8>>)>> {
        let rows = sqlx::query(
            "SELECT vault_id, cursor, counter, manifest_id, lines, mac FROM sync_state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_id(&r.try_get::<String, _>("vault_id")?, "sync state vault id")?,
                    sync_fields_from(r)?,
                    r.try_get("mac")?,
                ))
            })
            .collect()
    }
}

fn sync_fields_from(r: &sqlx::sqlite::SqliteRow) -> Result<SyncFields> {
    Ok(SyncFields {
        cursor: r.try_get("cursor")?,
        counter: r.try_get("counter")?,
        manifest_id: r.try_get("manifest_id")?,
        lines: r.try_get("lines")?,
    })
}

async fn sync_fields_in(
    tx: &mut sqlx::SqliteConnection,
    vault_id: Uuid,
) -> Result<Option<SyncFields>> {
    let row = sqlx::query(
        "SELECT cursor, counter, manifest_id, lines FROM sync_state WHERE vault_id = ?",
    )
    .bind(vault_id.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    row.as_ref().map(sync_fields_from).transpose()
}
