//! The one text input every TUI field uses (unlock and create passwords,
//! search box, form fields, palette, rename, new-field label, passwd): a
//! string with a cursor and the readline keys. Moves and deletions go by
//! grapheme cluster, so an emoji or a ZWJ sequence is one step; widths are
//! measured in terminal cells with `unicode-width`. The text is wiped from
//! memory when dropped, since it may hold a secret.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;
use zeroize::Zeroizing;

/// What a key did to an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// The text changed.
    Changed,
    /// Only the cursor moved.
    Moved,
    /// Not a key for the input: the caller may use it.
    Ignored,
}

/// The readline keys, for the help overlay.
pub const KEYS_HELP: &str =
    "Text: ←→ C-a/C-e Home/End move · C-u/C-k cut to start/end · C-w cut a word";

/// A text field: its value and a cursor (a byte offset on a grapheme
/// boundary). `multiline` inputs take Enter as a newline and Up/Down
/// between their lines.
#[derive(Debug, Clone, Default)]
pub struct TextInput {
    text: Zeroizing<String>,
    cursor: usize,
    pub multiline: bool,
}

impl PartialEq for TextInput {
    fn eq(&self, other: &Self) -> bool {
        self.text.as_str() == other.text.as_str()
    }
}

impl TextInput {
    /// An empty single-line input.
    #[must_use]
    pub fn new() -> Self {
        Self::with_text("")
    }

    /// An input holding `text`, the cursor at its end.
    #[must_use]
    pub fn with_text(text: &str) -> Self {
        // Room up front, so typing a secret rarely leaves a reallocated copy behind.
        let mut s = Zeroizing::new(String::with_capacity(text.len().max(64)));
        s.push_str(text);
        Self {
            cursor: s.len(),
            text: s,
            multiline: false,
        }
    }

