//! The statements several store methods share: each upsert and bind list
//! is written once here.

use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::{ItemRecord, Result, version_param};

pub(super) type Tx = Transaction<'static, Sqlite>;
type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Binds an item record's six values in the order the item tables list
/// them: id, vault id, version, wrapped key, overview, details.
pub(super) fn bind_item<'q>(q: Query<'q>, rec: &'q ItemRecord) -> Query<'q> {
    q.bind(rec.id.to_string())
        .bind(rec.vault_id.to_string())
        .bind(version_param(rec.version))
        .bind(&rec.wrapped_key)
        .bind(&rec.overview)
        .bind(&rec.details)
}

/// Sets a `meta` value (inserting or replacing it).
pub(super) async fn put_meta(tx: &mut Tx, key: &str, value: &[u8]) -> Result<()> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that an item was purged at `version` (inserting or replacing
/// its tombstone).
pub(super) async fn put_tombstone(
    tx: &mut Tx,
    item_id: &str,
    vault_id: Uuid,
    version: u64,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tombstones (item_id, vault_id, version, deleted_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT(item_id) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at",
    )
    .bind(item_id)
    .bind(vault_id.to_string())
    .bind(version_param(version))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks an item as changed here (every local write does, in its own
/// transaction), so a crash between the write and a push loses nothing.
pub(super) async fn mark_dirty(tx: &mut Tx, item_id: &str, vault_id: Uuid) -> Result<()> {
    sqlx::query(
        "INSERT INTO item_sync (item_id, vault_id, dirty) VALUES (?, ?, 1) \
         ON CONFLICT(item_id) DO UPDATE SET dirty = 1",
    )
    .bind(item_id)
    .bind(vault_id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts an item's earlier versions into history and `current` as its
/// current version, and marks it dirty (new items, imports, moves).
pub(super) async fn insert_versions(
    tx: &mut Tx,
    history: &[ItemRecord],
    current: &ItemRecord,
) -> Result<()> {
    for rec in history {
        bind_item(
            sqlx::query("INSERT INTO item_history (item_id, vault_id, version, wrapped_key, overview, details) VALUES (?, ?, ?, ?, ?, ?)"),
            rec,
        )
        .execute(&mut **tx)
        .await?;
    }
    bind_item(
        sqlx::query("INSERT INTO items (id, vault_id, version, wrapped_key, overview, details) VALUES (?, ?, ?, ?, ?, ?)"),
        current,
    )
    .execute(&mut **tx)
    .await?;
    mark_dirty(tx, &current.id.to_string(), current.vault_id).await
}
