//! `openk import FILE`: another manager's export (or a `pass` store) into
//! a vault, with a progress bar on a terminal and a report of what was
//! imported, skipped as a duplicate, or could not be mapped.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use zeroize::Zeroizing;

use super::output::{print, print_json};
use super::sync::{after_write, note_sync};
use super::{CliError, CliResult, Global, exit, input, unlock};
use crate::engine::SecretString;
use crate::engine::imports::{ImportOptions, ImportReport};
use crate::import::{self, Format, ImportError, Source};
use crate::text;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import, or a `pass` store's directory
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The file's format (default: told from its contents)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Import into this vault (name or id prefix; default: the personal vault)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// Put every imported item below this folder (their own folders under it)
    #[arg(long, value_name = "FOLDER")]
    pub folder: Option<String>,
    /// Read the file and report what would be imported; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Read the file's own password (KDBX, OpenK archive, encrypted Bitwarden
    /// export) from standard input (after the master password's line with
    /// --password-stdin)
    #[arg(long)]
    pub file_password_stdin: bool,
    /// A KeePass key file
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// The largest file `openk import` reads into memory.
const MAX_FILE: u64 = 2 * 1024 * 1024 * 1024;

fn read_input(path: &std::path::Path) -> CliResult<Zeroizing<Vec<u8>>> {
    let shown = text::line(&path.display().to_string()).into_owned();
    let meta = std::fs::metadata(path).map_err(|e| CliError {
        code: if e.kind() == std::io::ErrorKind::NotFound {
            exit::NOT_FOUND
        } else {
            exit::ERROR
        },
        message: format!("cannot read {shown}: {e}; nothing was imported"),
    })?;
    if meta.is_dir() {
        return Ok(Zeroizing::new(Vec::new()));
    }
    if meta.len() > MAX_FILE {
        return Err(CliError::usage(format!(
            "{shown} is larger than {} GiB; nothing was imported",
            MAX_FILE >> 30
        )));
    }
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| CliError::general(format!("cannot read {shown}: {e}; nothing was imported")))
}

/// What an importer's error means for the user.
fn import_error(e: &ImportError, file: &str) -> CliError {
    let code = match e {
        ImportError::WrongPassword { .. } | ImportError::NeedsPassword(_) => exit::LOCKED,
        ImportError::Unknown(..) => exit::USAGE,
        ImportError::Malformed { .. } | ImportError::Io(_) => exit::ERROR,
    };
    let hint = match e {
        ImportError::WrongPassword { .. } => "; check it (and --key-file) and try again",
        ImportError::NeedsPassword(_) => "; pass --file-password-stdin or run on a terminal",
        ImportError::Malformed { .. } => {
            "; check that it is the export you meant, or name its format with --format"
        }
        _ => "",
    };
    CliError {
        code,
        message: format!(
            "{file}: {}{hint}; nothing was imported",
            text::line(&e.to_string())
        ),
    }
}

fn file_password(a: &ImportArgs, format: Format, file: &str) -> CliResult<SecretString> {
    if a.file_password_stdin {
        return input::stdin_secret("file password");
    }
    if input::interactive() {
        return input::prompt(&format!("Password of {file} ({format}): "));
    }
    Err(CliError {
        code: exit::LOCKED,
        message: format!(
            "{file} is encrypted and there is no terminal to ask for its password; pass \
             --file-password-stdin; nothing was imported"
        ),
    })
}

