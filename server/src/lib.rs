//! `openk-server`: the OpenK sync service. It stores only what clients
//! encrypted (ids, version numbers, hashes and opaque ciphertext) and never
//! links anything that could decrypt user data.
//!
//! [`launch`] runs it headless (`openk-server`, `openk serve`);
//! [`serve_listener`] serves on a listener you bound (tests use port 0);
//! [`router()`] builds the app for in-process `oneshot` tests.

pub mod admin;
pub mod api;
pub mod auth;
pub mod cache;
pub mod conn;
pub mod email;
pub mod error;
pub mod events;
pub mod metrics;
pub mod router;
pub mod settings;
pub mod state;
pub mod store;
pub mod time;

use std::future::Future;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use admin::AdminCommand;
pub use router::router;
pub use settings::{LogFormat, Registration, ServeArgs, Settings};
pub use state::AppState;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Connects the store (running migrations) and the cache.
///
/// # Errors
/// A database or Redis that cannot be reached.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let store = store::connect(&settings.database).await.with_context(|| {
        format!(
            "cannot open the database {}",
            settings::redact_url(&settings.database)
        )
    })?;
    store
        .apply_email_rule()
        .await
        .context("cannot bring the stored emails under the email rule")?;
    let (cache, events): (Arc<dyn cache::Cache>, events::Bus) = match &settings.redis {
        #[cfg(feature = "redis")]
        Some(url) => {
            let unreachable =
                || format!("cannot connect to Redis at {}", settings::redact_url(url));
            let cache = cache::RedisCache::connect(url, &settings.cache_prefix)
                .await
                .with_context(unreachable)?;
            let bus = events::Bus::redis(url, &settings.cache_prefix, cache.connection())
                .await
                .with_context(unreachable)?;
            (Arc::new(cache), bus)
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => anyhow::bail!("this build has no Redis support"),
        None => (Arc::new(cache::MemoryCache::new()), events::Bus::local()),
    };
    let secret = store
        .server_secret()
        .await
        .context("cannot read the server secret")?;
    Ok(AppState {
        store,
        cache,
        settings: Arc::new(settings),
        metrics: Arc::new(metrics::Metrics::default()),
        events: Arc::new(events),
        prelogin_secret: Arc::new(secret),
    })
}

/// Whether log lines on stderr may be coloured: only on a terminal, and
/// not when `NO_COLOR` is set to something (<https://no-color.org>).
#[must_use]
pub fn stderr_color() -> bool {
    color_allowed(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn color_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Starts logging to stderr (text or JSON; `RUST_LOG`/`OPENK_LOG` filters),
/// in colour only on a terminal ([`stderr_color`]).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENK_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(stderr_color())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Serves on an already-bound listener until `shutdown` resolves, then
/// ends the event streams and drains in-flight requests.
///
/// # Errors
/// TLS files that cannot be loaded, or a failing listener.
pub async fn serve_listener(
    state: AppState,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let drain = handle.clone();
    let events = Arc::clone(&state.events);
    let sweep = api::shares::spawn_sweep(&state);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        // Event streams never end by themselves: end them, or the drain
        // would wait for them until its deadline.
        events.close();
        sweep.abort();
        drain.graceful_shutdown(Some(DRAIN));
    });
    let limit = state.settings.max_connections;
    let header_timeout = Duration::from_secs(state.settings.header_timeout_secs);
    match &state.settings.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "cannot load TLS certificate {} / key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            // HTTP/1.1 only (see `slow_client_limits`): offer nothing else.
            let mut tls = (*config.get_inner()).clone();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            config.reload_from_config(Arc::new(tls));
            let mut server = axum_server::from_tcp_rustls(listener, config).handle(handle);
            slow_client_limits(server.http_builder(), header_timeout);
            server
                .map(|tls| tls.handshake_timeout(header_timeout))
                .map(|tls| conn::LimitAcceptor::new(tls, limit, header_timeout))
                .serve(app)
                .await?;
        }
        None => {
            let mut server = axum_server::from_tcp(listener).handle(handle);
            slow_client_limits(server.http_builder(), header_timeout);
            server
                .map(|plain| conn::LimitAcceptor::new(plain, limit, header_timeout))
                .serve(app)
                .await?;
        }
    }
    Ok(())
}

/// A client must send a request's headers within `header_timeout` of
/// connecting or of its previous response; hyper closes the connection
/// otherwise. The server speaks HTTP/1.1 only (so does the client): the
/// auto-detection of HTTP/2 would wait for a silent client without limit.
fn slow_client_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    let mut http1 =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
            .http1_only();
    http1
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    *builder = http1;
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Runs the server headless with these settings until SIGINT/SIGTERM.
///
/// # Errors
/// Start-up failures (database, Redis, TLS, address in use).
pub async fn launch(settings: Settings) -> anyhow::Result<()> {
    if let Some(path) = settings.database.strip_prefix("sqlite://")
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let listen = settings.listen;
    let state = build_state(settings).await?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let s = &state.settings;
    tracing::info!(
        listen = %listener.local_addr().unwrap_or(listen),
        scheme = if s.tls.is_some() { "https" } else { "http" },
        database = %state.store.kind(),
        cache = state.cache.kind(),
        events = state.events.kind(),
        "openk-server listening on {}://{} (database: {}, cache: {})",
        if s.tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(listen),
        settings::redact_url(&s.database),
        s.redis.as_deref().map_or_else(|| "memory".to_owned(), settings::redact_url),
    );
    serve_listener(state, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(super::color_allowed(true, None));
        assert!(super::color_allowed(true, Some(OsStr::new(""))));
        assert!(!super::color_allowed(true, Some(OsStr::new("1"))));
        assert!(!super::color_allowed(false, None));
    }
}
