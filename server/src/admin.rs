//! The administration commands both binaries offer: `openk-server backup`
//! / `restore` / `invite` and the same as `openk serve backup` / `restore`
//! / `invite`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::Settings;

/// What an invite code starts with (recognisable in a secret scanner).
pub const INVITE_PREFIX: &str = "oki_";

/// `backup` and `restore` of an SQLite server database; invite codes.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Make one-time invite codes for `--registration invite-only` (one per line on stdout)
    Invite {
        /// How many codes to make
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
        /// The database to add them to [default: the server's database]
        #[arg(long, env = "OPENK_SERVER_DATABASE", value_name = "URL")]
        database: Option<String>,
    },
    /// Write a consistent snapshot of an SQLite database, even while the server runs
    Backup {
        /// The database to back up (sqlite://PATH) [default: the server's database]
        #[arg(long, env = "OPENK_SERVER_DATABASE", value_name = "URL")]
        database: Option<String>,
        /// The snapshot file to create (must not exist)
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Put an SQLite snapshot back (stop the server first)
    Restore {
        /// A snapshot made by `backup`
        file: PathBuf,
        /// The database to replace (sqlite://PATH) [default: the server's database]
        #[arg(long, env = "OPENK_SERVER_DATABASE", value_name = "URL")]
        database: Option<String>,
        /// Replace an existing database
        #[arg(long)]
        force: bool,
    },
}

impl AdminCommand {
    /// Runs the command against `settings.database` unless it names its
    /// own; reports what it did on stderr.
    ///
    /// # Errors
    /// A database that is not SQLite, a snapshot that exists already (or
    /// a target without `--force`), a file that is not an OpenK database.
    pub async fn run(self, settings: &Settings) -> anyhow::Result<()> {
        match self {
            Self::Invite { count, database } => {
                let url = database.unwrap_or_else(|| settings.database.clone());
                let store = crate::store::connect(&url).await.with_context(|| {
                    format!(
                        "cannot open the database {}",
                        crate::settings::redact_url(&url)
                    )
                })?;
                let now = crate::state::now_millis();
                let mut codes = Vec::new();
                for _ in 0..count {
                    let code = crate::auth::new_token(INVITE_PREFIX);
                    store
                        .create_invite(&crate::auth::token_hash(&code), now)
                        .await
                        .context("cannot store the invite code")?;
                    codes.push(code);
                }
                // Only the codes on stdout, so that scripts can take them.
                println!("{}", codes.join("\n"));
                eprintln!(
                    "{count} one-time invite code(s) made; each registers one account (openk register --invite-file FILE)."
                );
                if settings.registration != crate::settings::Registration::InviteOnly {
                    eprintln!(
                        "note: registration is not invite-only in this configuration; start the server with --registration invite-only for codes to be required"
                    );
                }
            }
            Self::Backup { database, out } => {
                let url = database.unwrap_or_else(|| settings.database.clone());
                crate::store::backup(&url, &out)
                    .await
                    .context("backup failed")?;
                eprintln!("Snapshot written to {}", out.display());
            }
            Self::Restore {
                file,
                database,
                force,
            } => {
                let url = database.unwrap_or_else(|| settings.database.clone());
                crate::store::restore(&file, &url, force)
                    .await
                    .context("restore failed")?;
                eprintln!(
                    "Restored {} into {}",
                    file.display(),
                    crate::settings::redact_url(&url)
                );
            }
        }
        Ok(())
    }
}
