//! Bulk operations and batches in the engine: exactly the matching items
//! change, in one transaction; a conflict or a bad line leaves everything
//! as it was.

use super::batch::{BatchLine, BatchOp};
use super::bulk::BulkOp;
use super::search::Query;
use super::test_fixtures::{login, session};
use super::{Error, ItemPatch, Session};

async fn versions(s: &mut Session) -> Vec<(String, u64, Vec<String>)> {
    let (entries, _) = s.entries().await.expect("entries");
    let mut v: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.overview.name.clone(),
                e.r.version,
                e.overview.tags.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn three(s: &mut Session) {
    let mut a = login("a", "u", "p");
    a.tags = vec!["old".into()];
    a.folder = Some("Dev".into());
    let mut b = login("b", "u", "p");
    b.folder = Some("Dev".into());
    let c = login("c", "u", "p");
    s.add_many(vec![a, b, c]).await.expect("add");
}

#[tokio::test]
async fn bulk_changes_the_matches_only_and_skips_what_needs_no_change() {
    let (_tmp, mut s) = session().await;
    three(&mut s).await;
    let q = Query::parse("folder:Dev").expect("query");
    let dry = s
        .bulk(&q, "folder:Dev", &BulkOp::AddTags(vec!["old".into()]), true)
        .await
        .expect("dry run");
    assert_eq!(dry.changed.len(), 1, "a has the tag already");
    assert_eq!(dry.unchanged.len(), 1);
    assert_eq!(versions(&mut s).await[1].1, 1, "a dry run writes nothing");
    s.bulk(
        &q,
        "folder:Dev",
        &BulkOp::AddTags(vec!["old".into()]),
        false,
    )
    .await
    .expect("bulk");
    let v = versions(&mut s).await;
    assert_eq!(v[0], ("a".into(), 1, vec!["old".into()]));
    assert_eq!(v[1], ("b".into(), 2, vec!["old".into()]));
    assert_eq!(v[2], ("c".into(), 1, vec![]));
    let none = Query::parse("folder:Nope").expect("query");
    assert!(matches!(
        s.bulk(&none, "folder:Nope", &BulkOp::Trash, false).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_conflict_in_a_bulk_write_leaves_every_item_as_it_was() {
    let (_tmp, mut s) = session().await;
    three(&mut s).await;
    let ids: Vec<uuid::Uuid> = {
        let (entries, _) = s.entries().await.expect("entries");
        entries.iter().map(|e| e.r.id).collect()
    };
    // Another process saves item c between the read and the write: the
    // store refuses the whole batch.
    let mut other = s.handle().await.expect("handle");
    let mut batch = crate::store::ItemBatch::default();
    for id in &ids {
        let rec = s.store.item(*id).await.expect("read").expect("item");
        batch.updates.push(crate::store::ItemRecord {
            version: rec.version + 1,
            ..rec
        });
    }
    let c = ids[2];
    let patch = ItemPatch {
        tags: Some(vec!["x".into()]),
        ..ItemPatch::default()
    };
    other.update(c, &patch).await.expect("other save");
    let err = s.store.write_items(&batch).await.expect_err("conflict");
    assert!(matches!(err, crate::store::StoreError::Conflict(id) if id == c));
    for id in &ids[..2] {
        let rec = s.store.item(*id).await.expect("read").expect("item");
        assert_eq!(rec.version, 1, "nothing of the batch was written");
    }
}

#[tokio::test]
async fn a_batch_sees_its_earlier_lines_and_a_bad_line_writes_nothing() {
    let (_tmp, mut s) = session().await;
    three(&mut s).await;
    let line = |line, op| BatchLine { line, op };
    let ok = s
        .apply_batch(
            vec![
                line(
                    1,
                    BatchOp::Add {
                        vault: None,
                        draft: login("d", "u", "p"),
                    },
                ),
                line(
                    2,
                    BatchOp::Edit {
                        item: "d".into(),
                        vault: None,
                        patch: ItemPatch {
                            name: Some("e".into()),
                            ..ItemPatch::default()
                        },
                    },
                ),
                line(
                    3,
                    BatchOp::Trash {
                        item: "e".into(),
                        vault: None,
                    },
                ),
            ],
            false,
        )
        .await
        .expect("batch");
    assert_eq!(ok.len(), 3);
    let item = s.resolve("e", true).await.expect("e");
    assert_eq!(item.version, 1, "added, renamed and trashed: one write");
    let before = versions(&mut s).await;
    let err = s
        .apply_batch(
            vec![
                line(
                    1,
                    BatchOp::Trash {
                        item: "a".into(),
                        vault: None,
                    },
                ),
                line(
                    2,
                    BatchOp::Add {
                        vault: None,
                        draft: login("B", "u", "p"),
                    },
                ),
            ],
            false,
        )
        .await
        .expect_err("b is taken");
    assert!(matches!(err, Error::BatchLine { line: 2, .. }), "{err}");
    assert_eq!(versions(&mut s).await, before);
}
