//! Flags that take a secret (`--password`, `--secret-field LABEL=…`,
//! `--cvv`, `--pin`, `--number`, `--totp`, `--key`, `--passphrase`,
//! `--secret-key`) never take the secret itself: the command line of every
//! process is readable by every local user (`ps`, `/proc/PID/cmdline`) and
//! ends up in shell history. They take where to read it from:
//!
//! | Value | Reads |
//! |---|---|
//! | `-` | standard input (one flag per command; after the master password's line with `--password-stdin`) |
//! | `@FILE` | the file `FILE` |
//! | `env:NAME` | the environment variable `NAME` |
//! | `prompt`, or the flag without a value | the terminal, hidden (a new value is asked twice) |
//!
//! Anything else is refused while the command line is parsed (exit 2), with
//! a message saying how to pass it, and without echoing it. A secret that
//! itself starts with `@` or `env:` (or is `-` or `prompt`) is passed
//! through a file, stdin or a variable. From stdin and files, one trailing
//! line break is dropped (all of them for single-line values); from the
//! environment and the terminal the value is taken as it is.
//!
//! The value parsers ([`SecretSource::parser`], [`SecretField::parser`])
//! are the one place this rule lives; every secret flag uses one of them.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use zeroize::Zeroizing;

use super::{CliError, CliResult, input};
use crate::secure_read;

/// Where a secret flag's value comes from (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `-`: standard input.
    Stdin,
    /// `@FILE`.
    File(PathBuf),
    /// `env:NAME`.
    Env(String),
    /// `prompt` (or the flag given without a value): the terminal.
    Prompt,
}

/// The value a secret flag gets when it is given without one.
pub const PROMPT: &str = "prompt";

/// Whether a value typed at the prompt is new (asked twice) or one that is
/// checked right away (a passphrase, the Secret Key: asked once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Once,
    Twice,
}

fn refusal(flag: &str) -> String {
    let example = if flag.starts_with("--secret-field") {
        "--secret-field LABEL=SOURCE".to_owned()
    } else {
        format!("{flag} SOURCE")
    };
    format!(
        "{flag} does not take a secret on the command line (every user on this machine can read \
         command lines, and shells keep them in history); pass it as {example}, where SOURCE is \
         `-` (standard input), `@FILE` (a file), `env:NAME` (an environment variable) or \
         `prompt` (asks on the terminal){}",
        if flag == "--password" {
            ", or use --generate"
        } else {
            ""
        }
    )
}

impl SecretSource {
    /// Parses `-`, `@FILE`, `env:NAME` or `prompt`; `None` for anything else
    /// (a literal secret).
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        if value == "-" {
            Some(Self::Stdin)
        } else if value == PROMPT {
            Some(Self::Prompt)
        } else if let Some(path) = value.strip_prefix('@').filter(|p| !p.is_empty()) {
            Some(Self::File(PathBuf::from(path)))
        } else {
            value
                .strip_prefix("env:")
                .filter(|name| !name.is_empty() && !name.contains('='))
                .map(|name| Self::Env(name.to_owned()))
        }
    }

    /// The clap value parser of a secret flag.
    #[must_use]
    pub fn parser() -> SourceParser {
        SourceParser
    }

    /// Reads the secret. `what` names it at a prompt; `multiline` keeps all
    /// but one trailing line break of stdin and file values.
    ///
    /// # Errors
    /// A source that cannot be read (exit 2): no such file or variable,
    /// not UTF-8, no terminal to prompt on, stdin already taken, or
    /// entries that differ.
    pub fn read(
        &self,
        flag: &str,
        what: &str,
        ask: Ask,
        multiline: bool,
    ) -> CliResult<Zeroizing<String>> {
        match self {
            Self::Stdin => input::stdin_value(flag, multiline),
            Self::File(path) => {
                let bytes = secure_read::file(path, secure_read::MAX_SECRET).map_err(|e| {
                    CliError::usage(format!("cannot read {flag} from {}: {e}", path.display()))
                })?;
                let text = secure_read::zeroizing_string(&bytes).map_err(|_| {
                    CliError::usage(format!("{flag}: {} is not UTF-8 text", path.display()))
                })?;
                Ok(input::trim_line_end(text, multiline))
            }
            Self::Env(name) => {
                let value = std::env::var_os(name).ok_or_else(|| {
                    CliError::usage(format!(
                        "{flag} env:{name}: the environment variable {name} is not set"
                    ))
                })?;
                let text = value.to_str().ok_or_else(|| {
                    CliError::usage(format!("{flag} env:{name}: the value is not UTF-8"))
                })?;
                Ok(Zeroizing::new(text.to_owned()))
            }
            Self::Prompt => input::prompt_secret(flag, what, ask == Ask::Twice),
        }
    }
}

/// clap value parser for [`SecretSource`]: refuses a literal secret without
/// echoing it.
#[derive(Debug, Clone, Copy)]
pub struct SourceParser;

impl TypedValueParser for SourceParser {
    type Value = SecretSource;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<SecretSource, clap::Error> {
        let flag = flag_name(arg);
        value
            .to_str()
            .and_then(SecretSource::parse)
            .ok_or_else(|| refuse(cmd, &refusal(&flag)))
    }
}

/// `--secret-field LABEL=SOURCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretField {
    pub label: String,
    pub source: SecretSource,
}

