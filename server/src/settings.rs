//! Server settings: command-line flags, then `OPENK_SERVER_*` environment
//! variables, then a TOML file (`--config`), then defaults. `Debug` redacts
//! credentials in URLs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Who may create an account (`--registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Registration {
    /// Anyone who can reach the server.
    #[default]
    Open,
    /// Only with a one-time code from `openk-server invite`.
    InviteOnly,
    /// Nobody: existing accounts only.
    Closed,
}

/// Flags and environment (every field optional, so the file can fill gaps).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML settings file (see assets/server.example.toml)
    #[arg(long, env = "OPENK_SERVER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8420]
    #[arg(long, env = "OPENK_SERVER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// sqlite://PATH, postgres://…, or memory [default: an SQLite file in the data dir]
    #[arg(long, env = "OPENK_SERVER_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Redis URL for shared rate limits, token cache and vault events (several nodes)
    #[arg(long, env = "OPENK_SERVER_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// Prefix of every Redis key and of the events channel; nodes of one
    /// deployment share it, separate deployments on one Redis differ [default: openk:]
    #[arg(long, env = "OPENK_SERVER_CACHE_PREFIX", value_name = "PREFIX")]
    pub cache_prefix: Option<String>,
    /// TLS certificate chain (PEM); needs --tls-key
    #[arg(
        long,
        env = "OPENK_SERVER_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(
        long,
        env = "OPENK_SERVER_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, env = "OPENK_SERVER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Take the client address from X-Forwarded-For (only behind a trusted proxy)
    #[arg(long, env = "OPENK_SERVER_TRUST_PROXY")]
    pub trust_proxy: Option<bool>,
    /// How many proxies in front of the server append to X-Forwarded-For; the
    /// client address is the entry the outermost of them added [default: 1]
    #[arg(long, env = "OPENK_SERVER_TRUSTED_HOPS", value_name = "N")]
    pub trusted_hops: Option<usize>,
    /// Seconds a client gets to send a request's headers, after connecting
    /// or after its last response, before it is disconnected; a client
    /// trickling bytes is gone within twice this (1 to 60) [default: 7]
    #[arg(long, env = "OPENK_SERVER_HEADER_TIMEOUT", value_name = "SECS")]
    pub header_timeout: Option<u64>,
    /// Seconds a client gets to send a request body (1 to 600) [default: 30]
    #[arg(long, env = "OPENK_SERVER_BODY_TIMEOUT", value_name = "SECS")]
    pub body_timeout: Option<u64>,
    /// Open connections at most; more are closed at once (0 = no limit) [default: 1024]
    #[arg(long, env = "OPENK_SERVER_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Who may register: open, invite-only (codes from `invite`) or closed [default: open]
    #[arg(
        long,
        env = "OPENK_SERVER_REGISTRATION",
        value_enum,
        value_name = "MODE"
    )]
    pub registration: Option<Registration>,
    /// Ciphertext bytes one account may store (0 = no limit) [default: 1073741824, 1 GiB]
    #[arg(long, env = "OPENK_SERVER_STORAGE_QUOTA", value_name = "BYTES")]
    pub storage_quota: Option<u64>,
    /// Requests per minute per access token on the vault routes (0 = no limit) [default: 600]
    #[arg(long, env = "OPENK_SERVER_DATA_RATE_LIMIT", value_name = "N")]
    pub data_rate_limit: Option<u64>,
    /// Requests per minute per address on the account routes (0 = no limit) [default: 60]
    #[arg(long, env = "OPENK_SERVER_AUTH_RATE_LIMIT", value_name = "N")]
    pub auth_rate_limit: Option<u64>,
    /// Login attempts per account from unknown devices (4× per address; per device for known ones) before exponential back-off [default: 5]
    #[arg(long, env = "OPENK_SERVER_LOGIN_FAILURE_LIMIT", value_name = "N")]
    pub login_failure_limit: Option<u64>,
    /// The shortest wait an emergency access grant may have, in seconds (tests and demos only: below an hour a grant protects little) [default: 3600]
    #[arg(long, env = "OPENK_SERVER_EMERGENCY_MIN_WAIT", value_name = "SECS")]
    pub emergency_min_wait: Option<u64>,
}

