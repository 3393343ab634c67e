//! The local store: one SQLite database (WAL) per vault directory holding only
//! ciphertext and the ids and version numbers needed to find it.
//!
//! It knows nothing about keys or plaintext: the engine seals every blob before
//! it gets here. Every write is one transaction, so a crash leaves the last
//! committed state; writers take the database lock up front (`BEGIN IMMEDIATE`)
//! and a second process waits for it (busy timeout) instead of failing.

mod items;
mod rekey;
mod sql;
mod sync;
mod types;
mod usage;
mod vaults;

pub use items::{ItemBatch, ItemMove};
pub use rekey::Rekey;
pub use sync::{ItemSync, SyncFields, SyncOp, SyncState};
pub use usage::UsageRow;
pub use vaults::{ActivityKey, WrappedKeyRef};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

pub(crate) use types::Result;
pub use types::{ADOPT_MACS_KEY, HEADER_FORMAT, Header, ItemRecord, StoreError, VaultRecord};

/// File name of the database inside the vault directory.
pub const DB_FILE: &str = "vault.db";
/// How long a writer waits for another process holding the vault.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Bumped each time the pool opens a connection, so that a
    /// [`ChangeMarker`] read on a new connection never equals an old one.
    connections: Arc<AtomicU64>,
    /// Set when the database was opened read-only (the vault directory).
    read_only: Option<PathBuf>,
}

/// Says whether the database may have changed since it was last read:
/// another connection (another `openk` process, or a second handle of this
/// one) committed, or the connection was replaced. Two equal markers mean
/// nothing was committed in between by anyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeMarker {
    connection: u64,
    data_version: i64,
}

fn parse_id(text: &str, what: &'static str) -> Result<Uuid> {
    Uuid::from_str(text).map_err(|_| StoreError::DamagedRecord {
        id: text.chars().take(40).collect(),
        what,
    })
}

fn parse_version(id: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::DamagedRecord {
        id: id.to_owned(),
        what: "negative version",
    })
}

