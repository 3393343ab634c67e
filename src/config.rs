//! The user config: `$OPENK_CONFIG`, else `config.toml` in the platform
//! config dir (`~/.config/openk/config.toml` on Linux).
//!
//! One rule for every command: the file is read once, before the command
//! runs, and an unknown key, a value of the wrong type or out of range, or a
//! file named by `OPENK_CONFIG` that does not exist is an error naming the
//! key and the file (exit 2), so a typo is never silently ignored. The
//! default location may be absent (the defaults apply). Every key is
//! documented in docs/cli.md; `openk config` prints the effective values.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "OPENK_CONFIG";

/// Everything the config file can set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Sync right after every write on a logged-in vault.
    pub auto_sync: bool,
    /// Allow plain `http://` to a server that is not on a loopback address.
    pub insecure_http: bool,
    pub clipboard: ClipboardConfig,
    pub agent: AgentConfig,
    pub tui: TuiConfig,
}

/// `[clipboard]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipboardConfig {
    /// Seconds before a copied secret is cleared (if still there); 0 never.
    pub clear_after_secs: u64,
}

/// `[agent]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Seconds without a request before the agent locks itself.
    pub idle_timeout_secs: u64,
    /// `[agent.keys]`: the named keys the agent's key protocol may use, and
    /// how (by key name, compared without letter case). Empty (the
    /// default): the agent performs no key operation at all.
    pub keys: std::collections::BTreeMap<String, AgentKeyRule>,
}

/// The operations of the agent's key protocol (`docs/security.md`).
pub const AGENT_KEY_OPS: [&str; 7] = [
    "encrypt", "decrypt", "sign", "verify", "derive", "public", "info",
];

/// What callers of the agent may do with one named key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentKeyRule {
    /// Allowed operations (of [`AGENT_KEY_OPS`]; `mac` is `sign`).
    pub ops: Vec<String>,
    /// When not empty, only processes running one of these executables
    /// (absolute paths, as `/proc/PID/exe` names them) may use the key.
    pub programs: Vec<PathBuf>,
}

impl AgentKeyRule {
    /// Whether `op` is allowed (`mac` counts as `sign`).
    #[must_use]
    pub fn allows(&self, op: &str) -> bool {
        let op = if op == "mac" { "sign" } else { op };
        self.ops.iter().any(|o| o == op || o == "all")
    }
}

impl AgentConfig {
    /// The rule for the key named `name` (letter case aside), if any.
    #[must_use]
    pub fn key_rule(&self, name: &str) -> Option<(&str, &AgentKeyRule)> {
        let wanted = name.trim().to_lowercase();
        self.keys
            .iter()
            .find(|(k, _)| k.to_lowercase() == wanted)
            .map(|(k, r)| (k.as_str(), r))
    }
}

/// `[agent.keys]` from TOML: `NAME = ["op", …]` or `NAME = { ops = […],
/// programs = ["/path/to/exe", …] }`.
fn agent_keys(
    value: &toml::Value,
) -> Result<std::collections::BTreeMap<String, AgentKeyRule>, String> {
    let table = value.as_table().ok_or_else(|| {
        format!(
            "must be a table ([agent.keys], one line a key: NAME = [\"encrypt\", …]), not {}",
            type_name(value)
        )
    })?;
    let strings = |name: &str, what: &str, v: &toml::Value| -> Result<Vec<String>, String> {
        v.as_array()
            .ok_or_else(|| format!("key {name:?}: {what} must be an array of strings"))?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("key {name:?}: {what} must be an array of strings"))
            })
            .collect()
    };
    let mut out = std::collections::BTreeMap::new();
    for (name, v) in table {
        let rule = match v {
            toml::Value::Array(_) => AgentKeyRule {
                ops: strings(name, "the operations", v)?,
                programs: Vec::new(),
            },
            toml::Value::Table(t) => {
                if let Some(other) = t.keys().find(|k| *k != "ops" && *k != "programs") {
                    return Err(format!(
                        "key {name:?}: unknown setting `{other}` (the settings are `ops` and `programs`)"
                    ));
                }
                let ops = t
                    .get("ops")
                    .map(|o| strings(name, "`ops`", o))
                    .transpose()?
                    .unwrap_or_default();
                let programs = t
                    .get("programs")
                    .map(|p| strings(name, "`programs`", p))
                    .transpose()?
                    .unwrap_or_default()
                    .into_iter()
                    .map(PathBuf::from)
                    .collect::<Vec<_>>();
                if let Some(p) = programs.iter().find(|p| !p.is_absolute()) {
                    return Err(format!(
                        "key {name:?}: program {} must be an absolute path",
                        p.display()
                    ));
                }
                AgentKeyRule { ops, programs }
            }
            other => {
                return Err(format!(
                    "key {name:?} must be a list of operations, not {}",
                    type_name(other)
                ));
            }
        };
        if let Some(bad) = rule
            .ops
            .iter()
            .find(|o| *o != "all" && *o != "mac" && !AGENT_KEY_OPS.contains(&o.as_str()))
        {
            return Err(format!(
                "key {name:?}: unknown operation {bad:?} (the operations are {}, or \"all\")",
                AGENT_KEY_OPS.join(", ")
            ));
        }
        out.insert(name.clone(), rule);
    }
    Ok(out)
}

