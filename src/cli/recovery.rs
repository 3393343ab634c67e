//! `openk recovery`: set up a recovery code, split it into shares for
//! trusted people, check a code or shares, and recover an account with
//! them (new master password and Secret Key).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use zeroize::Zeroizing;

use super::input::{self, confirm};
use super::output::{print, print_json};
use super::{CliError, CliResult, Global, unlock, unlock_with_password, vault_dir};
use crate::engine::recovery::RecoveryCode;
use crate::engine::{self, remote};
use crate::secure_read;
use crate::text;

#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// Make a recovery code (shown once) that can set a new master password and Secret Key; replaces an earlier one
    Setup(SetupArgs),
    /// Split the recovery code into N shares for trusted people, any K of which make it again
    Split(SplitArgs),
    /// Check a recovery code or K shares (changes nothing)
    Verify(VerifyArgs),
    /// Recover an account: new master password and Secret Key, every other session ended, the account key rotated
    Recover(RecoverArgs),
    /// Whether recovery is set up, and since when
    Status,
    /// Remove the account's recovery (its code and shares stop working)
    Remove {
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Replace an existing recovery code without asking
    #[arg(long, short)]
    pub yes: bool,
    /// Also write the Recovery Kit to this file (mode 0600, must not exist)
    #[arg(long, value_name = "PATH")]
    pub kit: Option<PathBuf>,
}

/// Where the code or shares come from.
#[derive(Debug, Args)]
pub struct CodeSource {
    /// Read the recovery code from this file (`-`: the first line of standard input)
    #[arg(long, value_name = "F", conflicts_with_all = ["shares_file", "shares"])]
    pub code_file: Option<PathBuf>,
    /// Read shares from this file, one a line (`-`: standard input)
    #[arg(long, value_name = "F", conflicts_with = "shares")]
    pub shares_file: Option<PathBuf>,
    /// Type shares at the terminal, one at a time (instead of the code)
    #[arg(long)]
    pub shares: bool,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// How many shares to make (2-255)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..))]
    pub shares: u8,
    /// How many of them make the code again (2-N)
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(2..))]
    pub threshold: u8,
    /// Read the recovery code from this file (`-`: standard input) instead of a prompt
    #[arg(long, value_name = "F")]
    pub code_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: CodeSource,
    /// Check against this server instead of this device's vault (with --email; no vault needed)
    #[arg(long, requires = "email")]
    pub server: Option<String>,
    /// The account's email (with --server)
    #[arg(long, requires = "server")]
    pub email: Option<String>,
    /// Accepted for scripts that pass it to both verify and recover; verify reads no password
    #[arg(long, hide = true)]
    pub new_password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Server URL of the account
    #[arg(long, env = "OPENK_SERVER")]
    pub server: String,
    /// The account's email
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub source: CodeSource,
    /// Read the new master password from standard input (one line)
    #[arg(long)]
    pub new_password_stdin: bool,
    /// Accept a new master password that is easy to guess (zxcvbn: under 10^8 guesses)
    #[arg(long)]
    pub weak_password: bool,
    /// Accept key derivation parameters below the recommended floor from the server
    #[arg(long)]
    pub allow_weak_kdf: bool,
    /// Name of this device in the device list (default: the host name and a random suffix)
    #[arg(long)]
    pub device_name: Option<String>,
    /// Write the new Emergency Kit to this file (default: next to the other kits; must not exist)
    #[arg(long, value_name = "PATH")]
    pub kit: Option<PathBuf>,
}

pub async fn recovery(g: &Global, cmd: &RecoveryCommand) -> CliResult {
    match cmd {
        RecoveryCommand::Setup(a) => setup(g, a).await,
        RecoveryCommand::Split(a) => split(g, a).await,
        RecoveryCommand::Verify(a) => verify(g, a).await,
        RecoveryCommand::Recover(a) => recover(g, a).await,
        RecoveryCommand::Status => status(g).await,
        RecoveryCommand::Remove { yes } => remove(g, *yes).await,
    }
}

