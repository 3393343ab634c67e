//! The command line: clap definitions, dispatch, and the mapping of outcomes
//! to exit codes (DESIGN §8; engine errors: [`errors`]). Commands talk only
//! to the engine.

mod apply;
mod approve;
mod backup;
mod config;
mod contact;
mod copy;
mod emergency;
pub mod errors;
mod export;
mod import;
mod input;
mod items;
mod key;
mod output;
mod recovery;
mod remote;
mod secret_arg;
mod session;
mod share;
mod shared_vaults;
mod sync;
mod vault;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
pub use session::run_agent_process;

use crate::engine;

/// Exit codes (DESIGN §8).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const LOCKED: i32 = 3;
    pub const NOT_FOUND: i32 = 4;
    pub const AMBIGUOUS: i32 = 5;
    pub const CONFLICT: i32 = 6;
    /// The server cannot be reached or is not answering.
    pub const UNREACHABLE: i32 = 7;
    /// The TLS handshake with the server failed (certificate not trusted:
    /// check `OPENK_CA_CERT`).
    pub const TLS: i32 = 8;
    /// A device approval ended without approval (denied, expired, timed
    /// out, cancelled, codes that differ); nothing was sent.
    pub const NOT_APPROVED: i32 = 9;
}

/// A failed command: what to tell the user and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> Self {
        Self {
            code: exit::ERROR,
            message: message.into(),
        }
    }
}

/// Set when a command failed because the master password was changed on
/// another device: [`run`] then locks this vault's agent, whose key is the
/// old password's, so that the next command asks for the new one.
static PASSWORD_CHANGED_ELSEWHERE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