impl SecretField {
    /// The clap value parser of `--secret-field`.
    #[must_use]
    pub fn parser() -> FieldParser {
        FieldParser
    }
}

/// clap value parser for [`SecretField`].
#[derive(Debug, Clone, Copy)]
pub struct FieldParser;

impl TypedValueParser for FieldParser {
    type Value = SecretField;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<SecretField, clap::Error> {
        let flag = flag_name(arg);
        let Some((label, source)) = value.to_str().and_then(|v| v.split_once('=')) else {
            return Err(refuse(
                cmd,
                &format!("{flag} takes LABEL=SOURCE, e.g. {flag} 'PIN=prompt'"),
            ));
        };
        let source = SecretSource::parse(source)
            .ok_or_else(|| refuse(cmd, &refusal(&format!("{flag} {label}="))))?;
        Ok(SecretField {
            label: label.to_owned(),
            source,
        })
    }
}

fn flag_name(arg: Option<&clap::Arg>) -> String {
    arg.and_then(clap::Arg::get_long)
        .map_or_else(|| "this flag".to_owned(), |l| format!("--{l}"))
}

/// A usage error (exit 2) with our message only: clap's own message for a
/// bad value would repeat the value, which here is a secret.
fn refuse(cmd: &clap::Command, message: &str) -> clap::Error {
    clap::Error::raw(ErrorKind::ValueValidation, format!("{message}\n")).with_cmd(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_parser = SecretSource::parser())]
        password: Option<SecretSource>,
        #[arg(long = "secret-field", value_parser = SecretField::parser())]
        secret_fields: Vec<SecretField>,
        #[arg(long)]
        name: Option<String>,
    }

    fn parse(args: &[&str]) -> Result<Cmd, clap::Error> {
        Cmd::try_parse_from(std::iter::once("openk").chain(args.iter().copied()))
    }

    #[test]
    fn sources_parse() {
        let p = |v: &str| parse(&["--password", v]).expect(v).password;
        assert_eq!(p("-"), Some(SecretSource::Stdin));
        assert_eq!(p("@pw.txt"), Some(SecretSource::File("pw.txt".into())));
        assert_eq!(p("env:PW"), Some(SecretSource::Env("PW".into())));
        assert_eq!(p("prompt"), Some(SecretSource::Prompt));
        let bare = parse(&["--password", "--name", "x"]).expect("bare flag");
        assert_eq!(bare.password, Some(SecretSource::Prompt));
        assert_eq!(
            bare.name.as_deref(),
            Some("x"),
            "non-secret flags stay literal"
        );
        let f = parse(&["--secret-field", "PIN=env:PIN"]).expect("field");
        assert_eq!(
            f.secret_fields,
            [SecretField {
                label: "PIN".into(),
                source: SecretSource::Env("PIN".into())
            }]
        );
    }

    #[test]
    fn literal_secrets_are_refused_without_echoing_them() {
        for args in [
            &["--password", "hunter2-Zq"][..],
            &["--password=hunter2-Zq"],
            &["--password", "@"],
            &["--password", "env:"],
            &["--secret-field", "PIN=hunter2-Zq"],
            &["--secret-field", "PIN="],
        ] {
            let e = parse(args).expect_err("a literal secret");
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{args:?}");
            assert_eq!(e.exit_code(), 2);
            let text = e.render().to_string();
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.contains("env:NAME") && text.contains("@FILE"),
                "{text}"
            );
        }
        let e = parse(&["--secret-field", "hunter2-Zq"]).expect_err("no label");
        assert!(!e.render().to_string().contains("hunter2"));
    }

    #[test]
    fn the_parsed_command_line_holds_no_secret() {
        // What `{:?}` of the CLI's field arguments can show: where secrets
        // come from, never a value (there is none to show).
        let args = [
            "openk",
            "add",
            "card",
            "--name",
            "Visa",
            "--number",
            "-",
            "--cvv",
            "@cvv.txt",
            "--pin",
            "env:ZQ_PIN",
            "--secret-field",
            "Bank PIN=prompt",
        ];
        let cli =
            super::super::parse_from(args.iter().map(std::ffi::OsString::from)).expect("parses");
        let shown = format!("{:?}", cli.command);
        assert!(
            shown.contains("Stdin") && shown.contains("Env(\"ZQ_PIN\")"),
            "{shown}"
        );
        let e = super::super::parse_from(
            ["openk", "add", "card", "--name", "Visa", "--cvv", "Zq-123"]
                .iter()
                .map(std::ffi::OsString::from),
        )
        .expect_err("a literal");
        assert!(
            !format!("{e:?}").contains("Zq-123"),
            "not even in the error's Debug"
        );
    }

    #[test]
    fn files_and_variables_are_read() {
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), "from-file\n").expect("write");
        let file = SecretSource::File(tmp.path().to_path_buf());
        let v = file.read("--password", "password", Ask::Twice, false);
        assert_eq!(v.expect("read").as_str(), "from-file");
        let missing = SecretSource::Env("OPENK_TEST_SURELY_UNSET_VAR".into());
        let e = missing
            .read("--password", "password", Ask::Twice, false)
            .expect_err("unset");
        assert_eq!(e.code, super::super::exit::USAGE);
        assert!(e.message.contains("is not set"), "{}", e.message);
        let nofile = SecretSource::File("/nonexistent/pw".into());
        assert!(nofile.read("--cvv", "CVV", Ask::Twice, false).is_err());
    }
}