/// The TOML file: the same names as the flags, with underscores.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    database: Option<String>,
    redis: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    log_format: Option<LogFormat>,
    trust_proxy: Option<bool>,
    trusted_hops: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    registration: Option<Registration>,
    storage_quota_bytes: Option<u64>,
    data_rate_limit: Option<u64>,
    auth_rate_limit: Option<u64>,
    login_failure_limit: Option<u64>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    events_keepalive_secs: Option<u64>,
    cache_prefix: Option<String>,
    emergency_min_wait_secs: Option<u64>,
}

/// Effective settings.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: String,
    pub redis: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub log_format: LogFormat,
    pub trust_proxy: bool,
    /// Proxies that append to `X-Forwarded-For` (at least 1).
    pub trusted_hops: usize,
    /// Time to receive a request's headers (slow clients are dropped).
    pub header_timeout_secs: u64,
    /// Time to receive a request body.
    pub body_timeout_secs: u64,
    /// Open connections at most (0 = no limit).
    pub max_connections: usize,
    pub registration: Registration,
    /// Ciphertext bytes per account (0 = no limit).
    pub storage_quota_bytes: u64,
    /// Requests per minute per access token on the vault routes (0 = no limit).
    pub data_rate_limit: u64,
    pub auth_rate_limit: u64,
    pub login_failure_limit: u64,
    /// The first wait once an account's (or a device's) free login attempts
    /// are used up; each later attempt doubles it, up to 15 minutes.
    pub login_backoff: std::time::Duration,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub request_timeout_secs: u64,
    /// Seconds between keep-alive comments on an event stream; each also
    /// re-checks the stream's access token.
    pub events_keepalive_secs: u64,
    /// Prefix of every cache key (Redis namespace).
    pub cache_prefix: String,
    /// The shortest wait an emergency grant may have (seconds).
    pub emergency_min_wait_secs: u64,
}

/// The shortest emergency-access wait a server takes unless told otherwise.
pub const DEFAULT_EMERGENCY_MIN_WAIT_SECS: u64 = 3600;
/// The longest emergency-access wait (90 days).
pub const MAX_EMERGENCY_WAIT_SECS: u64 = 90 * 86_400;

/// The default time a client gets to send its request headers.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 7;

/// Replaces the password of a `scheme://user:password@host` URL with `***`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database))
            .field("redis", &self.redis.as_deref().map(redact_url))
            .field("tls", &self.tls.is_some())
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

/// The default SQLite file: `<data dir>/openk/server.db`.
#[must_use]
pub fn default_database() -> String {
    let dir = directories::ProjectDirs::from("", "", "openk")
        .map_or_else(|| PathBuf::from("."), |d| d.data_dir().to_path_buf());
    format!("sqlite://{}", dir.join("server.db").display())
}