impl From<engine::Error> for CliError {
    fn from(e: engine::Error) -> Self {
        if matches!(e, engine::Error::PasswordChanged) {
            PASSWORD_CHANGED_ELSEWHERE.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Self {
            code: errors::exit_code(&e),
            message: errors::message(&e),
        }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

#[derive(Debug, Parser)]
#[command(
    name = "openk",
    version,
    about = "OpenK: an end-to-end encrypted secret manager for the terminal",
    long_about = "OpenK keeps your passwords, keys and notes in an encrypted vault on this machine.\n\
                  Start with `openk init`, then `openk add login --name GitHub --username me --generate`.",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 locked or wrong password, 4 not found, 5 ambiguous name, 6 conflict, 7 server unreachable or not answering, 8 TLS error (server certificate not trusted: check OPENK_CA_CERT), 9 device approval ended without approval.\nDocumentation: docs/cli.md"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// OpenK's data directory: the local vault database and its files
    /// (default: $OPENK_HOME, else the deprecated $OPENK_VAULT, else the platform data dir)
    #[arg(long, global = true, env = "OPENK_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON (schemas in docs/cli.md)
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); see also OPENK_LOG
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Read the master password from the first line of standard input
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// Keep a change local (do not sync it now; `openk sync` sends it later)
    #[arg(long, global = true)]
    pub no_sync: bool,
    /// Allow plain http:// to a server that is not on this machine (the auth key and tokens cross the network unencrypted; config: insecure_http)
    #[arg(long, global = true)]
    pub insecure_http: bool,
    /// Where `home` came from: `--home`, `OPENK_HOME`, `OPENK_VAULT`, or None (the default).
    #[arg(skip)]
    pub home_from: Option<&'static str>,
    /// The user config, read once before the command runs (see `crate::config`).
    #[arg(skip)]
    pub config: crate::config::Loaded,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault: master password, Secret Key and Emergency Kit
    Init(vault::InitArgs),
    /// Add an item
    Add(items::AddArgs),
    /// List items
    #[command(visible_alias = "list")]
    Ls(items::LsArgs),
    /// Show an item (secret fields masked unless --reveal)
    Show(items::ShowArgs),
    /// Print one raw field value, for scripts (default: the item's password)
    Get(items::GetArgs),
    /// Change an item
    Edit(items::EditArgs),
    /// Copy the vault database to FILE while it is in use (as encrypted as the vault; no Secret Key in it)
    Backup(backup::BackupArgs),
    /// Write every item out: an encrypted OpenK archive (with history) or plaintext JSON / CSV
    Export(export::ExportArgs),
    /// Move an item (or every item --where QUERY matches) to the trash
    #[command(visible_alias = "delete")]
    Rm(items::RmArgs),
    /// Bring an item back from the trash, or the vault from a backup file (`openk backup`)
    Restore(backup::RestoreArgs),
    /// Destroy an item and its history for good
    Purge(items::PurgeArgs),
    /// List an item's versions and what changed (never the values)
    History(items::ItemArg),
    /// Move an item (or every item --where QUERY matches) to another vault, with its history, or to a folder
    #[command(visible_alias = "move")]
    Mv(items::MoveArgs),
    /// Add or remove tags on every item a query matches (--where 'folder:Dev tag:old')
    #[command(subcommand)]
    Tag(items::TagCommand),
    /// Apply a batch of adds, edits and removals (JSON lines) in one transaction
    Apply(apply::ApplyArgs),
    /// Copy an item (its current version) into a vault, as a new item
    Cp(items::CopyItemArgs),
    /// Import another manager's export: KeePass/KeePassXC, Bitwarden, 1Password, LastPass, Chrome, Firefox, pass, OpenK archives
    Import(import::ImportArgs),
    /// Fuzzy search by name, username, URL, tags and folder; filters like kind:login tag:work vault:Team
    Search(items::SearchArgs),
    /// Print the current TOTP code of an item and the seconds left
    Totp(items::ItemArg),
    /// Copy a field to the clipboard (default: the password), cleared after a while
    Copy(copy::CopyArgs),
    /// The clipboard helper `openk copy` starts (internal)
    #[command(name = "__clipboard-hold", hide = true)]
    ClipboardHold(copy::HoldArgs),
    /// Generate a password or passphrase (no vault needed)
    Gen(vault::GenArgs),
    /// Change the master password (re-wraps keys; items are untouched)
    Passwd(vault::PasswdArgs),
    /// Print the Emergency Kit again
    Kit(vault::KitArgs),
    /// Start an agent that keeps this vault unlocked for later commands (no password, no KDF)
    Unlock(session::UnlockArgs),
    /// Stop this vault's agent: it wipes its keys (commands need the password again)
    Lock,
    /// The agent process `openk unlock` starts (internal)
    #[command(name = "__agent", hide = true)]
    Agent(session::AgentArgs),
    /// Upload this account to a sync server (keys stay encrypted)
    Register(remote::RegisterArgs),
    /// Sign in to a server: a new device (empty --home) or this one again
    Login(remote::LoginArgs),
    /// End this device's server session (the local vault stays)
    Logout,
    /// Vault, account, device, server and session state
    Status,
    /// Sync with the server: pull, merge, push (--verify checks the server; --watch stays connected)
    Sync(sync::SyncArgs),
    /// The account's devices: list, rename, revoke
    #[command(subcommand)]
    Device(remote::DeviceCommand),
    /// Vaults: create, list, share with roles (invite, accept, members)
    #[command(subcommand)]
    Vault(shared_vaults::VaultCommand),
    /// Other accounts' keys: their fingerprints, pinned here, verified in person
    #[command(subcommand)]
    Contact(contact::ContactCommand),
    /// Account recovery: a recovery code (and shares of it for trusted people) that sets a new master password and Secret Key
    #[command(subcommand)]
    Recovery(recovery::RecoveryCommand),
    /// Emergency access: a trusted contact gets your items after a wait you can interrupt
    #[command(subcommand)]
    Emergency(emergency::EmergencyCommand),
    /// The account's security events (logins, devices, password changes)
    Audit(remote::AuditArgs),
    /// Keys: rotate the account key, a vault key or the Secret Key; named keys for applications (create, encrypt, sign, derive, …)
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Share links: one item, readable by anyone who has the link, until it expires or is used up
    #[command(subcommand)]
    Share(share::ShareCommand),
    /// Run the sync server (same as `openk-server`); `serve backup` / `serve restore` for its SQLite database
    Serve(remote::ServeCommand),
    /// Open the terminal UI (also what `openk` alone does on a terminal)
    Tui,
    /// Print the effective configuration: every key, its value, its default and where it came from
    Config,
}

impl Command {
    /// Whether the command reads the config file: every command except
    /// `gen` (no vault, no setting), `lock` (wiping the agent's keys must
    /// never depend on a config file), `serve` (the server has its own
    /// settings) and the internal helpers.
    fn reads_config(&self) -> bool {
        !matches!(
            self,
            Self::Gen(_) | Self::Lock | Self::Serve(_) | Self::ClipboardHold(_) | Self::Agent(_)
        )
    }
}

/// Parses the command line. Without a subcommand, `openk` opens the TUI on
/// a terminal; elsewhere it prints the help on stderr and exits 2.
///
/// The data directory (`--home`, `OPENK_HOME`, `OPENK_VAULT`) is made absolute here,
/// once, so that every command, the TUI and the agent see the same path
/// whatever their working directory.
#[must_use]
pub fn parse_args() -> Cli {
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;
    let mut cli = match parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            if crate::tui::is_terminal() {
                parse_from(std::env::args_os().chain([std::ffi::OsString::from("tui")]))
                    .unwrap_or_else(|e| e.exit())
            } else {
                eprintln!("{}", Cli::command().render_help());
                std::process::exit(exit::USAGE);
            }
        }
        Err(e) => e.exit(),
    };
    if let Some(dir) = &cli.global.home {
        match absolute_home_dir(dir) {
            Ok(abs) => cli.global.home = Some(abs),
            Err(e) => {
                eprintln!("error: {}", e.message);
                std::process::exit(e.code);
            }
        }
    }
    cli
}

