//! Vault commands: init, passwd, kit, and the password generator.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::input::{self, PASSWORD_ENV};
use super::output::{print, print_json};
use super::{CliError, CliResult, Global, unlock, vault_dir};
use crate::engine::{self, Session, files, generator};
use crate::engine::{ExposeSecret, KdfParams};

#[derive(Debug, Args)]
pub struct KdfArgs {
    /// Argon2id memory in MiB (default 256)
    #[arg(long, value_name = "MIB")]
    pub kdf_memory_mib: Option<u32>,
    /// Argon2id iterations (default 3)
    #[arg(long, value_name = "N")]
    pub kdf_iterations: Option<u32>,
    /// Argon2id lanes (default 4)
    #[arg(long, value_name = "N")]
    pub kdf_parallelism: Option<u32>,
}

impl KdfArgs {
    fn given(&self) -> bool {
        self.kdf_memory_mib.is_some()
            || self.kdf_iterations.is_some()
            || self.kdf_parallelism.is_some()
    }

    /// The parameters, starting from `base`; warns below the floor.
    pub(super) fn params(&self, base: KdfParams) -> CliResult<KdfParams> {
        let p = KdfParams {
            memory_kib: self
                .kdf_memory_mib
                .map_or(base.memory_kib, |m| m.saturating_mul(1024)),
            iterations: self.kdf_iterations.unwrap_or(base.iterations),
            parallelism: self.kdf_parallelism.unwrap_or(base.parallelism),
        };
        p.validate().map_err(|e| CliError::usage(e.to_string()))?;
        if p.is_below_floor() {
            eprintln!(
                "warning: {p} is below the recommended floor ({} MiB, {} iterations); a stolen vault is cheaper to attack",
                KdfParams::FLOOR.memory_kib / 1024,
                KdfParams::FLOOR.iterations
            );
        }
        Ok(p)
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Where to write the Emergency Kit (default: ~/openk-emergency-kit-<id>.txt)
    #[arg(long, value_name = "PATH")]
    pub kit: Option<PathBuf>,
    /// Accept a master password that is easy to guess (zxcvbn: under 10^8 guesses)
    #[arg(long)]
    pub weak_password: bool,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the new password from standard input (after the current one with --password-stdin)
    #[arg(long)]
    pub new_password_stdin: bool,
    /// Also change the key derivation parameters
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Accept a new master password that is easy to guess (zxcvbn: under 10^8 guesses)
    #[arg(long)]
    pub weak_password: bool,
}

#[derive(Debug, Args)]
pub struct KitArgs {
    /// Also write the kit to this file (mode 0600)
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Password length
    #[arg(long, short, default_value_t = 20)]
    pub length: usize,
    /// No symbols
    #[arg(long)]
    pub no_symbols: bool,
    /// No digits
    #[arg(long)]
    pub no_digits: bool,
    /// No uppercase letters
    #[arg(long)]
    pub no_uppercase: bool,
    /// Avoid look-alike characters (0 O o 1 l I | and quotes)
    #[arg(long)]
    pub no_ambiguous: bool,
    /// A passphrase of N words from the EFF large word list instead
    #[arg(long, value_name = "N", conflicts_with_all = ["no_symbols", "no_digits", "no_uppercase", "no_ambiguous"])]
    pub words: Option<usize>,
    /// Word separator for passphrases
    #[arg(long, default_value = "-", requires = "words")]
    pub separator: String,
    /// Capitalise each word of a passphrase
    #[arg(long, requires = "words")]
    pub capitalize: bool,
}

fn default_kit_path(account_id: uuid::Uuid) -> CliResult<PathBuf> {
    files::default_kit_path(account_id)
        .ok_or_else(|| CliError::usage("cannot find the home directory; pass --kit PATH"))
}

pub async fn init(g: &Global, a: &InitArgs) -> CliResult {
    let dir = vault_dir(g)?;
    if dir.exists() && engine::vault_exists(&dir).await? {
        return Err(engine::Error::VaultExists(dir).into());
    }
    if let Some(kit) = &a.kit {
        if kit.exists() {
            return Err(CliError::usage(format!(
                "{} already exists; choose another --kit path",
                kit.display()
            )));
        }
        if let Some(parent) = kit.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(CliError::usage(format!(
                "the folder {} does not exist",
                parent.display()
            )));
        }
    }
    let kdf = a.kdf.params(KdfParams::DEFAULT)?;
    let password = input::new_password(
        g.password_stdin,
        Some(PASSWORD_ENV),
        "master password",
        a.weak_password,
    )?;
    let vault = Session::init(&dir, password, kdf).await?;
    let kit_path = match &a.kit {
        // Absolute, so the message says where it went whatever the cwd.
        Some(p) => std::path::absolute(p).unwrap_or_else(|_| p.clone()),
        None => default_kit_path(vault.account_id())?,
    };
    let kit = vault.emergency_kit();
    let written = files::write_private_file(&kit_path, kit.as_bytes(), true);
    let account_id = vault.account_id();
    let secret_key = vault.secret_key_display();
    vault.close().await;
    let kit_note = match &written {
        Ok(()) => format!(
            "Emergency Kit written to {} (mode 0600).",
            kit_path.display()
        ),
        Err(e) => {
            format!(
                "warning: could not write the Emergency Kit ({}); run `openk kit` to see it.",
                super::errors::message(e)
            )
        }
    };
    if g.json {
        print_json(&json!({
            "home": dir,
            "account_id": account_id,
            "secret_key": secret_key.as_str(),
            "emergency_kit": written.is_ok().then_some(&kit_path),
            "kdf": kdf,
        }))?;
        if written.is_err() {
            eprintln!("{kit_note}");
        }
        return Ok(());
    }
    print(&format!(
        "Created a vault at {}\n\
         Account ID: {account_id}\n\
         Secret Key: {}\n\n\
         {kit_note}\n\
         You need BOTH the master password and the Secret Key to open this vault on another\n\
         device or after a disk failure. Print the kit or copy it somewhere offline, then\n\
         delete the file. `openk kit` shows it again.\n",
        dir.display(),
        secret_key.as_str()
    ))
}

