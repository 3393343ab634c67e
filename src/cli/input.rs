//! Reading secrets from the user: the master password (stdin, environment or
//! a no-echo prompt) and field values given as `-` (standard input).
//!
//! Standard input is read with plain `read(2)` calls into wiped buffers
//! (`crate::secure_read`), never through `std::io::stdin()`'s buffer, which
//! is never wiped (and would swallow what a later `-` value needs).

use std::io::{BufRead, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};

use zeroize::Zeroizing;

use super::{CliError, CliResult, Global, exit};
use crate::engine::strength;
use crate::engine::{ExposeSecret, SecretString};

/// Environment variable with the master password, for scripts.
pub const PASSWORD_ENV: &str = "OPENK_PASSWORD";

static STDIN_VALUE_TAKEN: AtomicBool = AtomicBool::new(false);

fn locked(message: &str) -> CliError {
    CliError {
        code: exit::LOCKED,
        message: message.to_owned(),
    }
}

/// One line of standard input, without its line ending (nothing else trimmed).
fn stdin_line(what: &str) -> CliResult<SecretString> {
    let line = crate::secure_read::line(std::io::stdin(), crate::secure_read::MAX_SECRET)
        .map_err(|e| CliError::general(format!("cannot read {what} from standard input: {e}")))?
        .unwrap_or_default();
    if line.is_empty() {
        return Err(locked(&format!("no {what} on standard input")));
    }
    crate::secure_read::secret_string(&line)
        .map_err(|_| CliError::usage(format!("the {what} on standard input is not UTF-8")))
}

/// A secret on one line of standard input (a file's own password).
pub(super) fn stdin_secret(what: &str) -> CliResult<SecretString> {
    stdin_line(what)
}

pub(super) fn prompt(text: &str) -> CliResult<SecretString> {
    let answer = Zeroizing::new(
        rpassword::prompt_password(text)
            .map_err(|e| locked(&format!("cannot read the password from the terminal: {e}")))?,
    );
    Ok(SecretString::from(answer.as_str().to_owned()))
}

/// The password in environment variable `var`, if set; an empty one is
/// refused before any key derivation runs (it is never the right password).
fn env_password(var: &str) -> CliResult<Option<SecretString>> {
    match std::env::var(var) {
        Ok(p) if p.is_empty() => Err(locked(&format!(
            "{var} is set but empty; put the master password in it, or unset it to be asked"
        ))),
        Ok(p) => Ok(Some(SecretString::from(p))),
        Err(_) => Ok(None),
    }
}

pub(super) fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The master password of an existing vault.
pub fn master_password(g: &Global, prompt_text: &str) -> CliResult<SecretString> {
    if g.password_stdin {
        return stdin_line("master password");
    }
    if let Some(p) = env_password(PASSWORD_ENV)? {
        return Ok(p);
    }
    if interactive() {
        return prompt(prompt_text);
    }
    Err(locked(
        "the vault is locked and there is no terminal to ask for the master password; \
         set OPENK_PASSWORD or pass --password-stdin",
    ))
}

/// A new master password: asked twice on a terminal, with strength feedback;
/// taken once from stdin (`from_stdin`) or `env`.
/// A password that zxcvbn rates below [`strength::REFUSE_BELOW_LOG10`] is
/// refused (exit 2) unless `allow_weak` (`--weak-password`); one below
/// [`strength::WARN_BELOW_LOG10`] gets a warning.
pub fn new_password(
    from_stdin: bool,
    env: Option<&str>,
    what: &str,
    allow_weak: bool,
) -> CliResult<SecretString> {
    if from_stdin {
        let p = stdin_line(what)?;
        check_new_password(&p, what, allow_weak)?;
        return Ok(p);
    }
    if let Some(var) = env
        && let Some(p) = env_password(var)?
    {
        check_new_password(&p, what, allow_weak)?;
        return Ok(p);
    }
    if !interactive() {
        return Err(locked(&format!(
            "no terminal to ask for the {what}; set {} or pass --password-stdin",
            env.unwrap_or("OPENK_PASSWORD")
        )));
    }
    for _ in 0..3 {
        let first = prompt(&format!("New {what}: "))?;
        if first.expose_secret().is_empty() {
            eprintln!("The {what} cannot be empty.");
            continue;
        }
        let strength = strength::estimate(first.expose_secret(), &[]);
        eprintln!("Strength: {}", strength.describe());
        match strength.verdict {
            strength::Verdict::TooWeak if !allow_weak => {
                eprintln!(
                    "That is too easy to guess; choose another. A passphrase of 5+ random words \
                     (`openk gen --words 5`) is strong and easy to remember \
                     (--weak-password keeps a weak one)."
                );
                continue;
            }
            strength::Verdict::Ok => {}
            _ => eprintln!(
                "That is easy to guess. A passphrase of 5+ random words (`openk gen --words 5`) is stronger and easy to remember."
            ),
        }
        let again = prompt(&format!("Repeat the {what}: "))?;
        if again.expose_secret() == first.expose_secret() {
            return Ok(first);
        }
        eprintln!("The two entries differ; try again.");
    }
    Err(CliError::usage(format!("the {what} was not confirmed")))
}