/// Up to 64 KiB: a code, or 255 shares with room to spare.
const INPUT_LIMIT: usize = 64 * 1024;

/// The text of `path` (`-`: standard input, to its end or its first line).
fn read_text(path: &Path, what: &str, first_line: bool) -> CliResult<Zeroizing<String>> {
    let bytes = if path.as_os_str() == "-" {
        if first_line {
            secure_read::line(std::io::stdin(), INPUT_LIMIT).map(Option::unwrap_or_default)
        } else {
            secure_read::to_end(std::io::stdin(), INPUT_LIMIT)
        }
        .map_err(|e| CliError::usage(format!("cannot read the {what} from standard input: {e}")))?
    } else {
        secure_read::file(path, INPUT_LIMIT).map_err(|e| {
            CliError::usage(format!(
                "cannot read the {what} from {}: {e}",
                path.display()
            ))
        })?
    };
    secure_read::zeroizing_string(&bytes)
        .map_err(|_| CliError::usage(format!("the {what} is not UTF-8 text")))
}

/// The code typed at the terminal (hidden) or read from `file`.
fn read_code(file: Option<&Path>) -> CliResult<RecoveryCode> {
    let text = match file {
        Some(path) => read_text(path, "recovery code", true)?,
        None if input::interactive() => {
            let typed = input::prompt("Recovery code (OKR-…): ")?;
            Zeroizing::new(secrecy::ExposeSecret::expose_secret(&typed).to_owned())
        }
        None => {
            return Err(CliError::usage(
                "no terminal to ask for the recovery code; pass --code-file F (or --shares-file F)",
            ));
        }
    };
    Ok(RecoveryCode::parse(text.trim()).map_err(engine::Error::from)?)
}

/// The code the source names: the code itself, or the shares combined.
fn code_from(source: &CodeSource, new_password_stdin: bool) -> CliResult<RecoveryCode> {
    let shares: Vec<Zeroizing<String>> = if let Some(path) = &source.shares_file {
        if path.as_os_str() == "-" && new_password_stdin {
            return Err(CliError::usage(
                "--shares-file - and --new-password-stdin both want standard input; put the \
                 shares in a file",
            ));
        }
        read_text(path, "shares", false)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| Zeroizing::new(l.to_owned()))
            .collect()
    } else if source.shares {
        if !input::interactive() {
            return Err(CliError::usage(
                "no terminal to ask for the shares; pass --shares-file F",
            ));
        }
        let mut typed = Vec::new();
        loop {
            let share = input::prompt(&format!(
                "Share {} (OKS-…; an empty line when done): ",
                typed.len() + 1
            ))?;
            let share = secrecy::ExposeSecret::expose_secret(&share)
                .trim()
                .to_owned();
            if share.is_empty() {
                break;
            }
            typed.push(Zeroizing::new(share));
        }
        typed
    } else {
        return read_code(source.code_file.as_deref());
    };
    let refs: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
    Ok(RecoveryCode::combine(&refs).map_err(engine::Error::from)?)
}

/// The Recovery Kit: the code and what to do with it.
fn recovery_kit(code: &str, email: &str, server: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "OpenK Recovery Kit
==================

Account:        {email}
Server:         {server}
Recovery code:  {code}

With this code, anyone can set a new master password and Secret Key for
this account (and so read everything in it). Keep it offline, apart from
the Emergency Kit: a safe, a sealed envelope with your important papers.

- To recover: `openk recovery recover --server {server} --email {email}`
  on any computer, then type this code and a new master password.
- Every other session ends, the account key is rotated, and the code is
  used up: set up a new one afterwards (`openk recovery setup`).
- To share the burden: `openk recovery split --shares 5 --threshold 3`
  gives 5 shares for trusted people, any 3 of which make this code again.
- `openk recovery verify` checks the code (or shares) and changes nothing.
",
        email = text::cell(email),
        server = text::cell(server),
    ))
}

