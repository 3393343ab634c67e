//! `openk sync --verify`: the server's whole state against its manifest
//! and against this device.

use std::collections::HashMap;

use uuid::Uuid;

use super::super::Session;
use super::super::error::Result;
use super::{SyncOptions, VerifyReport, open_manifest};
use crate::crypto::Key;
use crate::store::{ItemSync, SyncOp};
use crate::sync::lines::{digest_of, encode_lines, line_of_record};
use crate::sync::manifest::Line;

impl Session {
    /// Downloads the whole server state of a vault and compares it with
    /// its manifest and with what this device knows. Items the server lost
    /// are marked to be pushed again.
    pub(super) async fn verify_vault(&mut self, vault_id: Uuid, vk: &Key) -> Result<VerifyReport> {
        let pulled = self.pull_all(vault_id, 0, &SyncOptions::default()).await?;
        let manifest = open_manifest(vk, vault_id, pulled.manifest.as_deref())?;
        let server: HashMap<Uuid, Line> = pulled
            .records
            .iter()
            .map(|r| (r.item_id, line_of_record(r)))
            .collect();
        let syncs = self.syncs_by_item(vault_id).await?;
        let mut local = self.load_lines(vault_id).await?;
        let (items, digest) = digest_of(&server);
        let server_matches_manifest = manifest
            .as_ref()
            .is_some_and(|m| m.items == items && m.digest == digest && m.head == pulled.head)
            || (manifest.is_none() && pulled.head == 0);
        let mut report = VerifyReport {
            manifest_counter: manifest.as_ref().map_or(0, |m| m.counter),
            server_items: items,
            local_items: local.len() as u64,
            server_matches_manifest,
            ..VerifyReport::default()
        };
        let mut repair = Vec::new();
        let mut gone = Vec::new();
        for (id, l) in &local {
            match server.get(id) {
                None => {
                    report.missing_on_server.push(*id);
                    if !l.deleted
                        && let Some(s) = syncs.get(id)
                    {
                        gone.push(*id);
                        repair.push(SyncOp::Server {
                            item: ItemSync {
                                revision: 0,
                                version: 0,
                                hash: None,
                                deleted: false,
                                dirty: true,
                                ..s.clone()
                            },
                            dirty: Some(true),
                        });
                    }
                }
                Some(sl) if sl != l => report.differing.push(*id),
                Some(_) => {}
            }
        }
        for id in server.keys().filter(|id| !local.contains_key(id)) {
            report.unknown_here.push(*id);
        }
        report.missing_on_server.sort_unstable();
        report.differing.sort_unstable();
        report.unknown_here.sort_unstable();
        report.repushed = repair.len() as u64;
        report.matches = server_matches_manifest
            && report.missing_on_server.is_empty()
            && report.differing.is_empty()
            && report.unknown_here.is_empty();
        if !repair.is_empty() {
            for id in &gone {
                local.remove(id);
            }
            repair.push(SyncOp::Lines {
                vault_id,
                blob: encode_lines(&local),
            });
            self.store.apply_sync(&repair, &self.sync_sealer()).await?;
        }
        tracing::info!(vault = %vault_id, matches = report.matches, "verified against the server");
        Ok(report)
    }
}
