//! `openk export`: the vault written out as an encrypted OpenK archive or
//! as plaintext JSON / CSV (the formats are in `crate::export`).

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::input;
use super::output::print_json;
use super::vault::KdfArgs;
use super::{CliError, CliResult, Global, unlock};
use crate::engine::KdfParams;
use crate::export::{self, ExportFormat, Written};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// openk (encrypted archive, its own passphrase; `openk import` reads it), json or csv (plaintext)
    #[arg(long, value_enum, default_value = "openk")]
    pub format: ExportFormat,
    /// Export only this vault (name or id; default: every vault)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// Where to write (created 0600); `-` for standard output
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Allow a plaintext format (json, csv): the file holds every secret in the clear
    #[arg(long)]
    pub unencrypted: bool,
    /// Do not ask for confirmation before writing plaintext
    #[arg(long)]
    pub yes: bool,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
    /// Read the archive passphrase from standard input (after the master password when --password-stdin is also given)
    #[arg(long)]
    pub passphrase_stdin: bool,
    /// Accept an archive passphrase that is easy to guess
    #[arg(long)]
    pub weak_passphrase: bool,
    #[command(flatten)]
    pub kdf: KdfArgs,
}

/// Where an export goes: a temporary file beside FILE, moved into place
/// only when everything is written, or standard output.
enum Target {
    Stdout,
    File {
        path: PathBuf,
        temp: PathBuf,
        file: std::fs::File,
    },
}

impl Target {
    fn open(path: &Path, force: bool) -> CliResult<Self> {
        if path.as_os_str() == "-" {
            return Ok(Self::Stdout);
        }
        if !force && path.symlink_metadata().is_ok() {
            return Err(CliError::usage(format!(
                "{} exists; choose another file or pass --force to replace it",
                path.display()
            )));
        }
        if path.is_dir() {
            return Err(CliError::usage(format!(
                "{} is a directory; name a file",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".to_owned());
        let temp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let file = create_private(&temp)
            .map_err(|e| CliError::general(format!("cannot create {}: {e}", temp.display())))?;
        Ok(Self::File {
            path: path.to_path_buf(),
            temp,
            file,
        })
    }

    /// Moves the finished file into place: never over an existing file
    /// without `force` (a hard link fails when the name is taken).
    fn commit(path: &Path, temp: &Path, force: bool) -> CliResult {
        let placed = if force {
            std::fs::rename(temp, path)
        } else {
            std::fs::hard_link(temp, path).and_then(|()| std::fs::remove_file(temp))
        };
        placed.map_err(|e| {
            let _ = std::fs::remove_file(temp);
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CliError::usage(format!(
                    "{} appeared while exporting; nothing was replaced (pass --force to replace it)",
                    path.display()
                ))
            } else {
                CliError::general(format!("cannot write {}: {e}", path.display()))
            }
        })
    }
}

/// Creates a new file readable only by its owner.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

fn archive_passphrase(a: &ExportArgs) -> CliResult<crate::engine::SecretString> {
    if !a.passphrase_stdin && !input::interactive() {
        return Err(CliError::usage(
            "there is no terminal to ask for the archive passphrase; pass --passphrase-stdin",
        ));
    }
    input::new_password(
        a.passphrase_stdin,
        None,
        "archive passphrase",
        a.weak_passphrase,
    )
}

pub async fn export(g: &Global, a: &ExportArgs) -> CliResult {
    let plaintext = a.format.is_plaintext();
    if plaintext && !a.unencrypted {
        return Err(CliError::usage(format!(
            "a {} export holds every password and note in the clear, readable by anything that \
             can read the file; pass --unencrypted to write it anyway, or use --format openk \
             (encrypted with a passphrase)",
            a.format.as_str()
        )));
    }
    let to_stdout = a.file.as_os_str() == "-";
    if !plaintext && to_stdout && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "the archive is binary; redirect standard output to a file or name a FILE",
        ));
    }
    if !to_stdout && !a.force && a.file.symlink_metadata().is_ok() {
        return Err(CliError::usage(format!(
            "{} exists; choose another file or pass --force to replace it",
            a.file.display()
        )));
    }
    let kdf = if plaintext {
        KdfParams::DEFAULT
    } else {
        a.kdf.params(KdfParams::DEFAULT)?
    };
    let session = unlock(g).await?;
    let result = run(g, a, &session, kdf, to_stdout).await;
    session.close().await;
    result
}

