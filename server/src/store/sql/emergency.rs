//! Emergency access grants ([`EmergencyStore`]).

use super::*;
use crate::store::Account;
use crate::store::emergency::{EmergencyStore, Grant, GrantState, Release};

const COLUMNS: &str = "id, owner_id, contact_id, role, wait_secs, sealed, signature, \
                       contact_x25519, contact_ed25519, state, requested_at, created_at";

/// Implements [`EmergencyStore`] for one SQL backend (see the parent module).
macro_rules! sql_emergency {
    ($store:ident, $db:ty) => {
        impl $store {
            fn grant_from(row: &<$db as sqlx::Database>::Row) -> StoreResult<Grant> {
    let id = |name: &str| -> StoreResult<Uuid> {
        let s: String = row.try_get(name)?;
        Uuid::parse_str(&s).map_err(|_| damaged(format!("{name} = {s:?}")))
    };
    let state: String = row.try_get("state")?;
    Ok(Grant {
        id: id("id")?,
        owner: id("owner_id")?,
        contact: id("contact_id")?,
        role: row.try_get("role")?,
        wait_secs: row.try_get("wait_secs")?,
        sealed: row.try_get("sealed")?,
        signature: row.try_get("signature")?,
        contact_x25519: row.try_get("contact_x25519")?,
        contact_ed25519: row.try_get("contact_ed25519")?,
        state: GrantState::parse(&state).ok_or_else(|| damaged(format!("state = {state:?}")))?,
        requested_at: row.try_get("requested_at")?,
        created_at: row.try_get("created_at")?,
    })
}
        }

        #[async_trait]
        impl EmergencyStore for $store {
            async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO emergency_grants ({COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(g.id.to_string())
                .bind(g.owner.to_string())
                .bind(g.contact.to_string())
                .bind(&g.role)
                .bind(g.wait_secs)
                .bind(g.sealed.as_slice())
                .bind(g.signature.as_slice())
                .bind(g.contact_x25519.as_slice())
                .bind(g.contact_ed25519.as_slice())
                .bind(g.state.as_str())
                .bind(g.requested_at)
                .bind(g.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn grant(&self, id: Uuid) -> StoreResult<Option<Grant>> {
                sqlx::query(&format!("SELECT {COLUMNS} FROM emergency_grants WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::grant_from)
                    .transpose()
            }

            async fn grants_of(&self, account: Uuid) -> StoreResult<(Vec<Grant>, Vec<Grant>)> {
                let a = account.to_string();
                let given = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM emergency_grants WHERE owner_id = $1 ORDER BY created_at, id"
                ))
                .bind(&a)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::grant_from)
                .collect::<StoreResult<Vec<_>>>()?;
                let held = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM emergency_grants WHERE contact_id = $1 ORDER BY created_at, id"
                ))
                .bind(&a)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(Self::grant_from)
                .collect::<StoreResult<Vec<_>>>()?;
                Ok((given, held))
            }

            async fn request_grant(&self, id: Uuid, contact: Uuid, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE emergency_grants SET state = 'requested', requested_at = $3 \
                     WHERE id = $1 AND contact_id = $2 AND state = 'granted'",
                )
                .bind(id.to_string())
                .bind(contact.to_string())
                .bind(now)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() > 0 {
                    return Ok(true);
                }
                let held = sqlx::query(
                    "SELECT 1 AS one FROM emergency_grants WHERE id = $1 AND contact_id = $2",
                )
                .bind(id.to_string())
                .bind(contact.to_string())
                .fetch_optional(&self.pool)
                .await?;
                Ok(held.is_some())
            }

            async fn deny_grant(&self, id: Uuid, owner: Uuid) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE emergency_grants SET state = 'granted', requested_at = NULL \
                     WHERE id = $1 AND owner_id = $2 AND state = 'requested'",
                )
                .bind(id.to_string())
                .bind(owner.to_string())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_grant(&self, id: Uuid, owner: Uuid) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM emergency_grants WHERE id = $1 AND owner_id = $2")
                    .bind(id.to_string())
                    .bind(owner.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_grant(&self, id: Uuid, contact: Uuid, now: i64) -> StoreResult<Release> {
                // One statement: a deny that lands first leaves nothing to release.
                let released = sqlx::query(&format!(
                    "UPDATE emergency_grants SET state = 'released' \
                     WHERE id = $1 AND contact_id = $2 AND state IN ('requested', 'released') \
                     AND requested_at + wait_secs * 1000 <= $3 RETURNING {COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(contact.to_string())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = released {
                    return Ok(Release::Released(Self::grant_from(&row)?));
                }
                let Some(g) = self.grant(id).await?.filter(|g| g.contact == contact) else {
                    return Ok(Release::NotFound);
                };
                Ok(match g.release_at() {
                    Some(at) if g.state != GrantState::Granted => Release::Waiting((at - now).max(1)),
                    _ => Release::NotRequested,
                })
            }

            async fn take_over(
                &self,
                owner: &Account,
                grant: Uuid,
                contact: Uuid,
            ) -> StoreResult<Vec<Vec<u8>>> {
                let id = owner.id.to_string();
                let mut tx = self.begin_write().await?;
                let used = sqlx::query(
                    "DELETE FROM emergency_grants WHERE id = $1 AND owner_id = $2 \
                     AND contact_id = $3 AND state = 'released' AND role = 'takeover'",
                )
                .bind(grant.to_string())
                .bind(&id)
                .bind(contact.to_string())
                .execute(&mut *tx)
                .await?;
                if used.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                Self::update_keys_in(&mut *tx, owner).await?;
                let ended =
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1 RETURNING access_hash")
                        .bind(&id)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<Vec<u8>, _>("access_hash"))
                        .collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok(ended)
            }
        }
    };
}

sql_emergency!(SqliteStore, sqlx::Sqlite);
sql_emergency!(PgStore, sqlx::Postgres);