/// A progress bar on stderr when it is a terminal (and no JSON is asked
/// for), hidden otherwise.
fn progress_bar(g: &Global) -> ProgressBar {
    if g.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

pub async fn import(g: &Global, a: &ImportArgs) -> CliResult {
    let file = text::line(&a.file.display().to_string()).into_owned();
    let bytes = read_input(&a.file)?;
    let format = match a.format {
        Some(f) => f,
        None => import::detect(&a.file, &bytes).map_err(|e| import_error(&e, &file))?,
    };
    let key_file = a.key_file.as_deref().map(read_input).transpose()?;
    // The vault first: with --password-stdin its password is the first line.
    let mut vault = unlock(g).await?;
    let prepared = prepare(
        g,
        a,
        format,
        &file,
        &bytes,
        key_file.as_deref().map(|k| &k[..]),
    );
    let (target, parsed, bar) = match prepared.and_then(|(p, bar)| {
        let target = match a.vault.as_deref() {
            Some(v) => vault.resolve_vault(v).map_err(CliError::from)?,
            None => vault.default_vault().0,
        };
        Ok((target, p, bar))
    }) {
        Ok(x) => x,
        Err(e) => {
            vault.close().await;
            return Err(e);
        }
    };
    bar.set_message("importing");
    let opts = ImportOptions {
        folder: a.folder.clone(),
        dry_run: a.dry_run,
    };
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = match vault.import(target, format, parsed, &opts, &progress).await {
        Ok(r) => r,
        Err(e) => {
            bar.finish_and_clear();
            vault.close().await;
            return Err(e.into());
        }
    };
    bar.finish_and_clear();
    let note = if a.dry_run || report.imported.is_empty() {
        None
    } else {
        after_write(g, &mut vault).await
    };
    vault.close().await;
    note_sync(note.as_deref());
    if g.json {
        print_json(&serde_json::to_value(&report).unwrap_or_default())
    } else {
        print(&describe(&report, &file))
    }
}

/// Reads the file's password if it needs one, then parses it.
fn prepare(
    g: &Global,
    a: &ImportArgs,
    format: Format,
    file: &str,
    bytes: &[u8],
    key_file: Option<&[u8]>,
) -> CliResult<(import::Parsed, ProgressBar)> {
    let password = if import::needs_password(format, bytes) {
        Some(file_password(a, format, file)?)
    } else {
        None
    };
    let bar = progress_bar(g);
    bar.set_message("reading");
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let source = Source {
        path: &a.file,
        bytes,
        password: password.as_ref(),
        key_file,
        progress: &progress,
    };
    let parsed = import::parse(format, &source).map_err(|e| {
        bar.finish_and_clear();
        import_error(&e, file)
    })?;
    Ok((parsed, bar))
}

/// The report in words. Names come from the file: every one is cleaned of
/// terminal controls by `print`.
fn describe(r: &ImportReport, file: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let verb = if r.dry_run {
        "Would import"
    } else {
        "Imported"
    };
    let _ = writeln!(
        out,
        "{verb} {} item(s) from {file} ({}) into {}.",
        r.imported.len(),
        r.format,
        r.vault
    );
    let renamed: Vec<_> = r
        .imported
        .iter()
        .filter_map(|i| i.renamed_from.as_ref().map(|from| (from, &i.name)))
        .collect();
    if !renamed.is_empty() {
        let _ = writeln!(
            out,
            "{} renamed (the vault already had the name):",
            renamed.len()
        );
        for (from, to) in renamed {
            let _ = writeln!(out, "  {:?} → {:?}", text::line(from), text::line(to));
        }
    }
    if !r.duplicates.is_empty() {
        let _ = writeln!(out, "Skipped {} duplicate(s):", r.duplicates.len());
        for d in &r.duplicates {
            let _ = writeln!(
                out,
                "  {} {:?}: {}",
                text::line(&d.at),
                text::line(&d.name),
                d.why
            );
        }
    }
    if !r.unmapped.is_empty() {
        let _ = writeln!(out, "Imported without some parts ({}):", r.unmapped.len());
        for u in &r.unmapped {
            let _ = writeln!(
                out,
                "  {} {:?}: {}",
                text::line(&u.at),
                text::line(&u.name),
                text::line(&u.what.join("; "))
            );
        }
    }
    if !r.problems.is_empty() {
        let _ = writeln!(
            out,
            "Not imported, could not be read ({}):",
            r.problems.len()
        );
        for p in &r.problems {
            let _ = writeln!(out, "  {}: {}", text::line(&p.at), text::line(&p.why));
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "Note: {}", text::line(n));
    }
    out
}
