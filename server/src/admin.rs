//! The administration commands both binaries offer: `openk-server backup`
//! / `restore` and the same as `openk serve backup` / `restore`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::Settings;

/// `backup` and `restore` of an SQLite server database.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
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
