//! The search pane: a query box over the whole vault and its hits.

use uuid::Uuid;

use crate::engine::search::Query;
use crate::tui::worker::{Job, To};

/// The search pane's id.
pub const TO: To = To("search");

/// Results a search returns: a few screenfuls.
const SEARCH_LIMIT: usize = 100;

/// A search's answer.
#[derive(Debug)]
pub struct Searched {
    pub seq: u64,
    pub hits: Vec<Uuid>,
    pub total: usize,
    pub error: Option<String>,
}

/// Searches (after what other writers saved); queued searches collapse to
/// the newest.
#[must_use]
pub fn search(seq: u64, text: String) -> Job {
    Job::new(TO, "search", move |v| {
        Box::pin(async move {
            match Query::parse(&text) {
                Ok(q) => {
                    let found = v.search(&q, SEARCH_LIMIT).await?;
                    let (entries, _) = v.entries().await?;
                    let hits = found
                        .hits
                        .iter()
                        .filter_map(|h| entries.get(h.index).map(|e| e.r.id))
                        .collect();
                    Ok(Searched {
                        seq,
                        hits,
                        total: found.total,
                        error: None,
                    })
                }
                Err(e) => Ok(Searched {
                    seq,
                    hits: Vec::new(),
                    total: 0,
                    error: Some(e),
                }),
            }
        })
    })
    .fresh()
    .latest_only()
}
