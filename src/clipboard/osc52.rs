//! OSC 52: the terminal escape that asks the user's terminal emulator to set
//! its (local) clipboard. It travels with the rest of the terminal output, so
//! over SSH the copy lands on the user's machine, not on the server.
//!
//! The sequence is `ESC ] 52 ; c ; <base64 of the UTF-8 value> BEL`; an empty
//! payload asks the terminal to clear the clipboard. Terminals cannot be asked
//! what the clipboard holds (reading with `?` is disabled almost everywhere),
//! so a clear through OSC 52 cannot check that the value is still there.

use std::fs::File;
use std::io::Write;

use base64::Engine as _;
use zeroize::Zeroizing;

/// The controlling terminal.
const TTY: &str = "/dev/tty";

/// The bytes that ask the terminal to put `value` on the clipboard.
///
/// The result holds the value (base64 is an encoding, not a cipher): never
/// log it. [`copy`](super::copy) itself writes through a zeroized buffer.
#[must_use]
pub fn osc52_sequence(value: &str) -> String {
    let mut out = String::new();
    push_sequence(value, &mut out);
    out
}

/// Appends the OSC 52 sequence for `value` to `out`.
pub(crate) fn push_sequence(value: &str, out: &mut String) {
    out.reserve(8 + value.len().div_ceil(3) * 4);
    out.push_str("\x1b]52;c;");
    base64::engine::general_purpose::STANDARD.encode_string(value.as_bytes(), out);
    out.push('\x07');
}

/// Writes the OSC 52 sequence for `value` to the terminal, building it in
/// a buffer that is zeroized afterwards.
pub(crate) fn write_sequence(tty: &mut File, value: &str) -> std::io::Result<()> {
    let mut seq = Zeroizing::new(String::new());
    push_sequence(value, &mut seq);
    write_to(tty, &seq)
}

/// The bytes that ask the terminal to clear the clipboard (empty payload).
#[must_use]
pub fn osc52_clear_sequence() -> &'static str {
    "\x1b]52;c;\x07"
}

/// Opens the controlling terminal for writing.
///
/// # Errors
/// When the process has no controlling terminal (a pipe, cron, CI).
pub(crate) fn open_tty() -> std::io::Result<File> {
    std::fs::OpenOptions::new().write(true).open(TTY)
}

/// Writes `bytes` to the terminal in one call and flushes.
pub(crate) fn write_to(tty: &mut File, bytes: &str) -> std::io::Result<()> {
    tty.write_all(bytes.as_bytes())?;
    tty.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_esc_52_c_base64_bel() {
        assert_eq!(osc52_sequence("hunter2"), "\x1b]52;c;aHVudGVyMg==\x07");
        assert_eq!(osc52_sequence(""), "\x1b]52;c;\x07");
    }

    #[test]
    fn newlines_and_utf8_are_base64_of_the_utf8_bytes() {
        let value = "line 1\nligne 2 — é 🔑\r\n";
        let seq = osc52_sequence(value);
        let payload = seq
            .strip_prefix("\x1b]52;c;")
            .and_then(|s| s.strip_suffix('\x07'))
            .expect("framed");
        // Only base64 characters between the frame: no raw newline or ESC
        // that a terminal could act on.
        assert!(
            payload
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .expect("base64");
        assert_eq!(decoded, value.as_bytes());
    }

    #[test]
    fn clear_is_an_empty_payload() {
        assert_eq!(osc52_clear_sequence().as_bytes(), b"\x1b]52;c;\x07");
    }
}
