//! The terminal UI (DESIGN §8): `openk` on a terminal, or `openk tui`.
//!
//! One [`app::App`] holds the state; keys become actions through the
//! [`keymap`]; [`ui`] draws; the [`worker`] task owns the vault and answers
//! through a channel, so the screen never waits for the KDF, the database or
//! the network. The loop `select!`s over terminal events, worker replies, a
//! tick (TOTP, clipboard and lock countdowns, spinner) and signals. The
//! terminal is restored on quit, on Ctrl-C, on SIGTERM and on panic. Logs go
//! to the rolling file in the state dir, never to the screen.

pub mod app;
pub mod clip;
pub mod clock;
pub mod input;
pub mod job;
pub mod keymap;
pub mod panes;
pub mod popups;
pub mod screens;
pub mod sync_state;
pub mod theme;
pub mod ui;
pub mod widgets;
pub mod worker;

#[cfg(test)]
mod tests;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, EventStream};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt as _;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::config::Config;
use crate::engine::KdfParams;

/// How often the countdowns and the spinner move.
const TICK: Duration = Duration::from_millis(250);

/// Whether standard input and output are both terminals.
#[must_use]
pub fn is_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Puts the terminal back: main screen, cooked mode, no mouse reports.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(
        out,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Restores the terminal when dropped (quit, error or unwinding panic).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The keymap: defaults, with the user's file (config `[tui] keymap`, else
/// `keymap.toml` next to the config file) on top.
///
/// # Errors
/// A message naming the file that does not parse.
pub fn load_keymap(config: &Config) -> Result<keymap::Keymap, String> {
    let path = config.tui.keymap.clone().or_else(|| {
        crate::config::path()
            .and_then(|p| p.parent().map(|d| d.join("keymap.toml")))
            .filter(|p| p.exists())
    });
    let Some(path) = path else {
        return Ok(keymap::Keymap::default());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the keymap file {}: {e}", path.display()))?;
    keymap::Keymap::with_overrides(&text)
        .map_err(|e| format!("the keymap file {} is invalid: {e}", path.display()))
}

/// Runs the TUI on this terminal until the user quits.
///
/// # Errors
/// A message when the config or keymap is invalid or the terminal fails.
pub async fn run(vault_dir: PathBuf, config: Config) -> Result<(), String> {
    let keymap = load_keymap(&config)?;
    let _log =
        crate::engine::files::state_dir().and_then(|d| crate::logging::init_file_only(&d, 1).ok());
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let settings = app::Settings {
        has_vault: worker::has_vault(&vault_dir),
        vault_dir: vault_dir.clone(),
        lock_after: secs(config.tui.lock_after_secs),
        clear_after: secs(config.clipboard.clear_after_secs),
    };
    let theme = theme::Theme::named(&config.tui.theme, theme::Theme::no_color_env());
    let mut app = app::App::new(
        settings,
        theme,
        keymap,
        Box::new(clock::SystemClock),
        Box::new(clip::SystemClipboard),
    );

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous_hook(info);
    }));
    enable_raw_mode().map_err(|e| format!("cannot use the terminal: {e}"))?;
    let _guard = TerminalGuard;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)
        .map_err(|e| format!("cannot use the terminal: {e}"))?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(|e| format!("cannot use the terminal: {e}"))?;
    tracing::info!("tui started");

    let (req_tx, req_rx) = tokio::sync::mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = worker::Worker::new(vault_dir, KdfParams::DEFAULT, config.auto_sync);
    let worker_task = tokio::spawn(worker.run(req_rx, rep_tx, req_tx.clone()));
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| e.to_string())?;

    let result = loop {
        if let Err(e) = terminal.draw(|f| ui::draw(f, &app)) {
            break Err(format!("cannot draw: {e}"));
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => app.handle_event(&ev),
                Some(Err(e)) => break Err(format!("cannot read the terminal: {e}")),
                None => break Ok(()),
            },
            Some(reply) = rep_rx.recv() => app.on_reply(reply),
            _ = tick.tick() => app.tick(),
            _ = tokio::signal::ctrl_c() => app.quit = true,
            _ = sigterm.recv() => app.quit = true,
            _ = sighup.recv() => app.quit = true,
        }
        for request in app.outbox.drain(..) {
            let _ = req_tx.send(request);
        }
        if app.quit {
            break Ok(());
        }
    };
    // Forget decrypted state before the terminal goes back.
    app.lock();
    drop(app);
    let _ = req_tx.send(worker::Request::Quit);
    drop(req_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), worker_task).await;
    drop(terminal);
    restore_terminal();
    tracing::info!("tui stopped");
    result
}
