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

pub use crate::time::{now_millis, rfc3339};
