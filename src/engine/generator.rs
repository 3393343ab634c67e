//! Password and passphrase generation.
//!
//! This module owns the character sets used for generated passwords, the
//! bundled EFF large word list used for passphrases and the entropy figures
//! reported for generated secrets (passwords users type themselves are rated
//! by [`super::strength`]). All randomness comes from
//! [`OsRng`]; every draw is uniform over its set.

use std::sync::LazyLock;

use rand::Rng;
use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Lower-case letters.
pub const LOWERCASE: &str = "abcdefghijklmnopqrstuvwxyz";
/// Upper-case letters.
pub const UPPERCASE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Decimal digits.
pub const DIGITS: &str = "0123456789";
/// Symbols: ASCII punctuation that is safe to type on common layouts and is
/// not a quote, backslash, backtick, pipe or space (those cause trouble in
/// shells, config files and web forms).
pub const SYMBOLS: &str = "!@#$%^&*()-_=+[]{};:,.<>/?~";
/// Characters dropped when [`PasswordSpec::avoid_ambiguous`] is set: those
/// easily confused with one another when read or re-typed: zero / capital O /
/// small o, one / small L / capital i / pipe, and the three quote-like marks
/// (backtick, apostrophe, double quote). Brackets, braces, parentheses and
/// slashes are deliberately kept. (The pipe and the quotes are not in
/// [`SYMBOLS`] anyway; they are listed so the set is complete.)
pub const AMBIGUOUS: &str = "0Oo1lI|`'\"";

/// Accepted password lengths.
pub const PASSWORD_LENGTH_RANGE: std::ops::RangeInclusive<usize> = 4..=256;
/// Accepted passphrase word counts.
pub const PASSPHRASE_WORDS_RANGE: std::ops::RangeInclusive<usize> = 3..=32;
/// Number of words used from the bundled EFF large word list: its 7,776
/// words less the four with a hyphen (`drop-down`, `felt-tip`, `t-shirt`,
/// `yo-yo`), which would make a passphrase joined by `-` ambiguous.
pub const WORDLIST_LEN: usize = 7772;

/// Upper bound on rejection-sampling rounds. The worst case (length 4, all
/// four classes) accepts about 7% of candidates, so reaching this bound has
/// a probability far below 2^-1000; it only exists to rule out a hang.
const MAX_ATTEMPTS: usize = 10_000;

static WORDLIST_RAW: &str = include_str!("../../assets/wordlist-eff-large.txt");

/// The word list, split once. Accepts both plain `word` lines and the EFF
/// original `11111<TAB>word` format (the last field of each line is taken).
static WORDLIST: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    WORDLIST_RAW
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
        .collect()
});

/// Why generation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenError {
    /// Password length outside [`PASSWORD_LENGTH_RANGE`].
    #[error("password length {0} is out of range: expected 4 to 256 characters")]
    LengthOutOfRange(usize),
    /// Every character class is disabled.
    #[error(
        "no character class enabled: expected at least one of lowercase, uppercase, digits or symbols"
    )]
    NoCharacterClass,
    /// Passphrase word count outside [`PASSPHRASE_WORDS_RANGE`].
    #[error("passphrase word count {0} is out of range: expected 3 to 32 words")]
    WordCountOutOfRange(usize),
    /// Rejection sampling gave up (practically impossible) or the built-in
    /// word list is empty.
    #[error("could not generate a value meeting the requested constraints: try again")]
    GenerationFailed,
}

/// What a generated password must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordSpec {
    /// Number of characters, 4..=256.
    pub length: usize,
    /// Include (at least one of) [`SYMBOLS`].
    pub symbols: bool,
    /// Include (at least one of) [`DIGITS`].
    pub digits: bool,
    /// Include (at least one of) [`UPPERCASE`].
    pub uppercase: bool,
    /// Include (at least one of) [`LOWERCASE`].
    pub lowercase: bool,
    /// Leave out the [`AMBIGUOUS`] characters.
    pub avoid_ambiguous: bool,
}

