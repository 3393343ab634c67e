//! Copying a secret to the clipboard, and clearing it again later.
//!
//! Used by `openk copy` and the TUI. Two ways out:
//!
//! - **Display** (X11, or Wayland with the data-control protocol): arboard,
//!   run in a small detached helper process. On X11 and Wayland the
//!   clipboard is not a buffer but a promise: the program that copied must
//!   stay alive to answer every paste. The helper is the `openk` binary
//!   itself, re-executed as `openk __clipboard-hold`; it gets the value on a
//!   pipe (never in argv or the environment, which other users can read in
//!   `/proc`), disables core dumps, marks the data as a password so clipboard
//!   managers keep it out of their history (`x-kde-passwordManagerHint`),
//!   serves pastes until the clear time, then clears the clipboard **only if
//!   it still holds that value**. It exits as soon as another program takes
//!   the clipboard over.
//! - **OSC 52** when there is no display (SSH, a console): the escape
//!   sequence that asks the user's terminal to set its own clipboard, written
//!   to the controlling terminal. A helper keeps the terminal open and sends
//!   the clear sequence at the clear time; the terminal cannot be asked what
//!   it holds, so that clear is unconditional (see docs/security.md).
//!
//! This module never logs, prints or puts into an error message the value it
//! copies.

mod helper;
mod osc52;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use helper::{HoldOptions, hold};
pub use osc52::{osc52_clear_sequence, osc52_sequence};

/// The hidden subcommand that runs the helper.
pub const HOLD_COMMAND: &str = "__clipboard-hold";

/// How long `copy` waits for the helper to own the clipboard.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a copy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The desktop clipboard (X11 or Wayland), held by the helper.
    Display,
    /// An OSC 52 escape written to the controlling terminal.
    Osc52,
}

impl Via {
    /// `display` or `osc52` (the JSON and helper-argument spelling).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Display => "display",
            Self::Osc52 => "osc52",
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Display => "the clipboard",
            Self::Osc52 => "the terminal's clipboard (OSC 52)",
        })
    }
}

/// A successful copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub via: Via,
    /// When the value will be cleared (if still there); None: never.
    pub clear_after: Option<Duration>,
}

/// Why nothing was copied. No message ever contains the value.
#[derive(Debug, thiserror::Error)]
pub enum ClipboardError {
    /// Neither a display nor a terminal to send OSC 52 to.
    #[error(
        "no clipboard to copy to: {display}, and {tty}; run this in a desktop session (DISPLAY or WAYLAND_DISPLAY set) or in a terminal, or print the value with `openk get`"
    )]
    Unavailable { display: String, tty: String },
    /// The value went to the terminal (OSC 52), but no helper could be
    /// started to clear it later, so it was taken back at once.
    #[error(
        "cannot arrange the clipboard clear ({0}), so nothing was left on the clipboard; copy with `--clear-after 0`, or print the value with `openk get`"
    )]
    Helper(String),
}

/// Copies `value` to the clipboard and arranges for it to be cleared after
/// `clear_after` (None or zero: never), if it is still there then.
///
/// Uses the display when DISPLAY or WAYLAND_DISPLAY is set and the helper
/// can take the clipboard there, otherwise OSC 52 on the controlling
/// terminal. The helper is the current executable run as
/// `openk __clipboard-hold`, so this works only from the `openk` binary.
///
/// # Errors
/// [`ClipboardError::Unavailable`] when there is neither a usable display nor
/// a controlling terminal; [`ClipboardError::Helper`] when OSC 52 worked but
/// the clear could not be arranged.
pub fn copy(value: &str, clear_after: Option<Duration>) -> Result<Copied, ClipboardError> {
    let clear_after = clear_after.filter(|d| !d.is_zero());
    let display_problem = if has_display() {
        match copy_to_display(value, clear_after) {
            Ok(()) => {
                return Ok(Copied {
                    via: Via::Display,
                    clear_after,
                });
            }
            Err(e) => e,
        }
    } else {
        "neither DISPLAY nor WAYLAND_DISPLAY is set".to_owned()
    };
    tracing::debug!(problem = %display_problem, "no display clipboard; trying OSC 52");
    copy_with_osc52(value, clear_after, display_problem)?;
    Ok(Copied {
        via: Via::Osc52,
        clear_after,
    })
}