async fn setup(g: &Global, a: &SetupArgs) -> CliResult {
    if let Some(kit) = &a.kit
        && kit.exists()
    {
        return Err(CliError::usage(format!(
            "{} exists; choose a new file for the Recovery Kit",
            kit.display()
        )));
    }
    // The code opens the whole account: the master password, not an agent.
    let mut vault = unlock_with_password(g).await?;
    let result = setup_inner(g, a, &mut vault).await;
    vault.close().await;
    result
}

async fn setup_inner(g: &Global, a: &SetupArgs, vault: &mut engine::Session) -> CliResult {
    let record = vault
        .remote()
        .cloned()
        .ok_or_else(|| CliError::from(engine::Error::NotConnected))?;
    if vault.recovery_status().await?.is_some()
        && !a.yes
        && !(input::interactive()
            && confirm(
                "Recovery is set up already; make a new code (the old one and its shares stop working)?",
            ))
    {
        return Err(CliError::usage(
            "recovery is set up already; pass --yes to replace its code (the old code and its shares stop working)",
        ));
    }
    let code = vault.setup_recovery().await?;
    let shown = code.display();
    let kit = recovery_kit(&shown, &record.email, &record.server);
    if let Some(path) = &a.kit {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        engine::files::write_private_file(&path, kit.as_bytes(), true)?;
        eprintln!("Recovery Kit written to {} (mode 0600).", path.display());
    }
    if g.json {
        print_json(&json!({ "code": shown.as_str() }))
    } else {
        print(&format!(
            "{}\nThis code is shown once. Write it down or print it now.\n",
            kit.as_str()
        ))
    }
}

async fn split(g: &Global, a: &SplitArgs) -> CliResult {
    if a.threshold > a.shares {
        return Err(CliError::usage(format!(
            "--threshold {} is more than --shares {}: the shares could never make the code",
            a.threshold, a.shares
        )));
    }
    let code = read_code(a.code_file.as_deref())?;
    let mut vault = unlock_with_password(g).await?;
    // Split only the account's code now: a typo or an old code would give
    // shares that recover nothing.
    let checked = vault.verify_recovery_code(&code).await;
    vault.close().await;
    checked?;
    let shares = code
        .split(a.shares, a.threshold)
        .map_err(engine::Error::from)?;
    if g.json {
        return print_json(&json!({
            "shares": shares.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "threshold": a.threshold,
        }));
    }
    let mut out = format!(
        "{} shares; any {} of them make the recovery code again, fewer tell nothing about it.\n\
         Give each to a different trusted person, on paper:\n\n",
        a.shares, a.threshold
    );
    for (i, s) in shares.iter().enumerate() {
        out.push_str(&format!(
            "Share {} of {}: {}\n",
            i + 1,
            a.shares,
            s.as_str()
        ));
    }
    out.push_str(
        "\nTo recover: `openk recovery recover --server URL --email EMAIL --shares` (or \
         --shares-file F, one share a line).\n",
    );
    print(&out)
}

async fn verify(g: &Global, a: &VerifyArgs) -> CliResult {
    let code = code_from(&a.source, false)?;
    let created = match (&a.server, &a.email) {
        (Some(server), Some(email)) => {
            engine::recovery::verify_recovery_on_server(server, email, &code).await?;
            None
        }
        _ => {
            let mut vault = unlock(g).await?;
            let status = vault.verify_recovery_code(&code).await;
            vault.close().await;
            Some(status?.created_at)
        }
    };
    if g.json {
        print_json(&json!({ "valid": true, "created_at": created }))
    } else {
        print("The recovery code is good: it recovers this account. Nothing was changed.\n")
    }
}