/// `[tui]`
#[derive(Debug, Clone, PartialEq, Eq)]
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
            insecure_http: false,
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
            keys: std::collections::BTreeMap::new(),
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

/// Every key the file may hold, as `section.key` (top-level keys bare), in
/// the order `openk config` prints them.
pub const KEYS: [&str; 8] = [
    "auto_sync",
    "insecure_http",
    "clipboard.clear_after_secs",
    "agent.idle_timeout_secs",
    "agent.keys",
    "tui.lock_after_secs",
    "tui.theme",
    "tui.keymap",
];

/// The sections (tables) the file may hold.
const SECTIONS: [&str; 3] = ["clipboard", "agent", "tui"];

/// One configuration value as TOML-ish text and JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(u64),
    Text(String),
    /// An optional value that is not set.
    Unset,
}

impl Value {
    /// How `openk config` prints it.
    #[must_use]
    pub fn display(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Int(n) => n.to_string(),
            Self::Text(s) => format!("{s:?}"),
            Self::Unset => "(none)".to_owned(),
        }
    }

    /// The JSON form (`null` when unset).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        match self {
            Self::Bool(b) => (*b).into(),
            Self::Int(n) => (*n).into(),
            Self::Text(s) => s.clone().into(),
            Self::Unset => serde_json::Value::Null,
        }
    }
}

impl Config {
    /// The value of one of [`KEYS`].
    #[must_use]
    pub fn get(&self, key: &str) -> Value {
        match key {
            "auto_sync" => Value::Bool(self.auto_sync),
            "insecure_http" => Value::Bool(self.insecure_http),
            "clipboard.clear_after_secs" => Value::Int(self.clipboard.clear_after_secs),
            "agent.idle_timeout_secs" => Value::Int(self.agent.idle_timeout_secs),
            "agent.keys" if self.agent.keys.is_empty() => Value::Unset,
            "agent.keys" => Value::Text(
                self.agent
                    .keys
                    .iter()
                    .map(|(k, r)| {
                        let mut s = format!("{k}: {}", r.ops.join(", "));
                        if !r.programs.is_empty() {
                            let p: Vec<String> =
                                r.programs.iter().map(|p| p.display().to_string()).collect();
                            s.push_str(&format!(" (only {})", p.join(", ")));
                        }
                        s
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            "tui.lock_after_secs" => Value::Int(self.tui.lock_after_secs),
            "tui.theme" => Value::Text(self.tui.theme.clone()),
            "tui.keymap" => self
                .tui
                .keymap
                .as_ref()
                .map_or(Value::Unset, |p| Value::Text(p.display().to_string())),
            _ => Value::Unset,
        }
    }

    /// Sets one of [`KEYS`] from a TOML value, checking its type and range.
    fn set(&mut self, key: &str, value: &toml::Value) -> Result<(), String> {
        match key {
            "auto_sync" => self.auto_sync = boolean(value)?,
            "insecure_http" => self.insecure_http = boolean(value)?,
            "clipboard.clear_after_secs" => self.clipboard.clear_after_secs = seconds(value)?,
            "agent.idle_timeout_secs" => self.agent.idle_timeout_secs = seconds(value)?,
            "agent.keys" => self.agent.keys = agent_keys(value)?,
            "tui.lock_after_secs" => self.tui.lock_after_secs = seconds(value)?,
            "tui.theme" => {
                let theme = text(value)?;
                if !matches!(theme.as_str(), "dark" | "light") {
                    return Err(format!("must be \"dark\" or \"light\", not {theme:?}"));
                }
                self.tui.theme = theme;
            }
            "tui.keymap" => {
                let path = text(value)?;
                if path.is_empty() {
                    return Err("must be a file path, not \"\"".into());
                }
                self.tui.keymap = Some(PathBuf::from(path));
            }
            _ => return Err("is not a known key".into()),
        }
        Ok(())
    }
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

fn boolean(value: &toml::Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("must be true or false, not {}", type_name(value)))
}

fn seconds(value: &toml::Value) -> Result<u64, String> {
    match value {
        toml::Value::Integer(n) => {
            u64::try_from(*n).map_err(|_| format!("must be 0 or more seconds, not {n}"))
        }
        other => Err(format!(
            "must be a whole number of seconds, not {}",
            type_name(other)
        )),
    }
}

fn text(value: &toml::Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("must be a string, not {}", type_name(value)))
}

/// How the config file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileFrom {
    /// `OPENK_CONFIG`.
    Env,
    /// The platform config dir.
    #[default]
    DefaultLocation,
}

/// The loaded config and where its values came from (for `openk config`).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: Config,
    /// The file that was (or would have been) read; None without a home.
    pub path: Option<PathBuf>,
    pub from: FileFrom,
    /// Whether the file exists (and was read).
    pub exists: bool,
    /// The keys the file sets (the rest are defaults).
    pub set: BTreeSet<String>,
}