impl Default for PasswordSpec {
    fn default() -> Self {
        Self {
            length: 20,
            symbols: true,
            digits: true,
            uppercase: true,
            lowercase: true,
            avoid_ambiguous: false,
        }
    }
}

impl PasswordSpec {
    /// The enabled character classes, ambiguous characters removed if asked.
    fn classes(&self) -> Vec<Vec<char>> {
        [
            (self.lowercase, LOWERCASE),
            (self.uppercase, UPPERCASE),
            (self.digits, DIGITS),
            (self.symbols, SYMBOLS),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, set)| {
            set.chars()
                .filter(|c| !(self.avoid_ambiguous && AMBIGUOUS.contains(*c)))
                .collect::<Vec<char>>()
        })
        .filter(|class| !class.is_empty())
        .collect()
    }

    /// Number of distinct characters a password may be drawn from.
    pub fn alphabet_size(&self) -> usize {
        self.classes().iter().map(Vec::len).sum()
    }
}

/// What a generated passphrase must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassphraseSpec {
    /// Number of words, 3..=32.
    pub words: usize,
    /// Placed between words (may be empty).
    pub separator: String,
    /// Upper-case the first letter of every word.
    pub capitalize: bool,
    /// Append one random digit to one randomly chosen word.
    pub include_number: bool,
}

impl Default for PassphraseSpec {
    fn default() -> Self {
        Self {
            words: 6,
            separator: "-".to_owned(),
            capitalize: false,
            include_number: false,
        }
    }
}

/// A generated secret and its entropy in bits (unrounded; rounding for
/// display is the caller's job).
#[derive(Debug)]
pub struct Generated {
    /// The password or passphrase.
    pub value: SecretString,
    /// Entropy of the generation process, in bits.
    pub entropy_bits: f64,
}

/// The bundled EFF large word list ([`WORDLIST_LEN`] lower-case words, no hyphens).
pub fn wordlist() -> &'static [&'static str] {
    WORDLIST.as_slice()
}

/// Entropy of a password drawn by [`password`]: `length * log2(alphabet)`.
///
/// Requiring every enabled class to appear (by rejecting and redrawing whole
/// candidates) removes a negligible amount: at the default 20 characters well
/// under 0.1 bit; even in the worst case (4 characters, all classes) under 4
/// bits. The figure reported is the unconditioned one.
pub fn password_entropy(spec: &PasswordSpec) -> f64 {
    spec.length as f64 * (spec.alphabet_size() as f64).log2()
}

/// Entropy of a passphrase drawn by [`passphrase`]: `words * log2(WORDLIST_LEN)`,
/// plus `log2(10) + log2(words)` for the digit and its position when
/// `include_number` is set. Capitalisation and the separator add nothing.
pub fn passphrase_entropy(spec: &PassphraseSpec) -> f64 {
    let words = spec.words as f64;
    let mut bits = words * (wordlist().len() as f64).log2();
    if spec.include_number {
        bits += 10f64.log2() + words.log2();
    }
    bits
}

/// Generates a random password: each character uniform over the union of
/// the enabled classes, the whole candidate redrawn until every enabled
/// class appears at least once.
///
/// # Errors
/// [`GenError::LengthOutOfRange`] for a length outside 4..=256,
/// [`GenError::NoCharacterClass`] when every class is disabled.
pub fn password(spec: &PasswordSpec) -> Result<Generated, GenError> {
    if !PASSWORD_LENGTH_RANGE.contains(&spec.length) {
        return Err(GenError::LengthOutOfRange(spec.length));
    }
    let classes = spec.classes();
    if classes.is_empty() {
        return Err(GenError::NoCharacterClass);
    }
    let alphabet: Vec<char> = classes.iter().flatten().copied().collect();
    let mut rng = OsRng;
    // All characters are ASCII: one byte each, so the buffer never regrows
    // (which would leave an unzeroized copy behind).
    let mut candidate = Zeroizing::new(String::with_capacity(spec.length));
    for _ in 0..MAX_ATTEMPTS {
        candidate.clear();
        for _ in 0..spec.length {
            let c = alphabet
                .choose(&mut rng)
                .ok_or(GenError::GenerationFailed)?;
            candidate.push(*c);
        }
        let complete = classes
            .iter()
            .all(|class| candidate.chars().any(|c| class.contains(&c)));
        if complete {
            return Ok(Generated {
                value: SecretString::from(candidate.as_str()),
                entropy_bits: password_entropy(spec),
            });
        }
    }
    Err(GenError::GenerationFailed)
}

