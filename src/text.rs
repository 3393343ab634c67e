//! Strings from a vault file or a server are data: before the CLI or the TUI
//! prints one, it goes through here so that no byte in it can move the cursor,
//! retitle the terminal, write to the clipboard (OSC 52) or reorder what is
//! shown around it (bidi overrides).
//!
//! What is replaced, by U+FFFD (�) so the user sees that something was there:
//! - C0 controls (U+0000–U+001F) and DEL, except the line breaks and tabs that
//!   [`text()`] keeps in multi-line values;
//! - C1 controls (U+0080–U+009F), which some terminals read as ESC sequences;
//! - bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069)
//!   and the directional marks U+200E, U+200F and U+061C;
//! - line and paragraph separators U+2028/U+2029 in one-line values.

use std::borrow::Cow;

/// What the user sees in place of a stripped character.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` is a bidi embedding, override, isolate or directional mark.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Whether `c` could steer a terminal or reorder the text around it.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// A one-line value (a name, a username, a device name, an error detail):
/// every unsafe character, line breaks and tabs included, is replaced.
pub fn line(s: &str) -> Cow<'_, str> {
    clean(s, |c| is_unsafe(c).then_some(REPLACEMENT))
}

/// A one-line value shown in a table or a TUI cell: as [`line()`], but tabs
/// and line breaks become spaces so that the columns stay where they are.
pub fn cell(s: &str) -> Cow<'_, str> {
    clean(s, |c| match c {
        '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' => Some(' '),
        c if is_unsafe(c) => Some(REPLACEMENT),
        _ => None,
    })
}

/// A multi-line value (notes, a revealed secret, a file's text): line feeds
/// and tabs stay, everything else unsafe is replaced (a lone `\r` too, which
/// would let a line overwrite the one before it).
pub fn text(s: &str) -> Cow<'_, str> {
    clean(s, |c| match c {
        '\n' | '\t' => None,
        c if is_unsafe(c) => Some(REPLACEMENT),
        _ => None,
    })
}

fn clean(s: &str, replace: impl Fn(char) -> Option<char>) -> Cow<'_, str> {
    if !s.chars().any(|c| replace(c).is_some()) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| replace(c).unwrap_or(c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in ["GitHub", "naïve café", "日本語", "👩‍💻 dev", ""] {
            assert!(matches!(line(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(line(s), s);
            assert_eq!(text(s), s);
        }
    }

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        let evil = "a\u{1b}[2Jb\u{1b}]52;c;aGk=\u{7}c\u{9b}31md\u{7f}";
        for out in [line(evil), cell(evil), text(evil)] {
            assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
            assert!(out.contains('a') && out.contains('d'));
        }
        assert_eq!(line("x\u{1b}y"), "x\u{FFFD}y");
    }

    #[test]
    fn bidi_overrides_are_replaced() {
        let s = "invoice\u{202E}fdp.exe\u{2066}\u{200F}";
        assert!(!line(s).chars().any(is_bidi_control));
        assert!(!text(s).chars().any(is_bidi_control));
    }

    #[test]
    fn line_breaks_depend_on_the_kind_of_value() {
        let s = "one\ntwo\tthree\rfour";
        assert_eq!(line(s), "one\u{FFFD}two\u{FFFD}three\u{FFFD}four");
        assert_eq!(cell(s), "one two three four");
        assert_eq!(text(s), "one\ntwo\tthree\u{FFFD}four");
        assert_eq!(line("a\u{2028}b"), "a\u{FFFD}b");
    }
}
