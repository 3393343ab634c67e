//! A new account key on this device: every value sealed or MACed with the
//! old one replaced in one transaction (the engine re-seals them; the store
//! only writes).

use uuid::Uuid;

use super::vaults::{ActivityKey, put_activity};
use super::{Header, Result, Store, sql};

/// What a local rekey writes besides the header.
#[derive(Debug, Default)]
pub struct Rekey {
    /// (vault, key wrapped under the new account key).
    pub vaults: Vec<(Uuid, Vec<u8>)>,
    /// `meta` values re-sealed (key, value).
    pub meta: Vec<(String, Vec<u8>)>,
    /// Activity rows re-sealed (vault, row key, sealed).
    pub activity: Vec<(Uuid, ActivityKey, Vec<u8>)>,
    /// Usage events re-sealed (seq, sealed).
    pub usage_events: Vec<(i64, Vec<u8>)>,
    /// Usage counters re-sealed (device, sealed); this device's must be
    /// uploaded again.
    pub usage_counters: Vec<(Uuid, Vec<u8>)>,
    /// Sync-state MACs made anew (vault, mac).
    pub sync_macs: Vec<(Uuid, Vec<u8>)>,
}

impl Store {
    /// Writes a rekey with `header`, only if the header is still
    /// `expected`. All or nothing.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] when another process changed the
    /// header first; database errors.
    pub async fn rekey(&self, expected: &Header, header: &Header, r: &Rekey) -> Result<()> {
        let mut tx = self.write_replacing_header(expected, header).await?;
        for (id, wrapped) in &r.vaults {
            sqlx::query("UPDATE vaults SET wrapped_key = ? WHERE id = ?")
                .bind(wrapped)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for (key, value) in &r.meta {
            sql::put_meta(&mut tx, key, value).await?;
        }
        for (vault, key, sealed) in &r.activity {
            put_activity(&mut tx, *key, *vault, sealed).await?;
        }
        for (seq, sealed) in &r.usage_events {
            sqlx::query("UPDATE usage_events SET sealed = ? WHERE seq = ?")
                .bind(sealed)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        for (device, sealed) in &r.usage_counters {
            sqlx::query("UPDATE usage_counters SET sealed = ?, uploaded = 0 WHERE device_id = ?")
                .bind(sealed)
                .bind(device.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for (vault, mac) in &r.sync_macs {
            sqlx::query("UPDATE sync_state SET mac = ? WHERE vault_id = ?")
                .bind(mac)
                .bind(vault.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