impl std::ops::Deref for Loaded {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.config
    }
}

impl Loaded {
    /// Where the value of `key` came from: `default`, or the file's path.
    #[must_use]
    pub fn source(&self, key: &str) -> String {
        match &self.path {
            Some(p) if self.set.contains(key) => p.display().to_string(),
            _ => "default".to_owned(),
        }
    }
}

/// Where the config file is read from, and how that was chosen.
///
/// # Errors
/// `OPENK_CONFIG` set to the empty string.
pub fn locate() -> Result<(Option<PathBuf>, FileFrom), String> {
    if let Some(p) = std::env::var_os(CONFIG_ENV) {
        if p.is_empty() {
            return Err(format!(
                "{CONFIG_ENV} is set but empty; set it to a config file (or /dev/null for none), or unset it"
            ));
        }
        return Ok((Some(PathBuf::from(p)), FileFrom::Env));
    }
    Ok((
        directories::ProjectDirs::from("", "", "openk").map(|d| d.config_dir().join("config.toml")),
        FileFrom::DefaultLocation,
    ))
}

/// Where the config file is read from (`None` without a home directory or
/// with an empty `OPENK_CONFIG`).
#[must_use]
pub fn path() -> Option<PathBuf> {
    locate().ok().and_then(|(p, _)| p)
}

/// Reads the config file: a missing file at the default location is the
/// defaults; a missing file named by `OPENK_CONFIG` is an error.
///
/// # Errors
/// A message naming the file (and the key) when it cannot be read or parsed.
pub fn load() -> Result<Config, String> {
    load_with_origin().map(|l| l.config)
}

/// [`load`], keeping where each value came from.
///
/// # Errors
/// As [`load`].
pub fn load_with_origin() -> Result<Loaded, String> {
    let (path, from) = locate()?;
    let Some(path) = path else {
        return Ok(Loaded {
            from,
            ..Loaded::default()
        });
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if from == FileFrom::Env {
                return Err(format!(
                    "the config file {} (named by {CONFIG_ENV}) does not exist; create it, or unset {CONFIG_ENV} to use {}",
                    path.display(),
                    directories::ProjectDirs::from("", "", "openk")
                        .map(|d| d.config_dir().join("config.toml").display().to_string())
                        .unwrap_or_else(|| "the defaults".to_owned())
                ));
            }
            return Ok(Loaded {
                path: Some(path),
                from,
                ..Loaded::default()
            });
        }
        Err(e) => {
            return Err(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ));
        }
    };
    let (config, set) = parse_keys(&text).map_err(|e| invalid(&path, &e))?;
    Ok(Loaded {
        config,
        path: Some(path),
        from,
        exists: true,
        set,
    })
}

fn invalid(path: &Path, why: &str) -> String {
    format!("the config file {} is invalid: {why}", path.display())
}

/// Parses config text.
///
/// # Errors
/// A message naming the key (and suggesting the intended one for a typo).
pub fn parse(text: &str) -> Result<Config, String> {
    parse_keys(text).map(|(c, _)| c)
}

fn parse_keys(text: &str) -> Result<(Config, BTreeSet<String>), String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        // The message plus the line it is on (toml counts from 0).
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(l) => format!("{} (line {l})", e.message().trim_end()),
            None => e.message().trim_end().to_owned(),
        }
    })?;
    let mut config = Config::default();
    let mut set = BTreeSet::new();
    for (key, value) in &table {
        match value {
            toml::Value::Table(section) if SECTIONS.contains(&key.as_str()) => {
                for (sub, value) in section {
                    let full = format!("{key}.{sub}");
                    apply(&mut config, &full, value)?;
                    set.insert(full);
                }
            }
            toml::Value::Table(_) => {
                let close = SECTIONS
                    .iter()
                    .map(|sec| (distance(&key.to_lowercase(), sec), *sec))
                    .filter(|(d, _)| *d <= 2)
                    .min_by_key(|(d, _)| *d);
                return Err(match close {
                    Some((_, sec)) => {
                        format!("unknown section `[{key}]`; did you mean `[{sec}]`?")
                    }
                    None => format!(
                        "unknown section `[{key}]`; the sections are [clipboard], [agent] and [tui]"
                    ),
                });
            }
            _ if SECTIONS.contains(&key.as_str()) => {
                return Err(format!(
                    "`{key}` must be a table ([{key}]), not {}",
                    type_name(value)
                ));
            }
            _ => {
                apply(&mut config, key, value)?;
                set.insert(key.clone());
            }
        }
    }
    Ok((config, set))
}

