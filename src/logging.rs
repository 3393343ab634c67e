//! Logging setup: `tracing` to stderr for commands, or to a daily-rolling file
//! in the state directory for long-running modes (TUI, agent, server).
//!
//! `-v` shows info, `-vv` debug, `-vvv` trace; `OPENK_LOG` takes an
//! `EnvFilter` directive (`OPENK_LOG=debug`, `OPENK_LOG=openk=trace`) and wins
//! over the flags. Nothing logged anywhere in OpenK may contain a secret: log
//! ids, counts and kinds, never names, fields, keys or passwords.

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Environment variable holding a log filter directive.
pub const LOG_ENV: &str = "OPENK_LOG";

fn filter(verbosity: u8) -> EnvFilter {
    let default = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default))
}

/// Logs to stderr (one-shot commands). Quiet (warnings only) by default;
/// coloured only when stderr is a terminal and `NO_COLOR` is not set.
pub fn init_stderr(verbosity: u8) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_ansi(openk_server::stderr_color())
        .with_writer(std::io::stderr)
        .with_target(verbosity > 1)
        .try_init();
}

/// Logs to a daily-rolling file `openk.log.YYYY-MM-DD` in `dir` (kept 7 days)
/// and returns the guard that flushes it on drop. Warnings also go to stderr.
///
/// # Errors
/// When the directory or file cannot be created.
pub fn init_file(
    dir: &Path,
    verbosity: u8,
) -> std::io::Result<tracing_appender::non_blocking::WorkerGuard> {
    let (writer, guard) = rolling_file(dir)?;
    init_plain(
        verbosity,
        writer.and(std::io::stderr.with_max_level(tracing::Level::WARN)),
    );
    Ok(guard)
}

/// Like [`init_file`] but nothing goes to stderr: for the TUI, whose
/// screen a log line would break.
///
/// # Errors
/// When the directory or file cannot be created.
pub fn init_file_only(
    dir: &Path,
    verbosity: u8,
) -> std::io::Result<tracing_appender::non_blocking::WorkerGuard> {
    let (writer, guard) = rolling_file(dir)?;
    init_plain(verbosity, writer);
    Ok(guard)
}

/// The long-running modes' subscriber: at least info, no colours.
fn init_plain<W>(verbosity: u8, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity.max(1)))
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
}

/// The daily-rolling log file in `dir` (created private), written off the
/// caller's thread.
fn rolling_file(
    dir: &Path,
) -> std::io::Result<(
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
)> {
    crate::engine::files::create_private_dir(dir).map_err(std::io::Error::other)?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("openk.log")
        .max_log_files(7)
        .build(dir)
        .map_err(std::io::Error::other)?;
    Ok(tracing_appender::non_blocking(appender))
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_logging_writes_to_the_state_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        {
            let _guard = super::init_file(&dir, 1).expect("init");
            tracing::info!(marker = "log-file-test", "hello from the test");
        }
        let files: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().collect();
        assert_eq!(files.len(), 1, "one rolling log file");
        let name = files[0].file_name().to_string_lossy().into_owned();
        assert!(name.starts_with("openk.log"), "{name}");
        let text = std::fs::read_to_string(files[0].path()).expect("read");
        assert!(text.contains("log-file-test"), "{text}");
    }
}