fn parse_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.global.home_from = match matches.value_source("home") {
        Some(clap::parser::ValueSource::EnvVariable) => Some("OPENK_HOME"),
        Some(clap::parser::ValueSource::CommandLine) => Some("--home"),
        _ => None,
    };
    if cli.global.home.is_none()
        && let Some(old) = std::env::var_os(DEPRECATED_HOME_ENV).filter(|v| !v.is_empty())
    {
        // The name before `--home`: kept so that existing scripts work.
        cli.global.home = Some(PathBuf::from(old));
        cli.global.home_from = Some(DEPRECATED_HOME_ENV);
    }
    Ok(cli)
}

/// `dir` as an absolute path (relative to the working directory), without
/// touching the file system: `.` components go, symlinks stay.
fn absolute_home_dir(dir: &Path) -> CliResult<PathBuf> {
    if dir.as_os_str().is_empty() {
        return Err(CliError::usage(
            "the data directory is empty; pass --home DIR or set OPENK_HOME to a directory",
        ));
    }
    std::path::absolute(dir).map_err(|e| {
        CliError::usage(format!(
            "cannot make the vault path {} absolute: {e}",
            dir.display()
        ))
    })
}

/// Runs a parsed command line.
///
/// # Errors
/// The failure to report and its exit code.
pub async fn run(mut cli: Cli) -> CliResult {
    if cli.command.reads_config() {
        cli.global.config = crate::config::load_with_origin().map_err(CliError::usage)?;
    }
    crate::engine::remote::allow_insecure_http(
        cli.global.insecure_http || cli.global.config.config.insecure_http,
    );
    let result = dispatch(&cli).await;
    if result.is_err() && PASSWORD_CHANGED_ELSEWHERE.load(std::sync::atomic::Ordering::Relaxed) {
        session::lock_after_password_change(&cli.global).await;
    }
    result
}

