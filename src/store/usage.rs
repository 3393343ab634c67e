//! Item usage rows (issue 12): this device's sealed use events, each
//! device's sealed counters and the server cursor. The store keeps the
//! blobs as it is given them; the engine seals, opens and merges them.

use sqlx::Row;
use uuid::Uuid;

use super::{Result, Store, parse_id, sql};

/// `meta` key of the highest server revision of usage counters taken in.
const CURSOR_KEY: &str = "usage_cursor";

/// One device's counters as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub device_id: Uuid,
    /// Sealed by the engine.
    pub sealed: Vec<u8>,
    /// The counters' generation (this device's: its number of folds).
    pub generation: u64,
    /// The server's revision of this upload (other devices'; 0 for this one's).
    pub revision: i64,
    /// This device's: the server holds exactly this generation.
    pub uploaded: bool,
}

/// Every device's counters and this device's events not folded in yet,
/// read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageState {
    pub counters: Vec<UsageRow>,
    /// `(seq, sealed event)`, oldest first.
    pub events: Vec<(i64, Vec<u8>)>,
}

fn generation_param(g: u64) -> i64 {
    i64::try_from(g).unwrap_or(i64::MAX)
}

impl Store {
    /// Adds one sealed use event; returns its sequence number (ever
    /// increasing, never reused).
    ///
    /// The commit does not wait for the disk (`synchronous = NORMAL` for
    /// this one transaction; the connection is put back to `FULL` after):
    /// a use is not worth an fsync on every `openk get`. A power cut right
    /// after it may lose the use; WAL mode keeps the database whole either
    /// way, and the checkpoint when the vault closes writes it through.
    ///
    /// # Errors
    /// [`super::StoreError::ReadOnly`]; database errors.
    pub async fn add_usage_event(&self, sealed: &[u8]) -> Result<i64> {
        if let Some(dir) = &self.read_only {
            return Err(super::StoreError::ReadOnly(dir.clone()));
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        let added = async {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let inserted = sqlx::query("INSERT INTO usage_events (sealed) VALUES (?)")
                .bind(sealed)
                .execute(&mut *conn)
                .await;
            match inserted {
                Ok(done) => {
                    sqlx::query("COMMIT").execute(&mut *conn).await?;
                    Ok(done.last_insert_rowid())
                }
                Err(e) => {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    Err(e)
                }
            }
        }
        .await;
        if sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
            .is_err()
        {
            // Never hand out a connection that commits without syncing.
            conn.close_on_drop();
        }
        Ok(added?)
    }

    /// Every device's counters and the events not folded in yet, from one
    /// snapshot (a fold committed in between cannot make a use count twice
    /// or not at all).
    ///
    /// # Errors
    /// Database errors and damaged ids.
    pub async fn usage_state(&self) -> Result<UsageState> {
        let mut tx = self.pool.begin().await?;
        let counters = sqlx::query(
            "SELECT device_id, sealed, generation, revision, uploaded FROM usage_counters",
        )
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(UsageRow {
                device_id: parse_id(&r.try_get::<String, _>("device_id")?, "bad device id")?,
                sealed: r.try_get("sealed")?,
                generation: u64::try_from(r.try_get::<i64, _>("generation")?).unwrap_or(0),
                revision: r.try_get("revision")?,
                uploaded: r.try_get::<i64, _>("uploaded")? != 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let events = sqlx::query("SELECT seq, sealed FROM usage_events ORDER BY seq")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("sealed")?)))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        Ok(UsageState { counters, events })
    }

    /// Replaces this device's counters with `row` (events up to `through`
    /// folded in; they are deleted in the same transaction), if its stored
    /// generation is still `expected` (`None`: it has none yet). `false`
    /// when another process folded first (nothing changed).
    ///
    /// # Errors
    /// [`super::StoreError::ReadOnly`]; database errors.
    pub async fn fold_usage(
        &self,
        expected: Option<u64>,
        row: &UsageRow,
        through: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let device = row.device_id.to_string();
        let current: Option<i64> =
            sqlx::query_scalar("SELECT generation FROM usage_counters WHERE device_id = ?")
                .bind(&device)
                .fetch_optional(&mut *tx)
                .await?;
        if current != expected.map(generation_param) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO usage_counters (device_id, sealed, generation, revision, uploaded) \
             VALUES (?, ?, ?, 0, 0) ON CONFLICT(device_id) DO UPDATE SET \
             sealed = excluded.sealed, generation = excluded.generation, uploaded = 0",
        )
        .bind(&device)
        .bind(&row.sealed)
        .bind(generation_param(row.generation))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM usage_events WHERE seq <= ?")
            .bind(through)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Notes that the server holds this device's counters of `generation`
    /// (nothing when they moved on meanwhile).
    ///
    /// # Errors
    /// Database errors.
    pub async fn usage_uploaded(&self, device_id: Uuid, generation: u64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE usage_counters SET uploaded = 1 WHERE device_id = ? AND generation = ?",
        )
        .bind(device_id.to_string())
        .bind(generation_param(generation))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The highest server revision of usage counters taken in (0: none).
    ///
    /// # Errors
    /// Database errors.
    pub async fn usage_cursor(&self) -> Result<i64> {
        Ok(self
            .meta(CURSOR_KEY)
            .await?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .unwrap_or(0))
    }

