//! The clipboard as the TUI sees it: a trait, so that tests can record what
//! was copied instead of touching a real clipboard.

use std::time::Duration;

/// Copies a value, to be cleared after `clear_after` (if still there).
pub trait Clipboard: Send {
    /// Returns where the value went ("clipboard", "terminal (OSC 52)").
    ///
    /// # Errors
    /// A message for the status bar.
    fn copy(&mut self, value: &str, clear_after: Option<Duration>) -> Result<&'static str, String>;
}

/// The system clipboard (`crate::clipboard`).
#[derive(Debug, Default)]
pub struct SystemClipboard;

impl Clipboard for SystemClipboard {
    fn copy(&mut self, value: &str, clear_after: Option<Duration>) -> Result<&'static str, String> {
        system_copy(value, clear_after)
    }
}

/// What a [`FakeClipboard`] was given: values and clear-after times.
pub type Copies = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<Duration>)>>>;

/// Records copies, for tests.
#[derive(Debug, Default, Clone)]
pub struct FakeClipboard {
    pub copied: Copies,
}

impl Clipboard for FakeClipboard {
    fn copy(&mut self, value: &str, clear_after: Option<Duration>) -> Result<&'static str, String> {
        if let Ok(mut c) = self.copied.lock() {
            c.push((value.to_owned(), clear_after));
        }
        Ok("clipboard")
    }
}

fn system_copy(value: &str, clear_after: Option<Duration>) -> Result<&'static str, String> {
    match crate::clipboard::copy(value, clear_after) {
        Ok(c) => Ok(match c.via {
            crate::clipboard::Via::Display => "clipboard",
            crate::clipboard::Via::Osc52 => "terminal clipboard (OSC 52)",
        }),
        Err(e) => Err(e.to_string()),
    }
}