async fn dispatch(cli: &Cli) -> CliResult {
    let g = &cli.global;
    match &cli.command {
        Command::Init(a) => vault::init(g, a).await,
        Command::Gen(a) => vault::generate(g, a),
        Command::Passwd(a) => {
            vault::passwd(g, a).await?;
            session::lock_after_password_change(g).await;
            Ok(())
        }
        Command::Unlock(a) => session::unlock(g, a).await,
        Command::Lock => session::lock(g).await,
        Command::Agent(_) => Err(CliError::usage(
            "`openk __agent` is started by `openk unlock`",
        )),
        Command::Kit(a) => vault::kit(g, a).await,
        Command::Add(a) => items::add(g, a).await,
        Command::Ls(a) => items::ls(g, a).await,
        Command::Show(a) => items::show(g, a).await,
        Command::Get(a) => items::get(g, a).await,
        Command::Edit(a) => items::edit(g, a).await,
        Command::Sync(a) => sync::sync(g, a).await,
        Command::Rm(a) => items::rm(g, a).await,
        Command::Restore(a) => backup::restore(g, a).await,
        Command::Backup(a) => backup::backup(g, a).await,
        Command::Export(a) => export::export(g, a).await,
        Command::Purge(a) => items::purge(g, a).await,
        Command::History(a) => items::history(g, a).await,
        Command::Mv(a) => items::mv(g, a).await,
        Command::Cp(a) => items::cp(g, a).await,
        Command::Import(a) => import::import(g, a).await,
        Command::Tag(c) => items::tag(g, c).await,
        Command::Apply(a) => apply::apply(g, a).await,
        Command::Search(a) => items::search(g, a).await,
        Command::Totp(a) => items::totp(g, a).await,
        Command::Copy(a) => copy::copy(g, a).await,
        Command::ClipboardHold(a) => copy::hold(a),
        Command::Register(a) => remote::register(g, a).await,
        Command::Login(a) => remote::login(g, a).await,
        Command::Logout => remote::logout(g).await,
        Command::Status => remote::status(g).await,
        Command::Device(c) => remote::device(g, c).await,
        Command::Contact(c) => contact::contact(g, c).await,
        Command::Vault(c) => shared_vaults::vault(g, c).await,
        Command::Recovery(c) => recovery::recovery(g, c).await,
        Command::Emergency(c) => emergency::emergency(g, c).await,
        Command::Audit(a) => remote::audit(g, a).await,
        Command::Key(c) => key::key(g, c).await,
        Command::Share(c) => share::share(g, c).await,
        Command::Serve(a) => remote::serve(a).await,
        Command::Tui => {
            // A bad keymap file is a usage error (exit 2), found before the
            // terminal is taken over.
            crate::tui::load_keymap(&g.config.config).map_err(CliError::usage)?;
            crate::tui::run(vault_dir(g)?, g.config.config.clone())
                .await
                .map_err(CliError::general)
        }
        Command::Config => config::show(g),
    }
}

/// The deprecated name of `OPENK_HOME` (read when `--home` and `OPENK_HOME` are not set).
pub const DEPRECATED_HOME_ENV: &str = "OPENK_VAULT";

/// The data directory: `--home`, `OPENK_HOME`, `OPENK_VAULT`, else the platform data dir.
fn vault_dir(g: &Global) -> CliResult<PathBuf> {
    g.home
        .clone()
        .or_else(engine::files::default_vault_dir)
        .ok_or_else(|| CliError::usage("cannot find a data directory (no HOME?); pass --home DIR"))
}

/// Unlocks the vault with the key of its agent (`openk unlock`) if one runs,
/// else with the password from stdin, `OPENK_PASSWORD` or a prompt.
async fn unlock(g: &Global) -> CliResult<engine::Session> {
    open_vault(g, true, engine::UnlockOptions::default()).await
}

/// Unlocks the vault with the master password even when an agent runs
/// (`openk passwd` must prove the current password).
async fn unlock_with_password(g: &Global) -> CliResult<engine::Session> {
    open_vault(g, false, engine::UnlockOptions::default()).await
}

/// Unlocks the vault; a master password changed on another device is
/// adopted from the server (the engine checks it), said on stderr, and the
/// changes this device kept are synced.
async fn open_vault(
    g: &Global,
    use_agent: bool,
    options: engine::UnlockOptions,
) -> CliResult<engine::Session> {
    let dir = vault_dir(g)?;
    if !engine::has_vault_file(&dir) {
        return Err(engine::Error::NoVault(dir).into());
    }
    // A password on stdin is read (consumed) either way, so that a field
    // given as `-` still finds its own value there.
    let from_stdin = if g.password_stdin {
        Some(input::master_password(g, "Master password: ")?)
    } else {
        None
    };
    let fallback = std::env::var("OPENK_SECRET_KEY")
        .ok()
        .map(zeroize::Zeroizing::new);
    if use_agent
        && let Some(vault) =
            crate::agent::client::open_vault(&dir, fallback.as_deref().map(String::as_str)).await?
    {
        return Ok(vault);
    }
    let password = match from_stdin {
        Some(p) => p,
        None => input::master_password(g, "Master password: ")?,
    };
    let mut vault = engine::Session::unlock_with(
        &dir,
        password,
        fallback.as_deref().map(String::as_str),
        options,
    )
    .await?;
    sync::after_password_adopted(g, &mut vault).await;
    Ok(vault)
}
