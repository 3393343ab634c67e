//! `openk-server`: the headless OpenK sync server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use openk_server::{ServeArgs, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "openk-server",
    version,
    about = "The OpenK sync server (stores only ciphertext)"
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default)
    Serve,
    /// Write a consistent snapshot of an SQLite database, even while the server runs
    Backup {
        /// The database to back up (sqlite://PATH)
        #[arg(long, env = "OPENK_SERVER_DATABASE")]
        database: Option<String>,
        /// The snapshot file to create (must not exist)
        #[arg(long)]
        out: PathBuf,
    },
    /// Put an SQLite snapshot back (stop the server first)
    Restore {
        /// A snapshot made by `backup`
        file: PathBuf,
        /// The database to replace (sqlite://PATH)
        #[arg(long, env = "OPENK_SERVER_DATABASE")]
        database: Option<String>,
        /// Replace an existing database
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.serve)?;
    openk_server::init_logging(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => openk_server::launch(settings).await,
        Command::Backup { database, out } => {
            let url = database.unwrap_or(settings.database);
            openk_server::store::backup(&url, &out)
                .await
                .context("backup failed")?;
            eprintln!("Snapshot written to {}", out.display());
            Ok(())
        }
        Command::Restore {
            file,
            database,
            force,
        } => {
            let url = database.unwrap_or(settings.database);
            openk_server::store::restore(&file, &url, force)
                .await
                .context("restore failed")?;
            eprintln!("Restored {} into {url}", file.display());
            Ok(())
        }
    }
}