async fn run(
    g: &Global,
    a: &ExportArgs,
    session: &crate::engine::Session,
    kdf: KdfParams,
    to_stdout: bool,
) -> CliResult {
    let vault = export::vault_filter(session, a.vault.as_deref())?;
    let passphrase = if a.format.is_plaintext() {
        if !a.yes {
            let where_to = if to_stdout {
                "standard output".to_owned()
            } else {
                a.file.display().to_string()
            };
            if !input::interactive() {
                return Err(CliError::usage(
                    "writing plaintext needs a confirmation: run on a terminal or pass --yes",
                ));
            }
            if !input::confirm(&format!("Write every secret in the clear to {where_to}?")) {
                return Err(CliError::usage("cancelled; nothing was written"));
            }
        }
        None
    } else {
        Some(archive_passphrase(a)?)
    };
    let target = Target::open(&a.file, a.force)?;
    let written = match target {
        Target::Stdout => {
            let out = std::io::BufWriter::new(std::io::stdout());
            let (mut out, written) =
                write(session, vault, a.format, out, passphrase.as_ref(), &kdf).await?;
            out.flush()
                .map_err(|e| CliError::general(format!("cannot write standard output: {e}")))?;
            written
        }
        Target::File { path, temp, file } => {
            let out = std::io::BufWriter::new(file);
            let done = write(session, vault, a.format, out, passphrase.as_ref(), &kdf).await;
            let finished = done.and_then(|(out, written)| {
                let file = out.into_inner().map_err(|e| {
                    CliError::general(format!("cannot write {}: {}", temp.display(), e.error()))
                })?;
                file.sync_all().map_err(|e| {
                    CliError::general(format!("cannot write {}: {e}", temp.display()))
                })?;
                Ok(written)
            });
            match finished {
                Ok(written) => {
                    Target::commit(&path, &temp, a.force)?;
                    written
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&temp);
                    return Err(e);
                }
            }
        }
    };
    report(g, a, &written, to_stdout)
}

async fn write<W: Write>(
    session: &crate::engine::Session,
    vault: Option<uuid::Uuid>,
    format: ExportFormat,
    out: W,
    passphrase: Option<&crate::engine::SecretString>,
    kdf: &KdfParams,
) -> CliResult<(W, Written)> {
    Ok(match (format, passphrase) {
        (ExportFormat::Openk, Some(p)) => export::openk::write(session, vault, out, p, kdf).await?,
        (ExportFormat::Openk, None) => {
            return Err(CliError::usage("the archive needs a passphrase"));
        }
        (ExportFormat::Json, _) => export::json::write(session, vault, out).await?,
        (ExportFormat::Csv, _) => export::csv::write(session, vault, out).await?,
    })
}

fn report(g: &Global, a: &ExportArgs, w: &Written, to_stdout: bool) -> CliResult {
    let where_to = if to_stdout {
        "standard output".to_owned()
    } else {
        crate::text::line(&a.file.display().to_string()).into_owned()
    };
    for d in &w.damaged {
        eprintln!(
            "warning: left out {}: {}",
            crate::text::line(&d.id),
            crate::text::line(&d.why)
        );
    }
    if w.attachments_left_out > 0 {
        eprintln!(
            "note: {} attachment(s) left out: CSV has no place for files (use --format json or openk to keep them)",
            w.attachments_left_out
        );
    }
    let history = if a.format == ExportFormat::Openk {
        format!(" ({} versions with history)", w.versions)
    } else {
        String::new()
    };
    let plain = if a.format.is_plaintext() {
        " Every secret in it is in the clear: delete it when you are done."
    } else {
        ""
    };
    eprintln!(
        "Exported {} item(s){history} as {} to {where_to}.{plain}",
        w.items,
        a.format.as_str()
    );
    if g.json && !to_stdout {
        print_json(&json!({
            "format": a.format,
            "file": a.file,
            "items": w.items,
            "versions": w.versions,
            "attachments_left_out": w.attachments_left_out,
            "damaged": w.damaged,
        }))?;
    }
    Ok(())
}