/// The strength rule for a new password that was not typed at a prompt.
fn check_new_password(password: &SecretString, what: &str, allow_weak: bool) -> CliResult {
    let s = strength::estimate(password.expose_secret(), &[]);
    match s.verdict {
        strength::Verdict::TooWeak if !allow_weak => Err(CliError::usage(format!(
            "the new {what} is too easy to guess: {}; OpenK needs at least 10^{:.0} guesses. \
             Choose a longer one (`openk gen --words 5` makes a strong passphrase), \
             or pass --weak-password to use it anyway",
            s.describe(),
            strength::REFUSE_BELOW_LOG10
        ))),
        strength::Verdict::Ok => Ok(()),
        _ => {
            eprintln!(
                "warning: the new {what} is easy to guess: {}; a passphrase of 5+ random words \
                 (`openk gen --words 5`) is stronger",
                s.describe()
            );
            Ok(())
        }
    }
}

/// Resolves a flag value: `-` reads standard input (once per command); a
/// single-line value loses its trailing newline.
pub fn value_or_stdin(flag: &str, value: &str, multiline: bool) -> CliResult<Zeroizing<String>> {
    if value != "-" {
        return Ok(Zeroizing::new(value.to_owned()));
    }
    stdin_value(flag, multiline)
}

/// All of standard input as a flag's value (once per command); a
/// single-line value loses its trailing line breaks, a multi-line one its
/// last `\n`.
pub(super) fn stdin_value(flag: &str, multiline: bool) -> CliResult<Zeroizing<String>> {
    if STDIN_VALUE_TAKEN.swap(true, Ordering::SeqCst) {
        return Err(CliError::usage(format!(
            "{flag} -: standard input was already used by another flag; give only one value as -"
        )));
    }
    let bytes = crate::secure_read::to_end(std::io::stdin(), crate::secure_read::MAX_SECRET)
        .map_err(|e| CliError::general(format!("cannot read {flag} from standard input: {e}")))?;
    let text = crate::secure_read::zeroizing_string(&bytes)
        .map_err(|_| CliError::usage(format!("{flag} -: standard input is not UTF-8 text")))?;
    Ok(trim_line_end(text, multiline))
}

/// Drops the line break a file or a pipe ends with: all trailing `\n` and
/// `\r` of a single-line value, the last `\n` of a multi-line one.
pub(super) fn trim_line_end(mut text: Zeroizing<String>, multiline: bool) -> Zeroizing<String> {
    let trimmed_len = if multiline {
        text.strip_suffix('\n').map_or(text.len(), str::len)
    } else {
        text.trim_end_matches(['\n', '\r']).len()
    };
    text.truncate(trimmed_len);
    text
}

/// Asks for a flag's secret on the terminal, hidden; twice for a new value.
///
/// # Errors
/// No terminal (exit 2, naming the other ways), a terminal error, or two
/// entries that differ three times.
pub(super) fn prompt_secret(flag: &str, what: &str, twice: bool) -> CliResult<Zeroizing<String>> {
    if !interactive() {
        return Err(CliError::usage(format!(
            "{flag} prompt: there is no terminal to ask on; pass {flag} - (standard input), \
             {flag} @FILE or {flag} env:NAME"
        )));
    }
    let ask = |text: &str| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .map_err(|e| CliError::general(format!("cannot read {flag} from the terminal: {e}")))
    };
    let mut chars = what.chars();
    let first_prompt = chars.next().map_or_else(String::new, |c| {
        format!("{}{}: ", c.to_uppercase(), chars.as_str())
    });
    if !twice {
        return ask(&first_prompt);
    }
    for _ in 0..3 {
        let first = ask(&first_prompt)?;
        let again = ask(&format!("Repeat the {what}: "))?;
        if *again == *first {
            return Ok(first);
        }
        eprintln!("The two entries differ; try again.");
    }
    Err(CliError::usage(format!("the {what} was not confirmed")))
}

/// Asks a yes/no question on the terminal; false without a terminal.
pub fn confirm(question: &str) -> bool {
    if !interactive() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
