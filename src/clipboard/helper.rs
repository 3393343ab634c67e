//! The clipboard helper: `openk __clipboard-hold`, started by
//! [`copy`](super::copy), never by a user.
//!
//! It runs in two stages so that nobody is left with a zombie. Stage one is
//! the child of the copying process (the CLI, or the long-running TUI, which
//! reaps it at once): it starts stage two with the same stdin and stdout,
//! says `pid N` and exits. Stage two is then an orphan that init reaps when
//! it ends. It leaves the terminal's session (`setsid`, so no hangup or
//! Ctrl-C reaches it), disables core dumps, reads the value from stdin to the
//! end, takes the clipboard, answers `ok` (or `error: WHY`) on stdout, points
//! its stdio at /dev/null and waits for the clear time.
//!
//! What it must not do: take the value from argv or the environment, print
//! it, or clear a clipboard that no longer holds it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use zeroize::Zeroizing;

use super::{HOLD_COMMAND, Via, osc52};

/// How long stage two tries to confirm that it owns the clipboard.
const TAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the waiting helper looks at the clock and the clipboard.
const TICK: Duration = Duration::from_millis(200);

/// The helper's command line, parsed by the CLI.
#[derive(Debug, Clone, Copy)]
pub struct HoldOptions {
    pub via: Via,
    /// None: never clear (the display helper still exits when another
    /// program takes the clipboard).
    pub clear_after: Option<Duration>,
    /// Stage two (already started by stage one).
    pub detached: bool,
}

/// Runs the helper stage `options` names. Failures are reported on stdout
/// to the copying process; the return value is only the exit status.
pub fn hold(options: &HoldOptions) -> Result<(), String> {
    let result = if options.detached {
        stage_two(options)
    } else {
        stage_one(options)
    };
    if let Err(why) = &result {
        report(&format!("error: {why}"));
    }
    result
}

fn stage_one(options: &HoldOptions) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the executable: {e}"))?;
    let child = Command::new(exe)
        .arg(HOLD_COMMAND)
        .arg("--via")
        .arg(options.via.as_str())
        .arg("--clear-after-ms")
        .arg(options.clear_after.map_or(0, |d| d.as_millis()).to_string())
        .arg("--detached")
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::null())
        .current_dir("/")
        .spawn()
        .map_err(|e| format!("cannot start the detached helper: {e}"))?;
    report(&format!("pid {}", child.id()));
    // Not waited for: this process exits now and init adopts the child.
    drop(child);
    Ok(())
}

fn stage_two(options: &HoldOptions) -> Result<(), String> {
    // The terminal must be opened while it is still our controlling one.
    let tty = match options.via {
        Via::Osc52 => Some(
            osc52::open_tty().map_err(|e| format!("cannot open the terminal (/dev/tty): {e}"))?,
        ),
        Via::Display => None,
    };
    rustix::process::setsid().map_err(|e| format!("cannot start a new session: {e}"))?;
    crate::engine::harden_process().map_err(|e| format!("cannot disable core dumps: {e}"))?;
    let deadline = options.clear_after.map(|d| SystemTime::now() + d);
    match tty {
        Some(mut tty) => {
            report("ok");
            detach_stdio();
            let Some(deadline) = deadline else {
                return Ok(());
            };
            sleep_until(deadline, || false);
            osc52::write_to(&mut tty, osc52::osc52_clear_sequence())
                .map_err(|e| format!("cannot write the clear sequence: {e}"))
        }
        None => {
            let value = read_value()?;
            hold_display(value, deadline)
        }
    }
}

/// The value from stdin, to the end (the copying process closes the pipe).
fn read_value() -> Result<Arc<Zeroizing<String>>, String> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the value: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "the value is not UTF-8".to_owned())?;
    Ok(Arc::new(Zeroizing::new(text.to_owned())))
}

/// Owns the clipboard until `deadline` (None: until another program takes
/// it over), then clears it if it still holds `value`.
fn hold_display(value: Arc<Zeroizing<String>>, deadline: Option<SystemTime>) -> Result<(), String> {
    let mut clipboard =
        arboard::Clipboard::new().map_err(|e| format!("cannot open the display: {e}"))?;
    // The setter serves paste requests; on X11 and Wayland it returns only
    // when the selection is lost (another program copied, or we cleared).
    let setter = {
        let value = Arc::clone(&value);
        std::thread::spawn(move || -> Result<(), arboard::Error> {
            let mut clipboard = arboard::Clipboard::new()?;
            let set = clipboard.set();
            #[cfg(all(
                unix,
                not(any(target_os = "macos", target_os = "android", target_os = "emscripten"))
            ))]
            let set = {
                use arboard::SetExtLinux;
                set.exclude_from_history().wait()
            };
            set.text(value.as_str())
        })
    };
    let holds_value = |c: &mut arboard::Clipboard| {
        c.get_text()
            .is_ok_and(|t| Zeroizing::new(t).as_str() == value.as_str())
    };
    let started = Instant::now();
    loop {
        if setter.is_finished() && SETTER_WAITS {
            return Err(match setter.join() {
                Ok(Err(e)) => format!("cannot set the clipboard: {e}"),
                _ => "lost the clipboard at once".to_owned(),
            });
        }
        if holds_value(&mut clipboard) {
            break;
        }
        if started.elapsed() > TAKE_TIMEOUT {
            return Err("could not take the clipboard".to_owned());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    report("ok");
    detach_stdio();
    // Another program took the clipboard over (or the display went away):
    // nothing of ours to clear. The setter ends at once on X11 and Wayland;
    // looking at the clipboard also covers the other platforms and a display
    // server that died (the check then fails).
    let taken_over =
        |c: &mut arboard::Clipboard| (SETTER_WAITS && setter.is_finished()) || !holds_value(c);
    let Some(deadline) = deadline else {
        while !taken_over(&mut clipboard) {
            std::thread::sleep(TICK);
        }
        return Ok(());
    };
    if sleep_until(deadline, || taken_over(&mut clipboard)) {
        return Ok(());
    }
    // Compare, then clear: a value the user copied since is left alone.
    if holds_value(&mut clipboard) {
        clipboard
            .clear()
            .map_err(|e| format!("cannot clear the clipboard: {e}"))?;
    }
    Ok(())
}

/// Whether the setter blocks while it owns the clipboard (X11, Wayland),
/// so that its end means the clipboard was taken over.
const SETTER_WAITS: bool = cfg!(all(
    unix,
    not(any(
        target_os = "macos",
        target_os = "android",
        target_os = "emscripten"
    ))
));

/// Sleeps until the wall clock reaches `deadline` (a suspended laptop
/// clears on wake-up), or until `stop` says so; true when stopped.
fn sleep_until(deadline: SystemTime, mut stop: impl FnMut() -> bool) -> bool {
    loop {
        if stop() {
            return true;
        }
        let Ok(left) = deadline.duration_since(SystemTime::now()) else {
            return false;
        };
        std::thread::sleep(left.min(TICK));
    }
}

/// One status line to the copying process (ignored once it has gone).
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Points stdin, stdout and stderr at /dev/null: the copying process may
/// have exited, and nothing of it must be held open.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
}
