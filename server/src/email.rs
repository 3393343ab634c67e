//! The one rule that turns what a user typed as an email into the account
//! name the server stores and the client sends (docs/api.md, "Emails"):
//!
//! 1. leading and trailing whitespace is removed;
//! 2. the text is put in NFD, fully case-folded (Unicode `CaseFolding.txt`,
//!    statuses C and F: `ß` → `ss`, `ﬁ` → `fi`, Kelvin sign → `k`), and put
//!    in NFC — canonically equivalent spellings (NFC, NFD) and spellings that
//!    differ only in case are one account;
//! 3. refused: default-ignorable code points (zero-width spaces and joiners,
//!    soft hyphens, variation selectors…), bidi controls (LRM, RLO, isolates
//!    …), other controls and whitespace inside; and anything that is not
//!    `local@domain` with both parts non-empty, or longer than 254 bytes.
//!
//! On an email that is already lower-case ASCII the rule is the identity,
//! so accounts made before it keep their name. The client (`openk`) calls
//! the same function before it sends an email anywhere.

use std::fmt;

use icu_casemap::CaseMapper;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::CodePointSetData;
use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint};

/// The longest email the server stores, in bytes (after normalising).
pub const MAX_EMAIL: usize = 254;

/// Why an email is refused; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailError {
    /// An invisible or direction-changing code point (named by its number).
    Invisible(char),
    /// A control character or whitespace inside the address.
    Control(char),
    /// Not `local@domain`, or too long.
    Shape,
}

impl fmt::Display for EmailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invisible(c) => write!(
                f,
                "email contains the invisible or direction-changing character U+{:04X}; type the address without it",
                u32::from(*c)
            ),
            Self::Control(c) => write!(
                f,
                "email contains a control or space character (U+{:04X}); type the address without it",
                u32::from(*c)
            ),
            Self::Shape => write!(
                f,
                "email must look like name@example.org (at most {MAX_EMAIL} bytes)"
            ),
        }
    }
}

impl std::error::Error for EmailError {}

/// Normalises an email by the rule above.
///
/// # Errors
/// [`EmailError`] for a refused code point or a malformed address.
pub fn normalize(raw: &str) -> Result<String, EmailError> {
    let trimmed = raw.trim();
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let bidi = CodePointSetData::new::<BidiControl>();
    for c in trimmed.chars() {
        if ignorable.contains(c) || bidi.contains(c) {
            return Err(EmailError::Invisible(c));
        }
        if c.is_control() || c.is_whitespace() {
            return Err(EmailError::Control(c));
        }
    }
    let nfd = DecomposingNormalizerBorrowed::new_nfd().normalize(trimmed);
    let folded = CaseMapper::new().fold_string(&nfd).into_owned();
    let email = ComposingNormalizerBorrowed::new_nfc()
        .normalize(&folded)
        .into_owned();
    let shaped = email.len() <= MAX_EMAIL
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if shaped {
        Ok(email)
    } else {
        Err(EmailError::Shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_ascii_is_unchanged() {
        for e in ["ada@example.org", "a.b+c_d-e@sub.example.co", "x@y"] {
            assert_eq!(normalize(e).as_deref(), Ok(e));
        }
        assert_eq!(
            normalize("  Ada@Example.ORG ").as_deref(),
            Ok("ada@example.org")
        );
    }

    #[test]
    fn nfc_and_nfd_spellings_are_one_email() {
        let nfc = "jos\u{e9}@example.org";
        let nfd = "jose\u{301}@example.org";
        assert_eq!(normalize(nfc), normalize(nfd));
        assert_eq!(normalize(nfd).as_deref(), Ok(nfc));
        assert_eq!(normalize("JOSE\u{301}@EXAMPLE.ORG").as_deref(), Ok(nfc));
    }

    #[test]
    fn case_folding_is_full_not_lower_casing() {
        // `to_lowercase` keeps ß and the ligature; full folding does not.
        assert_eq!(
            normalize("Stra\u{df}e@example.org").as_deref(),
            Ok("strasse@example.org")
        );
        assert_eq!(
            normalize("STRASSE@example.org").as_deref(),
            Ok("strasse@example.org")
        );
        assert_eq!(
            normalize("\u{fb01}@example.org").as_deref(),
            Ok("fi@example.org")
        );
        assert_eq!(
            normalize("\u{212a}@example.org").as_deref(),
            Ok("k@example.org")
        );
        // Final sigma and sigma are one letter.
        assert_eq!(normalize("\u{3a3}@x"), normalize("\u{3c2}@x"));
    }

    #[test]
    fn invisible_and_bidi_code_points_are_refused() {
        for c in [
            '\u{200b}', '\u{200d}', '\u{ad}', '\u{feff}', '\u{fe0f}', '\u{2060}',
        ] {
            let e = format!("ada{c}@example.org");
            assert_eq!(normalize(&e), Err(EmailError::Invisible(c)), "{c:?}");
        }
        for c in ['\u{200e}', '\u{202e}', '\u{2066}', '\u{61c}'] {
            let e = format!("ada@example{c}.org");
            assert_eq!(normalize(&e), Err(EmailError::Invisible(c)), "{c:?}");
        }
        let message = normalize("ada\u{200b}@example.org")
            .expect_err("refused")
            .to_string();
        assert!(message.contains("U+200B"), "{message}");
        assert!(message.contains("invisible"), "{message}");
    }

    #[test]
    fn controls_spaces_and_bad_shapes_are_refused() {
        assert_eq!(normalize("a b@x"), Err(EmailError::Control(' ')));
        assert_eq!(normalize("a\u{1b}@x"), Err(EmailError::Control('\u{1b}')));
        for e in [
            "",
            "ada",
            "@x",
            "a@",
            "a@b@c",
            &format!("{}@x", "a".repeat(260)),
        ] {
            assert_eq!(normalize(e), Err(EmailError::Shape), "{e:?}");
        }
        // Right-to-left letters are letters, not controls.
        assert!(normalize("\u{5d0}@example.org").is_ok());
    }
}
