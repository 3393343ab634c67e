//! `openk export`: the vault written out as an encrypted OpenK archive or
//! as plaintext JSON / CSV (the formats are in `crate::export`).

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;

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
    let written = if to_stdout {
        let out = std::io::BufWriter::new(std::io::stdout());
        let (mut out, written) = export::write_to(
            session,
            vault,
            a.format,
            out,
            passphrase.as_ref(),
            &kdf,
            &|_| {},
        )
        .await?;
        out.flush()
            .map_err(|e| CliError::general(format!("cannot write standard output: {e}")))?;
        written
    } else {
        export::to_file(
            session,
            vault,
            a.format,
            &a.file,
            a.force,
            passphrase.as_ref(),
            &kdf,
            &|_| {},
        )
        .await?
    };
    report(g, a, &written, to_stdout)
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
