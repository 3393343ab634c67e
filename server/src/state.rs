//! Shared application state handed to every handler.

use std::sync::Arc;

use crate::cache::Cache;
use crate::events::Bus;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn Cache>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Vault change events (across nodes when Redis is configured).
    pub events: Arc<Bus>,
    /// Server secret for made-up prelogin answers (from the store).
    pub prelogin_secret: Arc<Vec<u8>>,
}

/// Unix milliseconds now.
#[must_use]
pub fn now_millis() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 from Unix milliseconds.
#[must_use]
pub fn rfc3339(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