fn apply(config: &mut Config, key: &str, value: &toml::Value) -> Result<(), String> {
    if !KEYS.contains(&key) {
        return Err(match suggest(key) {
            Some(s) => format!("unknown key `{key}`; did you mean `{s}`?"),
            None => format!(
                "unknown key `{key}`; the keys are {}",
                KEYS.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    config
        .set(key, value)
        .map_err(|why| format!("`{key}` {why}"))
}

/// The known key closest to a misspelt one, if it is close.
fn suggest(key: &str) -> Option<&'static str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = squash(key);
    let leaf = |k: &str| k.rsplit('.').next().unwrap_or(k).to_owned();
    KEYS.iter()
        .map(|k| {
            let d = distance(&wanted, &squash(k))
                .min(distance(&squash(&leaf(key)), &squash(&leaf(k))) + 1);
            (d, *k)
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (small strings only).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse("").expect("empty"), Config::default());
        let (c, set) = parse_keys(
            "auto_sync = false\n[clipboard]\nclear_after_secs = 10\n[agent]\nidle_timeout_secs = 60\n[tui]\ntheme = \"light\"\n",
        )
        .expect("parses");
        assert!(!c.auto_sync);
        assert_eq!(c.clipboard.clear_after_secs, 10);
        assert_eq!(c.agent.idle_timeout_secs, 60);
        assert_eq!(c.tui.theme, "light");
        assert_eq!(c.tui.lock_after_secs, 300);
        assert!(set.contains("auto_sync") && set.contains("tui.theme"));
        assert!(!set.contains("tui.lock_after_secs"));
    }

    #[test]
    fn typos_and_bad_values_are_errors_naming_the_key() {
        let e = parse("autosync = true").unwrap_err();
        assert!(
            e.contains("`autosync`") && e.contains("did you mean `auto_sync`"),
            "{e}"
        );
        let e = parse("[clipboard]\nclear_after = 3").unwrap_err();
        assert!(
            e.contains("`clipboard.clear_after`") && e.contains("`clipboard.clear_after_secs`"),
            "{e}"
        );
        let e = parse("auto_sync = \"yes\"").unwrap_err();
        assert!(e.contains("`auto_sync` must be true or false"), "{e}");
        let e = parse("[agent]\nidle_timeout_secs = -1").unwrap_err();
        assert!(e.contains("`agent.idle_timeout_secs`"), "{e}");
        let e = parse("[tui]\ntheme = \"blue\"").unwrap_err();
        assert!(e.contains("`tui.theme`") && e.contains("dark"), "{e}");
        let e = parse("[clipbaord]\nclear_after_secs = 3").unwrap_err();
        assert!(
            e.contains("`[clipbaord]`") && e.contains("`[clipboard]`"),
            "{e}"
        );
        let e = parse("clipboard = 3").unwrap_err();
        assert!(e.contains("[clipboard]"), "{e}");
        let e = parse("colour = 1").unwrap_err();
        assert!(e.contains("`colour`") && e.contains("the keys are"), "{e}");
        let e = parse("auto_sync = maybe").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn agent_keys_name_keys_ops_and_programs() {
        let c = parse(
            "[agent.keys]\n\"app-data\" = [\"encrypt\", \"decrypt\"]\nsigner = { ops = [\"sign\", \"public\"], programs = [\"/usr/bin/app\"] }\n",
        )
        .expect("parse");
        let (name, rule) = c.agent.key_rule("APP-DATA").expect("rule");
        assert_eq!(name, "app-data");
        assert!(rule.allows("encrypt") && !rule.allows("sign"));
        let (_, rule) = c.agent.key_rule("signer").expect("rule");
        assert!(rule.allows("mac") && rule.allows("public") && !rule.allows("derive"));
        assert_eq!(rule.programs, [PathBuf::from("/usr/bin/app")]);
        assert!(c.agent.key_rule("other").is_none());
        assert!(Config::default().agent.keys.is_empty(), "none by default");
        for bad in [
            "[agent]\nkeys = 3",
            "[agent.keys]\nk = [\"export\"]",
            "[agent.keys]\nk = { ops = [\"sign\"], programs = [\"app\"] }",
            "[agent.keys]\nk = { op = [\"sign\"] }",
            "[agent.keys]\nk = \"sign\"",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("agent.keys"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_key_reads_back() {
        let c = Config::default();
        for key in KEYS {
            let v = c.get(key);
            assert!(
                key == "tui.keymap" || key == "agent.keys" || v != Value::Unset,
                "{key}"
            );
        }
    }
}