    /// A multi-line input holding `text`.
    #[must_use]
    pub fn multiline(text: &str) -> Self {
        Self {
            multiline: true,
            ..Self::with_text(text)
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The cursor as a byte offset into [`TextInput::as_str`].
    #[must_use]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The number of characters (for masks).
    #[must_use]
    pub fn chars(&self) -> usize {
        self.text.chars().count()
    }

    /// The number of characters before the cursor (for masks).
    #[must_use]
    pub fn chars_before_cursor(&self) -> usize {
        self.text[..self.cursor].chars().count()
    }

    /// Replaces the text; the cursor goes to the end.
    pub fn set(&mut self, text: &str) {
        self.text.clear();
        self.text.push_str(text);
        self.cursor = self.text.len();
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
    }

    /// Takes the text out, leaving the input empty.
    pub fn take(&mut self) -> Zeroizing<String> {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Inserts text at the cursor.
    pub fn insert(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i)
    }

    fn prev_boundary(&self) -> Option<usize> {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map(|(i, _)| i)
    }

    fn next_boundary(&self) -> Option<usize> {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map(|g| self.cursor + g.len())
    }

    /// Where Ctrl-W cuts back to: over spaces, then over the word before
    /// them (a newline right before the cursor goes alone).
    fn word_start(&self) -> usize {
        let before = &self.text[..self.cursor];
        if before.ends_with('\n') {
            return before.len() - 1;
        }
        let trimmed = before.trim_end_matches(|c: char| c.is_whitespace() && c != '\n');
        trimmed.rfind(char::is_whitespace).map_or(0, |i| {
            i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
        })
    }

    fn cut(&mut self, from: usize, to: usize) -> Edit {
        if from == to {
            return Edit::Moved;
        }
        self.text.replace_range(from..to, "");
        self.cursor = from;
        Edit::Changed
    }

    fn move_to(&mut self, at: usize) -> Edit {
        self.cursor = at;
        Edit::Moved
    }

    /// The line the cursor is on and its display column.
    fn line_and_column(&self) -> (usize, usize) {
        let line = self.text[..self.cursor].matches('\n').count();
        let col = self.text[self.line_start()..self.cursor].width();
        (line, col)
    }

    /// Moves to the line `delta` away at about the same column; false at
    /// the first or last line.
    fn move_line(&mut self, up: bool) -> bool {
        let (line, col) = self.line_and_column();
        let lines: Vec<&str> = self.text.split('\n').collect();
        let target = if up {
            match line.checked_sub(1) {
                Some(l) => l,
                None => return false,
            }
        } else if line + 1 < lines.len() {
            line + 1
        } else {
            return false;
        };
        let start: usize = lines[..target].iter().map(|l| l.len() + 1).sum();
        let mut at = start;
        let mut w = 0;
        for g in lines[target].graphemes(true) {
            if w + g.width() > col {
                break;
            }
            w += g.width();
            at += g.len();
        }
        self.cursor = at;
        true
    }

    /// Applies one key: the readline editing keys, Left/Right, Home/End,
    /// Backspace/Delete, characters; Enter and Up/Down in multi-line inputs.
    pub fn handle(&mut self, k: KeyEvent) -> Edit {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        match k.code {
            KeyCode::Char('a') if ctrl => self.move_to(self.line_start()),
            KeyCode::Char('e') if ctrl => self.move_to(self.line_end()),
            KeyCode::Home => self.move_to(self.line_start()),
            KeyCode::End => self.move_to(self.line_end()),
            KeyCode::Char('u') if ctrl => self.cut(self.line_start(), self.cursor),
            KeyCode::Char('k') if ctrl => self.cut(self.cursor, self.line_end()),
            KeyCode::Char('w') if ctrl => self.cut(self.word_start(), self.cursor),
            KeyCode::Backspace if alt || ctrl => self.cut(self.word_start(), self.cursor),
            KeyCode::Char('h') if ctrl => match self.prev_boundary() {
                Some(p) => self.cut(p, self.cursor),
                None => Edit::Moved,
            },
            KeyCode::Backspace => match self.prev_boundary() {
                Some(p) => self.cut(p, self.cursor),
                None => Edit::Moved,
            },
            KeyCode::Delete => match self.next_boundary() {
                Some(n) => self.cut(self.cursor, n),
                None => Edit::Moved,
            },
            KeyCode::Left => match self.prev_boundary() {
                Some(p) => self.move_to(p),
                None => Edit::Moved,
            },
            KeyCode::Right => match self.next_boundary() {
                Some(n) => self.move_to(n),
                None => Edit::Moved,
            },
            KeyCode::Up if self.multiline => {
                if self.move_line(true) {
                    Edit::Moved
                } else {
                    Edit::Ignored
                }
            }
            KeyCode::Down if self.multiline => {
                if self.move_line(false) {
                    Edit::Moved
                } else {
                    Edit::Ignored
                }
            }
            KeyCode::Enter if self.multiline => {
                self.insert("\n");
                Edit::Changed
            }
            KeyCode::Char(c) if !ctrl => {
                let mut buf = [0; 4];
                self.insert(c.encode_utf8(&mut buf));
                Edit::Changed
            }
            _ => Edit::Ignored,
        }
    }
}

/// A view of a one-line text in `width` cells that keeps the cursor in
/// sight: the visible part before the cursor, the grapheme under it (empty
/// at the end), and the visible part after it.
#[must_use]
pub fn window(text: &str, cursor: usize, width: usize) -> (String, String, String) {
    let cursor = cursor.min(text.len());
    let (before, rest) = text.split_at(cursor);
    let mut at = rest.graphemes(true);
    let under = at.next().unwrap_or("").to_owned();
    let after_all: String = at.collect();
    // One cell for the cursor itself.
    let room = width.saturating_sub(under.width().max(1));
    let mut shown_before: Vec<&str> = Vec::new();
    let mut used = 0;
    for g in before.graphemes(true).rev() {
        if used + g.width() > room {
            break;
        }
        used += g.width();
        shown_before.push(g);
    }
    shown_before.reverse();
    let mut after = String::new();
    for g in after_all.graphemes(true) {
        if used + g.width() > room {
            break;
        }
        used += g.width();
        after.push_str(g);
    }
    (shown_before.concat(), under, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn c(ch: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(ch), KeyModifiers::CONTROL)
    }

    fn typed(s: &str) -> TextInput {
        let mut t = TextInput::new();
        for ch in s.chars() {
            t.handle(k(KeyCode::Char(ch)));
        }
        t
    }

    #[test]
    fn readline_keys_edit_at_the_cursor() {
        let mut t = typed("hello brave world");
        assert_eq!(t.handle(c('w')), Edit::Changed);
        assert_eq!(t.as_str(), "hello brave ");
        t.handle(c('w'));
        assert_eq!(t.as_str(), "hello ");
        t.handle(c('a'));
        assert_eq!(t.cursor(), 0);
        t.handle(k(KeyCode::Char('>')));
        assert_eq!(t.as_str(), ">hello ");
        t.handle(k(KeyCode::Right));
        t.handle(c('k'));
        assert_eq!(t.as_str(), ">h");
        t.handle(c('e'));
        t.handle(k(KeyCode::Left));
        t.handle(c('u'));
        assert_eq!((t.as_str(), t.cursor()), ("h", 0));
        t.handle(k(KeyCode::Delete));
        assert!(t.is_empty());
        assert_eq!(t.handle(k(KeyCode::Backspace)), Edit::Moved);
        assert_eq!(t.handle(k(KeyCode::Tab)), Edit::Ignored);
        let mut t = typed("ab");
        t.handle(k(KeyCode::Home));
        t.handle(k(KeyCode::Delete));
        t.handle(k(KeyCode::End));
        t.handle(k(KeyCode::Backspace));
        assert!(t.is_empty());
    }

    #[test]
    fn graphemes_move_and_delete_as_one() {
        let family = "👨\u{200d}👩\u{200d}👧";
        let mut t = TextInput::with_text(&format!("a{family}b"));
        t.handle(k(KeyCode::Left));
        t.handle(k(KeyCode::Left));
        assert_eq!(t.cursor(), 1);
        t.handle(k(KeyCode::Delete));
        assert_eq!(t.as_str(), "ab");
        let mut t = TextInput::with_text("日本");
        t.handle(k(KeyCode::Backspace));
        assert_eq!(t.as_str(), "日");
    }

    #[test]
    fn multiline_takes_enter_and_moves_between_lines() {
        let mut t = TextInput::multiline("one");
        assert_eq!(t.handle(k(KeyCode::Enter)), Edit::Changed);
        t.insert("two");
        assert_eq!(t.as_str(), "one\ntwo");
        assert_eq!(t.handle(k(KeyCode::Up)), Edit::Moved);
        assert_eq!(t.handle(k(KeyCode::Up)), Edit::Ignored);
        t.handle(c('e'));
        assert_eq!(t.cursor(), 3);
        t.handle(k(KeyCode::Down));
        t.handle(c('u'));
        assert_eq!(t.as_str(), "one\n");
        t.handle(c('w'));
        assert_eq!(t.as_str(), "one");
        let mut single = TextInput::new();
        assert_eq!(single.handle(k(KeyCode::Enter)), Edit::Ignored);
        assert_eq!(single.handle(k(KeyCode::Up)), Edit::Ignored);
    }

    #[test]
    fn window_keeps_the_cursor_visible() {
        assert_eq!(
            window("abcdef", 6, 4),
            ("def".into(), String::new(), String::new())
        );
        assert_eq!(
            window("abcdef", 0, 4),
            (String::new(), "a".into(), "bcd".into())
        );
        assert_eq!(
            window("日本語", 3, 5),
            ("日".into(), "本".into(), String::new())
        );
    }
}