/// Generates a passphrase of words drawn uniformly (with replacement) from
/// the EFF large word list.
///
/// # Errors
/// [`GenError::WordCountOutOfRange`] for a word count outside 3..=32.
pub fn passphrase(spec: &PassphraseSpec) -> Result<Generated, GenError> {
    if !PASSPHRASE_WORDS_RANGE.contains(&spec.words) {
        return Err(GenError::WordCountOutOfRange(spec.words));
    }
    let list = wordlist();
    let mut rng = OsRng;
    let number = spec
        .include_number
        .then(|| (rng.gen_range(0..spec.words), rng.gen_range(0..10u32)));

    let longest = list.iter().map(|w| w.len()).max().unwrap_or(0);
    let capacity = spec
        .words
        .saturating_mul(longest + 1)
        .saturating_add((spec.words - 1).saturating_mul(spec.separator.len()));
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    for i in 0..spec.words {
        if i > 0 {
            out.push_str(&spec.separator);
        }
        let word = list.choose(&mut rng).ok_or(GenError::GenerationFailed)?;
        let mut chars = word.chars();
        if spec.capitalize
            && let Some(first) = chars.next()
        {
            out.extend(first.to_uppercase());
        }
        out.push_str(chars.as_str());
        if let Some((at, digit)) = number
            && at == i
        {
            out.extend(char::from_digit(digit, 10));
        }
    }
    Ok(Generated {
        value: SecretString::from(out.as_str()),
        entropy_bits: passphrase_entropy(spec),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;

    fn gen_pw(spec: &PasswordSpec) -> String {
        password(spec).unwrap().value.expose_secret().to_owned()
    }

    #[test]
    fn wordlist_has_7772_unique_lowercase_words() {
        let list = wordlist();
        assert_eq!(list.len(), WORDLIST_LEN);
        let unique: HashSet<_> = list.iter().collect();
        assert_eq!(unique.len(), WORDLIST_LEN);
        for w in list {
            assert!(!w.is_empty());
            assert!(w.chars().all(|c| c.is_ascii_lowercase()), "{w:?}");
        }
    }

    #[test]
    fn consts_are_consistent() {
        for set in [LOWERCASE, UPPERCASE, DIGITS, SYMBOLS] {
            let unique: HashSet<char> = set.chars().collect();
            assert_eq!(unique.len(), set.len(), "{set}");
            assert!(set.is_ascii());
        }
        assert_eq!(LOWERCASE.len(), 26);
        assert_eq!(UPPERCASE.len(), 26);
        assert_eq!(DIGITS.len(), 10);
        assert_eq!(SYMBOLS.len(), 27);
        assert!(!SYMBOLS.contains(['\'', '"', '`', '\\', '|', ' ']));
    }

    #[test]
    fn default_spec() {
        let spec = PasswordSpec::default();
        assert_eq!(spec.length, 20);
        assert!(spec.symbols && spec.digits && spec.uppercase && spec.lowercase);
        assert!(!spec.avoid_ambiguous);
        let spec = PassphraseSpec::default();
        assert_eq!(spec.words, 6);
        assert_eq!(spec.separator, "-");
        assert!(!spec.capitalize && !spec.include_number);
    }

    #[test]
    fn password_lengths() {
        for length in [4, 5, 8, 20, 64, 255, 256] {
            let spec = PasswordSpec {
                length,
                ..PasswordSpec::default()
            };
            assert_eq!(gen_pw(&spec).chars().count(), length);
        }
    }

    #[test]
    fn every_enabled_class_present() {
        // Length 4 with all classes is the hardest case for rejection sampling.
        for length in [4, 5, 20] {
            let spec = PasswordSpec {
                length,
                ..PasswordSpec::default()
            };
            for _ in 0..200 {
                let pw = gen_pw(&spec);
                assert!(pw.chars().any(|c| LOWERCASE.contains(c)), "{pw}");
                assert!(pw.chars().any(|c| UPPERCASE.contains(c)), "{pw}");
                assert!(pw.chars().any(|c| DIGITS.contains(c)), "{pw}");
                assert!(pw.chars().any(|c| SYMBOLS.contains(c)), "{pw}");
                assert!(pw.chars().all(|c| LOWERCASE.contains(c)
                    || UPPERCASE.contains(c)
                    || DIGITS.contains(c)
                    || SYMBOLS.contains(c)));
            }
        }
    }

    #[test]
    fn no_ambiguous_when_asked() {
        let spec = PasswordSpec {
            length: 256,
            avoid_ambiguous: true,
            ..PasswordSpec::default()
        };
        for _ in 0..20 {
            let pw = gen_pw(&spec);
            assert!(!pw.contains(|c| AMBIGUOUS.contains(c)), "{pw}");
        }
    }

    #[test]
    fn disabled_classes_absent() {
        let spec = PasswordSpec {
            length: 256,
            symbols: false,
            digits: false,
            ..PasswordSpec::default()
        };
        for _ in 0..20 {
            let pw = gen_pw(&spec);
            assert!(pw.chars().all(|c| c.is_ascii_alphabetic()), "{pw}");
        }
        let digits_only = PasswordSpec {
            length: 12,
            symbols: false,
            uppercase: false,
            lowercase: false,
            ..PasswordSpec::default()
        };
        assert!(gen_pw(&digits_only).chars().all(|c| c.is_ascii_digit()));
        let symbols_only = PasswordSpec {
            length: 12,
            digits: false,
            uppercase: false,
            lowercase: false,
            ..PasswordSpec::default()
        };
        assert!(gen_pw(&symbols_only).chars().all(|c| SYMBOLS.contains(c)));
    }

    #[test]
    fn passwords_differ() {
        let spec = PasswordSpec::default();
        let a: HashSet<String> = (0..50).map(|_| gen_pw(&spec)).collect();
        assert_eq!(a.len(), 50);
    }

    #[test]
    fn password_error_paths() {
        for length in [0, 1, 3, 257, usize::MAX] {
            let spec = PasswordSpec {
                length,
                ..PasswordSpec::default()
            };
            assert_eq!(
                password(&spec).unwrap_err(),
                GenError::LengthOutOfRange(length)
            );
        }
        let none = PasswordSpec {
            symbols: false,
            digits: false,
            uppercase: false,
            lowercase: false,
            ..PasswordSpec::default()
        };
        assert_eq!(password(&none).unwrap_err(), GenError::NoCharacterClass);
    }

    #[test]
    fn password_entropy_math() {
        let all = (LOWERCASE.len() + UPPERCASE.len() + DIGITS.len() + SYMBOLS.len()) as f64;
        let g = password(&PasswordSpec::default()).unwrap();
        assert!((g.entropy_bits - 20.0 * all.log2()).abs() < 1e-9);
        // 89 symbols: 20 * log2(89) ≈ 129.5 bits.
        assert!((g.entropy_bits - 129.5).abs() < 0.05, "{}", g.entropy_bits);

        let spec = PasswordSpec {
            avoid_ambiguous: true,
            ..PasswordSpec::default()
        };
        // 24 lower + 24 upper + 8 digits + 27 symbols.
        assert_eq!(spec.alphabet_size(), 83);
        let g = password(&spec).unwrap();
        assert!((g.entropy_bits - 20.0 * 83f64.log2()).abs() < 1e-9);

        let spec = PasswordSpec {
            length: 16,
            symbols: false,
            digits: false,
            uppercase: false,
            ..PasswordSpec::default()
        };
        assert!((password(&spec).unwrap().entropy_bits - 16.0 * 26f64.log2()).abs() < 1e-9);
    }

    #[test]
    fn passphrase_words_from_list() {
        let list: HashSet<&str> = wordlist().iter().copied().collect();
        for (words, sep) in [(3, "-"), (6, " "), (32, "_"), (5, "::")] {
            let spec = PassphraseSpec {
                words,
                separator: sep.to_owned(),
                ..PassphraseSpec::default()
            };
            let g = passphrase(&spec).unwrap();
            let parts: Vec<&str> = g.value.expose_secret().split(sep).collect();
            // Hyphenated list words (e.g. "t-shirt") split further under "-".
            if sep == "-" {
                assert!(parts.len() >= words);
            } else {
                assert_eq!(parts.len(), words);
                for p in parts {
                    assert!(list.contains(p), "{p}");
                }
            }
        }
    }

    #[test]
    fn passphrase_empty_separator() {
        let spec = PassphraseSpec {
            words: 4,
            separator: String::new(),
            ..PassphraseSpec::default()
        };
        let g = passphrase(&spec).unwrap();
        assert!(
            g.value
                .expose_secret()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
        );
    }

    #[test]
    fn passphrase_capitalize_and_number() {
        let list: HashSet<&str> = wordlist().iter().copied().collect();
        let spec = PassphraseSpec {
            words: 8,
            separator: " ".to_owned(),
            capitalize: true,
            include_number: true,
        };
        for _ in 0..50 {
            let g = passphrase(&spec).unwrap();
            let value = g.value.expose_secret();
            let parts: Vec<&str> = value.split(' ').collect();
            assert_eq!(parts.len(), 8);
            let mut with_digit = 0;
            for p in parts {
                assert!(p.starts_with(|c: char| c.is_ascii_uppercase()), "{p}");
                let digits = p.chars().filter(char::is_ascii_digit).count();
                let base = if digits > 0 {
                    with_digit += 1;
                    assert_eq!(digits, 1);
                    assert!(p.ends_with(|c: char| c.is_ascii_digit()));
                    &p[..p.len() - 1]
                } else {
                    p
                };
                assert!(list.contains(base.to_lowercase().as_str()), "{p}");
            }
            assert_eq!(with_digit, 1, "{value}");
        }
    }

    #[test]
    fn passphrase_error_paths() {
        for words in [0, 1, 2, 33, usize::MAX] {
            let spec = PassphraseSpec {
                words,
                ..PassphraseSpec::default()
            };
            assert_eq!(
                passphrase(&spec).unwrap_err(),
                GenError::WordCountOutOfRange(words)
            );
        }
    }

    #[test]
    fn passphrase_entropy_math() {
        let g = passphrase(&PassphraseSpec::default()).unwrap();
        assert!((g.entropy_bits - 6.0 * (WORDLIST_LEN as f64).log2()).abs() < 1e-9);
        assert!((g.entropy_bits - 77.5).abs() < 0.05, "{}", g.entropy_bits);
        let spec = PassphraseSpec {
            include_number: true,
            ..PassphraseSpec::default()
        };
        let g = passphrase(&spec).unwrap();
        let want = 6.0 * (WORDLIST_LEN as f64).log2() + 10f64.log2() + 6f64.log2();
        assert!((g.entropy_bits - want).abs() < 1e-9);
    }

    #[test]
    fn error_messages_style() {
        for e in [
            GenError::LengthOutOfRange(1),
            GenError::NoCharacterClass,
            GenError::WordCountOutOfRange(1),
            GenError::GenerationFailed,
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn generated_debug_redacts() {
        let g = password(&PasswordSpec::default()).unwrap();
        let dbg = format!("{g:?}");
        assert!(!dbg.contains(g.value.expose_secret()));
    }
}
