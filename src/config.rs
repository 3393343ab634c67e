//! The user config: `$OPENK_CONFIG`, else `config.toml` in the platform
//! config dir (`~/.config/openk/config.toml` on Linux). A missing file means
//! the defaults; unknown keys and bad values are errors naming the file, so a
//! typo is never silently ignored. Every key is documented in docs/cli.md.

use std::path::PathBuf;

use serde::Deserialize;

/// Everything the config file can set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Sync right after every write on a logged-in vault.
    pub auto_sync: bool,
    pub clipboard: ClipboardConfig,
    pub agent: AgentConfig,
    pub tui: TuiConfig,
}

/// `[clipboard]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipboardConfig {
    /// Seconds before a copied secret is cleared (if still there); 0 never.
    pub clear_after_secs: u64,
}

/// `[agent]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Seconds without a request before the agent locks itself.
    pub idle_timeout_secs: u64,
}

/// `[tui]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuiConfig {
    /// Seconds without a key or mouse event before the TUI locks; 0 never.
    pub lock_after_secs: u64,
    /// `dark` or `light` (themes in `assets/themes/`).
    pub theme: String,
    /// A keymap file overriding the default bindings (default:
    /// `keymap.toml` next to the config file, if it exists).
    pub keymap: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            auto_sync: true,
            clipboard: ClipboardConfig::default(),
            agent: AgentConfig::default(),
            tui: TuiConfig::default(),
        }
    }
}

impl Default for ClipboardConfig {
    fn default() -> Self {
        Self {
            clear_after_secs: 30,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 15 * 60,
        }
    }
}

impl Default for TuiConfig {
    fn default() -> Self {
        Self {
            lock_after_secs: 5 * 60,
            theme: "dark".into(),
            keymap: None,
        }
    }
}

/// Where the config file is read from.
#[must_use]
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OPENK_CONFIG") {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "openk").map(|d| d.config_dir().join("config.toml"))
}

/// Reads the config file; a missing file is the defaults.
///
/// # Errors
/// A message naming the file when it cannot be read or parsed.
pub fn load() -> Result<Config, String> {
    let Some(path) = path() else {
        return Ok(Config::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            parse(&text).map_err(|e| format!("the config file {} is invalid: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(format!(
            "cannot read the config file {}: {e}",
            path.display()
        )),
    }
}

/// Parses config text.
///
/// # Errors
/// The parser's message (names the key and line).
pub fn parse(text: &str) -> Result<Config, String> {
    let c: Config = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    if !matches!(c.tui.theme.as_str(), "dark" | "light") {
        return Err(format!(
            "tui.theme must be \"dark\" or \"light\", not {:?}",
            c.tui.theme
        ));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse("").expect("empty"), Config::default());
        let c = parse(
            "auto_sync = false\n[clipboard]\nclear_after_secs = 10\n[agent]\nidle_timeout_secs = 60\n[tui]\ntheme = \"light\"\n",
        )
        .expect("parses");
        assert!(!c.auto_sync);
        assert_eq!(c.clipboard.clear_after_secs, 10);
        assert_eq!(c.agent.idle_timeout_secs, 60);
        assert_eq!(c.tui.theme, "light");
        assert_eq!(c.tui.lock_after_secs, 300);
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert!(
            parse("autosync = true")
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(parse("[clipboard]\nclear_after = 3").is_err());
        assert!(parse("auto_sync = \"yes\"").is_err());
        assert!(
            parse("[tui]\ntheme = \"blue\"")
                .unwrap_err()
                .contains("dark")
        );
    }
}