fn version_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (or, with `create`, creates) the database in `dir` and runs the
    /// embedded migrations.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] for a file that is not a healthy database.
    pub async fn open(dir: &Path, create: bool) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(dir.join(DB_FILE))
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows are overwritten, so purged ciphertext does not
            // linger in free pages.
            .pragma("secure_delete", "ON")
            .busy_timeout(BUSY_TIMEOUT);
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .after_connect(move |_, _| {
                let counter = counter.clone();
                Box::pin(async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        let store = Self {
            pool,
            connections,
            read_only: None,
        };
        // Reading the schema catches a garbage or truncated file before the
        // migrations try to write to it.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&store.pool)
            .await?;
        sqlx::migrate!("src/store/migrations")
            .run(&store.pool)
            .await?;
        Ok(store)
    }

    /// An in-memory store, for tests.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        Ok(Self {
            pool,
            connections: Arc::new(AtomicU64::new(1)),
            read_only: None,
        })
    }

    /// Where the database stands (SQLite's `PRAGMA data_version` on this
    /// store's connection): one tiny query, whatever the vault's size.
    ///
    /// # Errors
    /// Database errors.
    pub async fn change_marker(&self) -> Result<ChangeMarker> {
        let mut conn = self.pool.acquire().await?;
        let connection = self.connections.load(Ordering::SeqCst);
        let data_version: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *conn)
            .await?;
        Ok(ChangeMarker {
            connection,
            data_version,
        })
    }

    /// The id and version of every current item (no ciphertext), to find
    /// what another process changed.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn item_versions(&self) -> Result<Vec<(Uuid, u64)>> {
        use futures::TryStreamExt as _;
        let mut rows = sqlx::query("SELECT id, version FROM items").fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await? {
            let id: String = r.try_get("id")?;
            let version = parse_version(&id, r.try_get("version")?)?;
            out.push((parse_id(&id, "bad item id")?, version));
        }
        Ok(out)
    }

    /// Opens the database in `dir` without ever writing to it, for a vault
    /// whose directory or `vault.db` is not writable. SQLite needs the
    /// `-shm` file (and a writable directory to make it) to read a WAL
    /// database, so a database without a write-ahead log to replay is opened
    /// `immutable` (no locks, no `-shm`); one with a non-empty `vault.db-wal`
    /// is opened read-only and needs its `-shm` file. Every write fails with
    /// [`StoreError::ReadOnly`].
    ///
    /// # Errors
    /// [`StoreError::Damaged`]; [`StoreError::NeedsWrite`] for a database
    /// this build would have to migrate first, or an unfinished write-ahead
    /// log SQLite cannot read without writing.
    pub async fn open_read_only(dir: &Path) -> Result<Self> {
        let wal_has_data =
            std::fs::metadata(dir.join(format!("{DB_FILE}-wal"))).is_ok_and(|m| m.len() > 0);
        let opts = SqliteConnectOptions::new()
            .filename(dir.join(DB_FILE))
            .read_only(true)
            .immutable(!wal_has_data)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_with(opts)
            .await
            .map_err(|e| read_only_open_error(dir, e))?;
        let store = Self {
            pool,
            connections: Arc::new(AtomicU64::new(1)),
            read_only: Some(dir.to_path_buf()),
        };
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .fetch_one(&store.pool)
            .await
            .map_err(|e| read_only_open_error(dir, e))?;
        // The migrations cannot run here: every one must already be applied.
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&store.pool)
                .await
                .map_err(|_| StoreError::NeedsWrite {
                    dir: dir.to_path_buf(),
                    why: OLD_SCHEMA,
                })?;
        if sqlx::migrate!("src/store/migrations")
            .iter()
            .any(|m| !applied.contains(&m.version))
        {
            return Err(StoreError::NeedsWrite {
                dir: dir.to_path_buf(),
                why: OLD_SCHEMA,
            });
        }
        Ok(store)
    }

    /// Writes a consistent copy of the whole database to `path` (SQLite's
    /// `VACUUM INTO`: one read transaction, so writes by other processes
    /// before or after it are wholly in or wholly out). `path` must not
    /// exist or be an empty file; the copy holds no write-ahead log.
    ///
    /// # Errors
    /// Database errors (a path SQLite cannot write, a full disk).
    pub async fn backup_into(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| {
            StoreError::Damaged(format!("{} is not a UTF-8 path", path.display()))
        })?;
        sqlx::query("VACUUM INTO ?1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the database was opened read-only ([`Store::open_read_only`]).
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// Moves everything from the write-ahead log into `vault.db` and closes
    /// the database, so that the file alone holds every committed change
    /// when the command exits (a backup of `vault.db` is complete).
    pub async fn close(&self) {
        if self.read_only.is_some() {
            self.pool.close().await;
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::debug!(error = %e, "checkpoint at close skipped");
        }
        self.pool.close().await;
    }

    /// A write transaction that has replaced the header with `header`, if
    /// the stored one is still `expected` (compared as parsed headers: an
    /// old writer's key order may differ).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another process changed the header first.
    async fn write_replacing_header(
        &self,
        expected: &Header,
        header: &Header,
    ) -> Result<Transaction<'static, Sqlite>> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'header'")
            .fetch_one(&mut *tx)
            .await?;
        let current: Vec<u8> = row.try_get("value")?;
        let same = serde_json::from_slice::<Header>(&current)
            .ok()
            .and_then(|h| serde_json::to_vec(&h).ok())
            == serde_json::to_vec(expected).ok();
        if !same {
            return Err(StoreError::Conflict(header.account_id));
        }
        Self::put_header(&mut tx, header).await?;
        Ok(tx)
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        if let Some(dir) = &self.read_only {
            return Err(StoreError::ReadOnly(dir.clone()));
        }
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The header, or `None` for a database that was never initialised.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when the header is not valid JSON of this format.
    pub async fn header(&self) -> Result<Option<Header>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'header'")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Vec<u8> = row.try_get("value")?;
        let header: Header = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Damaged(format!("vault header: {e}")))?;
        if header.format != HEADER_FORMAT {
            return Err(StoreError::Damaged(format!(
                "vault header format {} is not supported by this version of openk",
                header.format
            )));
        }
        Ok(Some(header))
    }

    /// Writes the header and the first vault in one transaction.
    ///
    /// # Errors
    /// Database errors; nothing is written on error.
    pub async fn initialise(&self, header: &Header, vault: &VaultRecord) -> Result<()> {
        let mut tx = self.write().await?;
        Self::put_header(&mut tx, header).await?;
        // A new vault is authenticated from the start: nothing to adopt.
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(ADOPT_MACS_KEY)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO vaults (id, wrapped_key, meta, created_at, key_epoch) VALUES (?, ?, ?, ?, ?)")
            .bind(vault.id.to_string())
            .bind(&vault.wrapped_key)
            .bind(&vault.meta)
            .bind(vault.created_at)
            .bind(i64::from(vault.key_epoch))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_header(tx: &mut Transaction<'static, Sqlite>, header: &Header) -> Result<()> {
        let json = serde_json::to_vec(header).map_err(|e| StoreError::Damaged(e.to_string()))?;
        sql::put_meta(tx, "header", &json).await
    }

    /// Replaces the header (password change), only if it is still `expected`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another process changed the header first.
    pub async fn replace_header(&self, expected: &Header, header: &Header) -> Result<()> {
        self.replace_header_and_meta(expected, header, None).await
    }

    /// Replaces the header, only if it is still `expected`, and sets one
    /// `meta` value in the same transaction (a password change learnt from
    /// a server: the new header and the new session together, or neither).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another process changed the header first.
    pub async fn replace_header_and_meta(
        &self,
        expected: &Header,
        header: &Header,
        meta: Option<(&str, &[u8])>,
    ) -> Result<()> {
        let mut tx = self.write_replacing_header(expected, header).await?;
        if let Some((key, value)) = meta {
            debug_assert_ne!(key, "header");
            sql::put_meta(&mut tx, key, value).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Writes the MACs of a vault made before local state was authenticated
    /// (the header, the remote record when there is one, and each vault's
    /// sync state in `sync_macs`) and removes the adoption marker, in one
    /// transaction, only if the header is still `expected`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another process changed the header first.
    pub async fn adopt_state_macs(
        &self,
        expected: &Header,
        header: &Header,
        remote: Option<&[u8]>,
        sync_macs: &[(Uuid, Vec<u8>)],
    ) -> Result<()> {
        let mut tx = self.write_replacing_header(expected, header).await?;
        if let Some(value) = remote {
            sqlx::query("UPDATE meta SET value = ? WHERE key = 'remote'")
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        for (vault_id, mac) in sync_macs {
            sqlx::query("UPDATE sync_state SET mac = ? WHERE vault_id = ?")
                .bind(mac)
                .bind(vault_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(ADOPT_MACS_KEY)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A value of the `meta` table.
    ///
    /// # Errors
    /// Database errors.
    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Sets (or with `None` deletes) a value of the `meta` table. `header` is
    /// reserved for the vault header.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_meta(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        debug_assert_ne!(key, "header");
        let mut tx = self.write().await?;
        match value {
            Some(v) => {
                sql::put_meta(&mut tx, key, v).await?;
            }
            None => {
                sqlx::query("DELETE FROM meta WHERE key = ?")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds a vault (one received from a server).
    ///
    /// # Errors
    /// Database errors (a vault with this id exists).
    pub async fn insert_vault(&self, vault: &VaultRecord) -> Result<()> {
        if let Some(dir) = &self.read_only {
            return Err(StoreError::ReadOnly(dir.clone()));
        }
        sqlx::query("INSERT INTO vaults (id, wrapped_key, meta, created_at, key_epoch) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING")
            .bind(vault.id.to_string())
            .bind(&vault.wrapped_key)
            .bind(&vault.meta)
            .bind(vault.created_at)
            .bind(i64::from(vault.key_epoch))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces a vault's sealed metadata (a rename).
    ///
    /// # Errors
    /// Database errors; a read-only vault.
    pub async fn set_vault_meta(&self, id: Uuid, meta: &[u8]) -> Result<()> {
        if let Some(dir) = &self.read_only {
            return Err(StoreError::ReadOnly(dir.clone()));
        }
        sqlx::query("UPDATE vaults SET meta = ? WHERE id = ?")
            .bind(meta)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every vault.
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn vaults(&self) -> Result<Vec<VaultRecord>> {
        let rows = sqlx::query(
            "SELECT id, wrapped_key, meta, created_at, key_epoch FROM vaults ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(VaultRecord {
                    id: parse_id(&id, "bad vault id")?,
                    wrapped_key: r.try_get("wrapped_key")?,
                    meta: r.try_get("meta")?,
                    created_at: r.try_get("created_at")?,
                    key_epoch: u32::try_from(r.try_get::<i64, _>("key_epoch")?).unwrap_or(1),
                })
            })
            .collect()
    }

    /// Test helper: raw access for tampering tests.
    #[doc(hidden)]
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

const WAL_LEFT: &str = "has an unfinished write-ahead log (vault.db-wal) to replay";
const OLD_SCHEMA: &str = "was made by an older openk and must be upgraded";

/// An error opening a read-only database: a damaged file stays damaged; a
/// database SQLite cannot read without writing (an unfinished write-ahead
/// log without its `-shm` file in a read-only directory) is read-only.
fn read_only_open_error(dir: &Path, e: sqlx::Error) -> StoreError {
    match StoreError::from(e) {
        StoreError::Db(sqlx::Error::Database(db))
            if db
                .code()
                .and_then(|c| c.parse::<u32>().ok())
                .map(|c| c & 0xff)
                == Some(14) =>
        {
            StoreError::NeedsWrite {
                dir: dir.to_path_buf(),
                why: WAL_LEFT,
            }
        }
        StoreError::ReadOnly(_) => StoreError::NeedsWrite {
            dir: dir.to_path_buf(),
            why: WAL_LEFT,
        },
        other => other,
    }
}

/// Encodes bytes as standard base64 (for JSON output of ids of keys).
#[must_use]
#[cfg_attr(not(test), allow(dead_code))]
pub fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdf_params::KdfParams;

    fn header() -> Header {
        Header {
            format: HEADER_FORMAT,
            account_id: Uuid::now_v7(),
            device_id: Uuid::now_v7(),
            salt: vec![1; 16],
            kdf: KdfParams::FLOOR,
            wrapped_account_key: vec![2; 57],
            public_x25519: vec![3; 32],
            public_ed25519: vec![4; 32],
            wrapped_private_keys: vec![5; 89],
            created_at: 1,
            mac: None,
        }
    }

    fn record(id: Uuid, vault: Uuid, version: u64) -> ItemRecord {
        ItemRecord {
            id,
            vault_id: vault,
            version,
            wrapped_key: vec![version as u8; 4],
            overview: vec![1],
            details: vec![2],
        }
    }

    /// Makes `store` a vault's store; returns the vault's id.
    async fn initialise(store: &Store) -> Uuid {
        let vault = Uuid::now_v7();
        let record = VaultRecord {
            id: vault,
            wrapped_key: vec![9],
            meta: vec![8],
            created_at: 0,
            key_epoch: 1,
        };
        store.initialise(&header(), &record).await.expect("init");
        vault
    }

    async fn setup() -> (Store, Uuid) {
        let store = Store::memory().await.expect("store");
        let vault = initialise(&store).await;
        (store, vault)
    }

    #[tokio::test]
    async fn header_round_trips() {
        let (store, _) = setup().await;
        let h = store.header().await.expect("read").expect("present");
        assert_eq!(h.salt, vec![1; 16]);
        assert_eq!(h.kdf, KdfParams::FLOOR);
    }

    #[tokio::test]
    async fn updates_keep_history_and_detect_conflicts() {
        let (store, vault) = setup().await;
        let id = Uuid::now_v7();
        store
            .insert_items(&[record(id, vault, 1)])
            .await
            .expect("insert");
        store
            .update_item(&record(id, vault, 2))
            .await
            .expect("update");
        // A second writer that also read version 1 loses.
        assert!(matches!(
            store.update_item(&record(id, vault, 2)).await,
            Err(StoreError::Conflict(_))
        ));
        store
            .update_item(&record(id, vault, 3))
            .await
            .expect("update");
        let history = store.history(id).await.expect("history");
        assert_eq!(
            history.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            store.item(id).await.expect("get").expect("present").version,
            3
        );
        store.purge_item(id, vault, 3, 5).await.expect("purge");
        assert!(store.item(id).await.expect("get").is_none());
        assert!(store.history(id).await.expect("history").is_empty());
    }

    #[tokio::test]
    async fn a_read_only_store_reads_and_refuses_writes_without_touching_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(tmp.path(), true).await.expect("create");
        let vault = Uuid::now_v7();
        store
            .initialise(
                &header(),
                &VaultRecord {
                    id: vault,
                    wrapped_key: vec![9],
                    meta: vec![8],
                    created_at: 0,
                    key_epoch: 1,
                },
            )
            .await
            .expect("init");
        let id = Uuid::now_v7();
        store
            .insert_items(&[record(id, vault, 1)])
            .await
            .expect("insert");
        store.close().await;
        let names = || {
            let mut n: Vec<String> = std::fs::read_dir(tmp.path())
                .expect("dir")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(), [DB_FILE]);
        let ro = Store::open_read_only(tmp.path()).await.expect("open");
        assert!(ro.is_read_only());
        assert!(ro.header().await.expect("header").is_some());
        assert_eq!(ro.item(id).await.expect("item").expect("there").version, 1);
        assert!(matches!(
            ro.update_item(&record(id, vault, 2)).await,
            Err(StoreError::ReadOnly(_))
        ));
        assert!(matches!(
            ro.set_meta("k", Some(b"v")).await,
            Err(StoreError::ReadOnly(_))
        ));
        ro.close().await;
        assert_eq!(names(), [DB_FILE], "no -wal or -shm appeared");
    }

    // A vault left with an unfinished write-ahead log (a crash, or a copy
    // taken while a writer ran): read-only, the log is read too, not ignored
    // as `immutable` would.
    #[tokio::test]
    async fn a_read_only_store_reads_an_unfinished_write_ahead_log() {
        let live = tempfile::tempdir().expect("tmp");
        let (store, vault) = {
            let store = Store::open(live.path(), true).await.expect("create");
            let vault = initialise(&store).await;
            (store, vault)
        };
        let id = Uuid::now_v7();
        store
            .insert_items(&[record(id, vault, 1)])
            .await
            .expect("insert");
        // Copy while the writer is open: the item is only in the -wal file.
        let copy = tempfile::tempdir().expect("tmp");
        for name in [DB_FILE, "vault.db-wal", "vault.db-shm"] {
            std::fs::copy(live.path().join(name), copy.path().join(name)).expect("copy");
        }
        store.close().await;
        assert!(
            std::fs::metadata(copy.path().join("vault.db-wal"))
                .expect("wal")
                .len()
                > 0
        );
        let ro = Store::open_read_only(copy.path()).await.expect("open");
        assert_eq!(
            ro.item(id)
                .await
                .expect("item")
                .expect("in the log")
                .version,
            1
        );
        ro.close().await;
    }

    #[tokio::test]
    async fn a_batch_is_all_or_nothing() {
        let (store, vault) = setup().await;
        let id = Uuid::now_v7();
        let dup = [record(id, vault, 1), record(id, vault, 1)];
        assert!(store.insert_items(&dup).await.is_err());
        assert!(
            futures::StreamExt::collect::<Vec<_>>(store.overview_stream())
                .await
                .is_empty()
        );
    }
}
