//! A property test of one shared vault: two accounts with two devices
//! each edit, add, trash and sync in random interleavings (the owner may
//! rotate the key, the other account may be promoted and demoted between);
//! in the end all four devices show the same vault, no version is refused,
//! and no value anyone saved is lost.

use std::collections::BTreeMap;

use proptest::prelude::*;
use uuid::Uuid;

use super::members::Role;
use super::model::{Field, FieldKind, label};
use super::shared_vaults_tests::{World, registered};
use super::sync::SyncOptions;
use super::sync_tests::{all_values, value};
use super::test_fixtures::login;
use super::test_server::TestServer;
use super::{ItemPatch, Session};

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Edit {
        device: usize,
        item: usize,
    },
    Trash {
        device: usize,
        item: usize,
    },
    Sync(usize),
    /// The owner's first device rotates the vault key.
    Rotate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize).prop_map(Op::Add),
        3 => (0..4usize, 0..5usize).prop_map(|(device, item)| Op::Edit { device, item }),
        1 => (0..4usize, 0..5usize).prop_map(|(device, item)| Op::Trash { device, item }),
        4 => (0..4usize).prop_map(Op::Sync),
        1 => Just(Op::Rotate),
    ]
}

/// The vault's items on one device: id → (name, password, trashed).
async fn team_state(v: &mut Session, team: Uuid) -> BTreeMap<Uuid, (String, String, bool)> {
    let ids: Vec<Uuid> = v
        .entries()
        .await
        .expect("entries")
        .0
        .iter()
        .filter(|e| e.r.vault_id == team)
        .map(|e| e.r.id)
        .collect();
    let mut out = BTreeMap::new();
    for id in ids {
        let item = v.item(id).await.expect("item");
        out.insert(
            id,
            (
                item.overview.name.clone(),
                value(&item, label::PASSWORD),
                item.overview.trashed_at.is_some(),
            ),
        );
    }
    out
}

async fn team_ids(v: &mut Session, team: Uuid) -> Vec<(Uuid, bool)> {
    v.entries()
        .await
        .expect("entries")
        .0
        .iter()
        .filter(|e| e.r.vault_id == team)
        .map(|e| (e.r.id, e.overview.trashed_at.is_some()))
        .collect()
}

async fn sync_checked(v: &mut Session) {
    let r = v.sync(&SyncOptions::default()).await.expect("sync");
    for vault in &r.vaults {
        assert!(vault.refused.is_empty(), "refused: {:?}", vault.refused);
    }
}

async fn run(ops: Vec<Op>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = TestServer::start("memory").await;
    let mut ana = registered(tmp.path(), &server, "ana@example.org").await;
    let mut ben = registered(tmp.path(), &server, "ben@example.org").await;
    let team = ana.create_vault("Team").await.expect("create");
    ana.add_to(team, login("seed", "u", "p0"))
        .await
        .expect("add");
    sync_checked(&mut ana).await;
    ana.invite(team, "ben@example.org", Role::Editor, None)
        .await
        .expect("invite");
    ben.accept(team).await.expect("accept");
    let w = World {
        tmp,
        db: std::path::PathBuf::new(),
        server,
        ana,
        ben,
    };
    let ana2 = w.device(&w.ana, "ana-2").await;
    let ben2 = w.device(&w.ben, "ben-2").await;
    let World { ana, ben, .. } = w;
    let mut ds = [ana, ana2, ben, ben2];
    for d in ds.iter_mut() {
        sync_checked(d).await;
    }
    // Every value a device saved: (device, item, value).
    let mut saved: Vec<(usize, Uuid, String)> = Vec::new();
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Add(d) => {
                let v = format!("add-{n}");
                let it = ds[d]
                    .add_to(team, login(&format!("item{n}"), "u", &v))
                    .await
                    .expect("add");
                saved.push((d, it.r.id, v));
            }
            Op::Edit { device, item } => {
                let ids = team_ids(&mut ds[device], team).await;
                if let Some(&(id, _)) = ids.get(item % ids.len().max(1)) {
                    let v = format!("edit-{n}-on-{device}");
                    let patch = ItemPatch {
                        set_fields: vec![Field::new(label::PASSWORD, &v, FieldKind::Secret)],
                        ..ItemPatch::default()
                    };
                    ds[device].update(id, &patch).await.expect("edit");
                    saved.push((device, id, v));
                }
            }
            Op::Trash { device, item } => {
                let ids = team_ids(&mut ds[device], team).await;
                if let Some(&(id, false)) = ids.get(item % ids.len().max(1)) {
                    ds[device].trash(id).await.expect("trash");
                }
            }
            Op::Sync(d) => sync_checked(&mut ds[d]).await,
            Op::Rotate => ds[0].rotate_vault_key(team).await.expect("rotate"),
        }
    }
    for _ in 0..3 {
        for d in ds.iter_mut() {
            sync_checked(d).await;
        }
    }
    let first = team_state(&mut ds[0], team).await;
    for (i, d) in ds.iter_mut().enumerate().skip(1) {
        assert_eq!(team_state(d, team).await, first, "device {i} converges");
    }
    for (d, id, v) in &saved {
        assert!(
            all_values(&ds[*d], *id, label::PASSWORD).await.contains(v),
            "value {v:?} of item {id} saved on device {d} is lost there"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn two_accounts_on_two_devices_each_converge_on_a_shared_vault(
        ops in prop::collection::vec(op(), 1..24)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run(ops));
    }
}
