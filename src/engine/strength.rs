//! How hard a new master password is to guess, by zxcvbn's estimate (a
//! cracking model of dictionaries, names, keyboard patterns, dates, repeats,
//! sequences and l33t), used by every front end that asks for one.
//!
//! The thresholds (docs/security.md, "Master password strength"):
//! - below 10^8 estimated guesses a new master password is **refused**
//!   unless the user insists (`--weak-password`);
//! - below 10^12 it is accepted with a **warning**.
//!
//! The master password alone does not protect the vault (the Secret Key is
//! mixed into every derivation), but it is all that protects a stolen
//! device's copy once the Secret Key is on it too, and Argon2id only slows
//! each guess; the floor keeps passwords out of the top of every list.

/// Below this many estimated guesses (log10) a new password is refused.
pub const REFUSE_BELOW_LOG10: f64 = 8.0;
/// Below this many estimated guesses (log10) a new password gets a warning.
pub const WARN_BELOW_LOG10: f64 = 12.0;

/// zxcvbn's time grows with the length; characters past this many only add
/// strength, so the estimate of the prefix is a safe lower bound.
const ESTIMATE_CHARS: usize = 100;

/// What a front end does with a new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Below [`REFUSE_BELOW_LOG10`]: refused unless the user insists.
    TooWeak,
    /// Below [`WARN_BELOW_LOG10`]: accepted with a warning.
    Weak,
    /// Good enough.
    Ok,
}

/// The estimate for one password.
#[derive(Debug, Clone)]
pub struct Strength {
    /// log10 of the estimated number of guesses (0 for an empty password).
    pub guesses_log10: f64,
    /// The same in bits (log2 of the guesses), for a meter.
    pub bits: f64,
    /// `very weak`, `weak`, `good` or `strong`.
    pub label: &'static str,
    pub verdict: Verdict,
    /// zxcvbn's warning about the pattern it found, if any.
    pub warning: Option<String>,
    /// zxcvbn's first suggestion, if any.
    pub suggestion: Option<String>,
}

impl Strength {
    /// One line for the user: label, estimate, and what zxcvbn noticed.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} (about 10^{:.0} guesses)",
            self.label,
            self.guesses_log10.max(0.0)
        );
        if let Some(w) = &self.warning {
            s.push_str(": ");
            s.push_str(w);
        }
        s
    }
}

/// Estimates `password`; `context` are words an attacker would try first
/// (the product name, an email, a user name).
#[must_use]
pub fn estimate(password: &str, context: &[&str]) -> Strength {
    if password.is_empty() {
        return Strength {
            guesses_log10: 0.0,
            bits: 0.0,
            label: "very weak",
            verdict: Verdict::TooWeak,
            warning: None,
            suggestion: None,
        };
    }
    let prefix: String = password.chars().take(ESTIMATE_CHARS).collect();
    let mut inputs = vec!["openk"];
    inputs.extend_from_slice(context);
    let e = zxcvbn::zxcvbn(&prefix, &inputs);
    let log10 = e.guesses_log10().max(0.0);
    let verdict = if log10 < REFUSE_BELOW_LOG10 {
        Verdict::TooWeak
    } else if log10 < WARN_BELOW_LOG10 {
        Verdict::Weak
    } else {
        Verdict::Ok
    };
    let label = match verdict {
        Verdict::TooWeak => "very weak",
        Verdict::Weak => "weak",
        Verdict::Ok if log10 < 16.0 => "good",
        Verdict::Ok => "strong",
    };
    let feedback = e.feedback();
    Strength {
        guesses_log10: log10,
        bits: log10 * std::f64::consts::LOG2_10,
        label,
        verdict,
        warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
        suggestion: feedback
            .and_then(|f| f.suggestions().first())
            .map(ToString::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_common_passwords_are_refused() {
        for pw in [
            "",
            "a",
            "password",
            "Password1",
            "qwerty123",
            "letmein!",
            "openk2024",
        ] {
            assert_eq!(estimate(pw, &[]).verdict, Verdict::TooWeak, "{pw}");
        }
    }

    #[test]
    fn a_famous_passphrase_is_not_rated_189_bits() {
        let s = estimate("correct horse battery staple 42", &[]);
        assert!(s.bits < 100.0, "{}", s.bits);
    }

    #[test]
    fn random_passwords_and_passphrases_are_ok() {
        for pw in [
            "test-master-pw-Q7zX9k",
            "vivid-ocean-tractor-mumble-glacier",
        ] {
            let s = estimate(pw, &[]);
            assert_eq!(s.verdict, Verdict::Ok, "{pw}: {}", s.guesses_log10);
        }
    }

    #[test]
    fn context_words_count_against_the_password() {
        let plain = estimate("xkq7vbnm29", &[]);
        let known = estimate("xkq7vbnm29", &["xkq7vbnm29"]);
        assert!(known.guesses_log10 < plain.guesses_log10);
    }
}