    /// Stores other devices' counters as the server gave them (replacing
    /// each device's older ones) and the cursor they bring this device to,
    /// in one transaction.
    ///
    /// # Errors
    /// Database errors.
    pub async fn take_usage(&self, rows: &[UsageRow], cursor: i64) -> Result<()> {
        let mut tx = self.write().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO usage_counters (device_id, sealed, generation, revision, uploaded) \
                 VALUES (?, ?, ?, ?, 1) ON CONFLICT(device_id) DO UPDATE SET \
                 sealed = excluded.sealed, generation = excluded.generation, \
                 revision = excluded.revision",
            )
            .bind(row.device_id.to_string())
            .bind(&row.sealed)
            .bind(generation_param(row.generation))
            .bind(row.revision)
            .execute(&mut *tx)
            .await?;
        }
        sql::put_meta(&mut tx, CURSOR_KEY, cursor.to_string().as_bytes()).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(device: Uuid, generation: u64, sealed: &[u8]) -> UsageRow {
        UsageRow {
            device_id: device,
            sealed: sealed.to_vec(),
            generation,
            revision: 0,
            uploaded: false,
        }
    }

    #[tokio::test]
    async fn folding_replaces_the_counters_and_drops_the_events_it_took() {
        let store = Store::memory().await.expect("store");
        let me = Uuid::now_v7();
        assert_eq!(
            store.usage_state().await.expect("state"),
            UsageState::default()
        );
        let first = store.add_usage_event(b"e1").await.expect("event");
        let second = store.add_usage_event(b"e2").await.expect("event");
        assert!(second > first);
        assert!(
            store
                .fold_usage(None, &row(me, 1, b"c1"), first)
                .await
                .expect("fold")
        );
        let state = store.usage_state().await.expect("state");
        assert_eq!(state.counters, [row(me, 1, b"c1")]);
        assert_eq!(state.events, [(second, b"e2".to_vec())]);
        // A fold on a stale generation changes nothing.
        assert!(
            !store
                .fold_usage(None, &row(me, 1, b"x"), second)
                .await
                .expect("fold")
        );
        assert!(
            !store
                .fold_usage(Some(0), &row(me, 2, b"x"), second)
                .await
                .expect("fold")
        );
        assert_eq!(store.usage_state().await.expect("state").events.len(), 1);
        // Uploaded only for the generation that was sent.
        store.usage_uploaded(me, 7).await.expect("noted");
        assert!(!store.usage_state().await.expect("state").counters[0].uploaded);
        store.usage_uploaded(me, 1).await.expect("noted");
        assert!(store.usage_state().await.expect("state").counters[0].uploaded);
        assert!(
            store
                .fold_usage(Some(1), &row(me, 2, b"c2"), second)
                .await
                .expect("fold")
        );
        let state = store.usage_state().await.expect("state");
        assert!(state.events.is_empty());
        assert!(
            !state.counters[0].uploaded,
            "a new generation waits for its upload"
        );
        // Sequence numbers are never reused.
        assert!(store.add_usage_event(b"e3").await.expect("event") > second);
    }

    #[tokio::test]
    async fn a_use_leaves_the_connection_syncing_every_commit() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(tmp.path(), true).await.expect("store");
        store.add_usage_event(b"e").await.expect("event");
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .expect("pragma");
        assert_eq!(level, 2, "FULL again after the use");
    }

    #[tokio::test]
    async fn other_devices_counters_and_the_cursor_are_taken_together() {
        let store = Store::memory().await.expect("store");
        assert_eq!(store.usage_cursor().await.expect("cursor"), 0);
        let other = Uuid::now_v7();
        let mut taken = row(other, 3, b"o3");
        taken.revision = 9;
        store.take_usage(&[taken.clone()], 9).await.expect("take");
        assert_eq!(store.usage_cursor().await.expect("cursor"), 9);
        let mut newer = row(other, 4, b"o4");
        newer.revision = 12;
        store.take_usage(&[newer], 12).await.expect("take");
        let state = store.usage_state().await.expect("state");
        assert_eq!(state.counters.len(), 1);
        assert_eq!(
            (state.counters[0].generation, state.counters[0].revision),
            (4, 12)
        );
        assert_eq!(store.usage_cursor().await.expect("cursor"), 12);
    }
}