async fn recover(g: &Global, a: &RecoverArgs) -> CliResult {
    let dir = vault_dir(g)?;
    if dir.exists() && engine::vault_exists(&dir).await? {
        return Err(CliError::usage(format!(
            "{} holds a vault already; recover into a new directory with --home NEW_DIR",
            dir.display()
        )));
    }
    if let Some(kit) = &a.kit
        && kit.exists()
    {
        return Err(CliError::usage(format!(
            "{} exists; choose a new file for the Emergency Kit",
            kit.display()
        )));
    }
    let code = code_from(&a.source, a.new_password_stdin)?;
    // A wrong code is caught before a new password is asked for.
    engine::recovery::verify_recovery_on_server(&a.server, &a.email, &code).await?;
    let password = input::new_password(
        a.new_password_stdin,
        None,
        "master password",
        a.weak_password,
    )?;
    let device_name = a
        .device_name
        .clone()
        .unwrap_or_else(remote::default_device_name);
    let recovered = engine::recovery::recover(
        &dir,
        &a.server,
        &a.email,
        &code,
        password,
        a.allow_weak_kdf,
        &device_name,
    )
    .await?;
    let Some((kit_note, secret_key)) = new_kit(g, &dir, a.kit.as_deref(), recovered).await? else {
        return Ok(());
    };
    print(&format!(
        "Account recovered into {}.\n\
         New Secret Key: {}\n\n\
         {kit_note}\n\
         The old master password and Secret Key no longer work, every other session ended, and the\n\
         account key was rotated. Other devices sign in again with `openk login` and the new\n\
         password and Secret Key. The recovery code is used up: make a new one with\n\
         `openk recovery setup`.\n",
        dir.display(),
        secret_key.as_str()
    ))
}

/// After new credentials (a recovery, a takeover) in `dir`: writes the new
/// Emergency Kit (to `kit`, else next to the others when none is there
/// yet) and, with `--json`, prints the answer (then `None`). Otherwise
/// returns the note on the kit and the new Secret Key, for the text answer.
pub(super) async fn new_kit(
    g: &Global,
    dir: &Path,
    kit: Option<&Path>,
    done: engine::recovery::Recovered,
) -> CliResult<Option<(String, Zeroizing<String>)>> {
    let vault = done.session;
    let account_id = vault.account_id();
    let text = vault.emergency_kit();
    vault.close().await;
    let kit_path = match kit {
        Some(p) => Some(std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
        None => engine::files::default_kit_path(account_id).filter(|p| !p.exists()),
    };
    let written = kit_path
        .as_ref()
        .map(|p| engine::files::write_private_file(p, text.as_bytes(), true).map(|()| p.clone()));
    if g.json {
        print_json(&json!({
            "home": dir,
            "account_id": account_id,
            "secret_key": done.secret_key.as_str(),
            "emergency_kit": written.as_ref().and_then(|w| w.as_ref().ok()),
        }))?;
        return Ok(None);
    }
    let note = match &written {
        Some(Ok(p)) => format!("New Emergency Kit written to {} (mode 0600).", p.display()),
        _ => format!(
            "Run `openk kit --home {}` to see the new Emergency Kit.",
            dir.display()
        ),
    };
    Ok(Some((note, done.secret_key)))
}

async fn status(g: &Global) -> CliResult {
    let mut vault = unlock(g).await?;
    let status = vault.recovery_status().await;
    vault.close().await;
    let status = status?;
    if g.json {
        return print_json(&json!({
            "set_up": status.is_some(),
            "created_at": status.as_ref().map(|s| &s.created_at),
            "account_key_version": status.as_ref().map(|s| s.account_key_version),
        }));
    }
    match status {
        Some(s) => print(&format!(
            "Recovery is set up (since {}); its code opens account key version {}.\n",
            text::cell(&s.created_at),
            s.account_key_version
        )),
        None => print("Recovery is not set up: `openk recovery setup` makes a code.\n"),
    }
}

async fn remove(g: &Global, yes: bool) -> CliResult {
    let asked = || {
        input::interactive()
            && confirm("Remove account recovery? Its code and shares stop working.")
    };
    if !(yes || asked()) {
        return Err(CliError::usage(
            "not removed; pass --yes to remove account recovery",
        ));
    }
    let mut vault = unlock(g).await?;
    let removed = vault.remove_recovery().await;
    vault.close().await;
    let removed = removed?;
    if g.json {
        return print_json(&json!({ "removed": removed }));
    }
    print(if removed {
        "Recovery removed: its code and shares no longer work.\n"
    } else {
        "Recovery was not set up; nothing to remove.\n"
    })
}