pub async fn passwd(g: &Global, a: &PasswdArgs) -> CliResult {
    let mut vault = super::unlock_with_password(g).await?;
    let kdf = if a.kdf.given() {
        Some(a.kdf.params(vault.kdf())?)
    } else {
        None
    };
    let new = input::new_password(
        a.new_password_stdin,
        None,
        "master password",
        a.weak_password,
    )?;
    vault.change_password(new, kdf).await?;
    let kdf = vault.kdf();
    vault.close().await;
    if g.json {
        print_json(&json!({ "changed": true, "kdf": kdf }))
    } else {
        print(
            "Master password changed. The old password no longer opens this vault; the Secret Key is unchanged.\n",
        )
    }
}

pub async fn kit(g: &Global, a: &KitArgs) -> CliResult {
    let vault = unlock(g).await?;
    let kit = vault.emergency_kit();
    let secret_key = vault.secret_key_display();
    let account_id = vault.account_id();
    vault.close().await;
    print_kit(g, &kit, &secret_key, account_id, a.out.as_deref())
}

/// Prints the Emergency Kit as `openk kit` does (`--json`: the account id,
/// the Secret Key and the text), after writing it to `out` if given (also
/// what `openk key rotate --secret-key` shows of the new kit).
pub(super) fn print_kit(
    g: &Global,
    kit: &str,
    secret_key: &str,
    account_id: uuid::Uuid,
    out: Option<&std::path::Path>,
) -> CliResult {
    if let Some(path) = out {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        files::write_private_file(&path, kit.as_bytes(), true)?;
        eprintln!("Emergency Kit written to {} (mode 0600).", path.display());
    }
    if g.json {
        print_json(&json!({ "account_id": account_id, "secret_key": secret_key, "text": kit }))
    } else {
        print(kit)
    }
}

pub fn generate(g: &Global, a: &GenArgs) -> CliResult {
    let (generated, kind) = match a.words {
        Some(words) => (
            generator::passphrase(&generator::PassphraseSpec {
                words,
                separator: a.separator.clone(),
                capitalize: a.capitalize,
                include_number: false,
            }),
            "passphrase",
        ),
        None => (
            generator::password(&generator::PasswordSpec {
                length: a.length,
                symbols: !a.no_symbols,
                digits: !a.no_digits,
                uppercase: !a.no_uppercase,
                lowercase: true,
                avoid_ambiguous: a.no_ambiguous,
            }),
            "password",
        ),
    };
    let generated = generated.map_err(|e| CliError::usage(e.to_string()))?;
    let value = generated.value.expose_secret();
    if g.json {
        print_json(&json!({
            "kind": kind,
            "value": value,
            "entropy_bits": (generated.entropy_bits * 10.0).round() / 10.0,
            "length": value.chars().count(),
            "words": a.words,
        }))
    } else {
        print(&format!("{value}\n"))
    }
}
