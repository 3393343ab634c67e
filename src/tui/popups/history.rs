//! The history popup: an item's versions, compared with the current one.

use uuid::Uuid;

use crate::engine::model::Item;
use crate::tui::worker::{Job, To};

/// The history popup's id.
pub const TO: To = To("history");

/// An old version, to compare with the current one.
#[derive(Debug)]
pub struct OldVersion(pub Box<Item>);

/// Reads one old version of an item.
#[must_use]
pub fn version(id: Uuid, version: u64) -> Job {
    Job::new(TO, "version", move |v| {
        Box::pin(async move { Ok(OldVersion(Box::new(v.item_version(id, version).await?))) })
    })
}