impl Settings {
    /// Defaults for tests: in-memory store and cache, random port.
    #[must_use]
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: "memory".into(),
            redis: None,
            tls: None,
            log_format: LogFormat::Text,
            trust_proxy: false,
            trusted_hops: 1,
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            body_timeout_secs: 30,
            max_connections: 1024,
            registration: Registration::Open,
            storage_quota_bytes: 1 << 30,
            data_rate_limit: 600,
            auth_rate_limit: 60,
            login_failure_limit: 5,
            login_backoff: std::time::Duration::from_secs(1),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            request_timeout_secs: 30,
            events_keepalive_secs: 15,
            cache_prefix: "openk:".into(),
            // Tests wait a second, not an hour.
            emergency_min_wait_secs: 1,
        }
    }

    /// Merges flags/environment over the TOML file over defaults.
    ///
    /// # Errors
    /// An unreadable or invalid settings file.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both a certificate and a key (--tls-cert and --tls-key)"),
        };
        let d = Self::for_tests();
        Ok(Self {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8420))),
            database: args
                .database
                .clone()
                .or(file.database)
                .unwrap_or_else(default_database),
            redis: args.redis.clone().or(file.redis),
            tls,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            trust_proxy: args.trust_proxy.or(file.trust_proxy).unwrap_or(false),
            trusted_hops: args
                .trusted_hops
                .or(file.trusted_hops)
                .unwrap_or(d.trusted_hops)
                .clamp(1, 16),
            header_timeout_secs: args
                .header_timeout
                .or(file.header_timeout_secs)
                .unwrap_or(d.header_timeout_secs)
                .clamp(1, 60),
            body_timeout_secs: args
                .body_timeout
                .or(file.body_timeout_secs)
                .unwrap_or(d.body_timeout_secs)
                .clamp(1, 600),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(d.max_connections),
            registration: args
                .registration
                .or(file.registration)
                .unwrap_or(d.registration),
            storage_quota_bytes: args
                .storage_quota
                .or(file.storage_quota_bytes)
                .unwrap_or(d.storage_quota_bytes),
            data_rate_limit: args
                .data_rate_limit
                .or(file.data_rate_limit)
                .unwrap_or(d.data_rate_limit),
            auth_rate_limit: args
                .auth_rate_limit
                .or(file.auth_rate_limit)
                .unwrap_or(d.auth_rate_limit),
            login_failure_limit: args
                .login_failure_limit
                .or(file.login_failure_limit)
                .unwrap_or(d.login_failure_limit)
                .max(1),
            login_backoff: d.login_backoff,
            access_token_ttl_secs: file
                .access_token_ttl_secs
                .unwrap_or(d.access_token_ttl_secs)
                .clamp(60, 86_400),
            refresh_token_ttl_secs: file
                .refresh_token_ttl_secs
                .unwrap_or(d.refresh_token_ttl_secs)
                .clamp(3600, 365 * 86_400),
            request_timeout_secs: file
                .request_timeout_secs
                .unwrap_or(d.request_timeout_secs)
                .clamp(1, 600),
            events_keepalive_secs: file
                .events_keepalive_secs
                .unwrap_or(d.events_keepalive_secs)
                .clamp(1, 300),
            cache_prefix: args
                .cache_prefix
                .clone()
                .or(file.cache_prefix)
                .filter(|p| !p.is_empty())
                .unwrap_or(d.cache_prefix),
            emergency_min_wait_secs: args
                .emergency_min_wait
                .or(file.emergency_min_wait_secs)
                .unwrap_or(DEFAULT_EMERGENCY_MIN_WAIT_SECS)
                .clamp(1, MAX_EMERGENCY_WAIT_SECS),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the settings file {}: {e}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid settings file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("redis://:pw@h:6379"), "redis://:***@h:6379");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        let s = Settings {
            database: "postgres://u:hunter2@h/db".into(),
            ..Settings::for_tests()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    /// Every setting the example file shows is one the server knows.
    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../assets/server.example.toml");
        let file: FileSettings = toml::from_str(text).expect("assets/server.example.toml");
        assert_eq!(file.events_keepalive_secs, Some(15));
        let is_setting = |line: &&str| {
            line.split_once(" = ").is_some_and(|(key, _)| {
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
        };
        let uncommented: String = text
            .lines()
            .map(|l| l.strip_prefix("# ").filter(is_setting).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        toml::from_str::<FileSettings>(&uncommented).expect("the commented-out settings too");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndatabase = \"memory\"\nauth_rate_limit = 5\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:9100".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let s = Settings::load(&args).expect("loads");
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.database, "memory");
        assert_eq!(s.auth_rate_limit, 5);
        std::fs::write(&path, "nonsense = 1\n").expect("write");
        assert!(Settings::load(&args).is_err());
    }

    #[test]
    fn hardening_defaults_and_file_names() {
        let d = Settings::load(&ServeArgs {
            database: Some("memory".into()),
            ..ServeArgs::default()
        })
        .expect("defaults");
        // A client trickling its headers is dropped within 15 s (at the
        // latest twice the timeout after connecting: src/conn.rs).
        assert!(2 * d.header_timeout_secs <= 15, "{}", d.header_timeout_secs);
        assert_eq!(d.trusted_hops, 1);
        assert_eq!(d.registration, Registration::Open);
        assert_eq!(d.storage_quota_bytes, 1 << 30);
        assert!(d.max_connections > 0 && d.data_rate_limit > 0);
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "trusted_hops = 2\nheader_timeout_secs = 3\nregistration = \"invite-only\"\n\
             storage_quota_bytes = 1000\ndata_rate_limit = 7\nmax_connections = 9\nbody_timeout_secs = 4\n",
        )
        .expect("write");
        let s = Settings::load(&ServeArgs {
            config: Some(path),
            registration: Some(Registration::Closed),
            ..ServeArgs::default()
        })
        .expect("loads");
        assert_eq!(s.trusted_hops, 2);
        assert_eq!(s.header_timeout_secs, 3);
        assert_eq!(s.body_timeout_secs, 4);
        assert_eq!(s.registration, Registration::Closed);
        assert_eq!(s.storage_quota_bytes, 1000);
        assert_eq!(s.data_rate_limit, 7);
        assert_eq!(s.max_connections, 9);
    }
}