/// Whether a desktop session is announced (the helper checks it can open it).
fn has_display() -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

fn copy_to_display(value: &str, clear_after: Option<Duration>) -> Result<(), String> {
    let mut child = spawn_helper(Via::Display, clear_after)?;
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(value.as_bytes()),
        None => Err(std::io::Error::other("no pipe")),
    };
    // A helper that failed early says why on stdout; that beats EPIPE.
    let result = await_helper(&mut child).and_then(|()| {
        written.map_err(|e| format!("cannot hand the value to the clipboard helper: {e}"))
    });
    // The first stage exits at once; reaping it here leaves no zombie, and
    // the detached second stage is reparented to init.
    let _ = child.wait();
    result
}

fn copy_with_osc52(
    value: &str,
    clear_after: Option<Duration>,
    display_problem: String,
) -> Result<(), ClipboardError> {
    let unavailable = |tty: String| ClipboardError::Unavailable {
        display: display_problem.clone(),
        tty,
    };
    let mut tty = osc52::open_tty().map_err(|e| {
        unavailable(format!(
            "there is no terminal to send OSC 52 to (/dev/tty: {e})"
        ))
    })?;
    osc52::write_sequence(&mut tty, value)
        .map_err(|e| unavailable(format!("cannot write to the terminal: {e}")))?;
    if clear_after.is_some() {
        let result = spawn_helper(Via::Osc52, clear_after).and_then(|mut child| {
            drop(child.stdin.take());
            let result = await_helper(&mut child);
            let _ = child.wait();
            result
        });
        if let Err(e) = result {
            // The value is on the clipboard; without the helper it stays
            // there. Take it back rather than leave it uncleared.
            let _ = osc52::write_to(&mut tty, osc52_clear_sequence());
            return Err(ClipboardError::Helper(e));
        }
    }
    Ok(())
}

/// Starts `openk __clipboard-hold` (stage one, which starts the detached
/// stage two and exits). stdin carries the value, stdout the status line.
fn spawn_helper(via: Via, clear_after: Option<Duration>) -> Result<Child, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the openk executable for the clipboard helper: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg(HOLD_COMMAND)
        .arg("--via")
        .arg(via.as_str())
        .arg("--clear-after-ms")
        .arg(clear_after.map_or(0, |d| d.as_millis().max(1)).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir("/");
    // The helper needs no credential: keep the master password and the
    // Secret Key out of its environment.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OPENK_") {
            cmd.env_remove(&key);
        }
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start the clipboard helper: {e}"))
}

/// Reads the helper's status line: `ok`, or `error: WHY`. Stage one may
/// first say `pid N` (stage two's), used to stop a helper that hangs.
fn await_helper(child: &mut Child) -> Result<(), String> {
    let Some(mut out) = child.stdout.take() else {
        return Err("the helper has no stdout".to_owned());
    };
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let mut buf = Vec::new();
    let mut holder: Option<i32> = None;
    loop {
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim().to_owned();
            if line == "ok" {
                return Ok(());
            } else if let Some(why) = line.strip_prefix("error: ") {
                return Err(why.to_owned());
            } else if let Some(pid) = line.strip_prefix("pid ") {
                holder = pid.parse().ok();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            stop(holder);
            return Err(format!(
                "the clipboard helper did not answer within {} s",
                HELPER_TIMEOUT.as_secs()
            ));
        }
        if !readable_within(&out, left) {
            continue;
        }
        let mut chunk = [0u8; 512];
        match out.read(&mut chunk) {
            Ok(0) => {
                return Err("the clipboard helper exited without taking the clipboard".to_owned());
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read from the clipboard helper: {e}")),
        }
    }
}

fn readable_within(fd: &impl std::os::fd::AsFd, wait: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let timeout = Timespec {
        tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
}

fn stop(pid: Option<i32>) {
    if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}
