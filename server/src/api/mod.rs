//! HTTP API: wire types and handlers, one module per resource.

pub mod accounts;
pub mod approvals;
pub mod audit;
pub mod devices;
pub mod emergency;
pub mod events;
pub mod extract;
pub mod health;
pub mod history;
pub mod identities;
pub mod members;
pub mod recovery;
pub mod shares;
pub mod types;
pub mod usage;
pub mod validate;
pub mod vaults;
