//! `openk config`: the effective configuration, every key with its value,
//! its default and where the value came from.

use serde_json::json;

use super::output::{print, print_json, table};
use super::{CliResult, Global, vault_dir};
use crate::config::{Config, FileFrom, KEYS};

/// `openk config` (the file was already read, and checked, by `run`).
///
/// # Errors
/// Only a failed write to stdout.
pub fn show(g: &Global) -> CliResult {
    let loaded = &g.config;
    let defaults = Config::default();
    let from = match loaded.from {
        FileFrom::Env => "OPENK_CONFIG",
        FileFrom::DefaultLocation => "default location",
    };
    let vault = vault_dir(g).ok();
    let vault_source = g.home_from.unwrap_or("default");
    if g.json {
        let keys: Vec<serde_json::Value> = KEYS
            .iter()
            .map(|k| {
                json!({
                    "key": k,
                    "value": loaded.get(k).json(),
                    "default": defaults.get(k).json(),
                    "source": loaded.source(k),
                })
            })
            .collect();
        return print_json(&json!({
            "file": {
                "path": loaded.path,
                "from": from,
                "exists": loaded.exists,
            },
            "home": { "path": vault, "source": vault_source },
            "keys": keys,
        }));
    }
    let file = match &loaded.path {
        Some(p) if loaded.exists => format!("{} ({from})", p.display()),
        Some(p) => format!(
            "{} ({from}; not present, so every value is the default)",
            p.display()
        ),
        None => "none (no home directory; every value is the default)".to_owned(),
    };
    let rows: Vec<Vec<String>> = KEYS
        .iter()
        .map(|k| {
            vec![
                (*k).to_owned(),
                loaded.get(k).display(),
                defaults.get(k).display(),
                loaded.source(k),
            ]
        })
        .collect();
    print(&format!(
        "config file: {file}\nhome:        {} ({vault_source})\n\n{}",
        vault.map_or_else(|| "(none)".to_owned(), |v| v.display().to_string()),
        table(&["KEY", "VALUE", "DEFAULT", "SOURCE"], &rows)
    ))
}
