//! `openk-server`: the headless OpenK sync server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use openk_server::{AdminCommand, ServeArgs, Settings};

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
    #[command(flatten)]
    Admin(AdminCommand),
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
        Command::Admin(admin) => admin.run(&settings).await,
    }
}
