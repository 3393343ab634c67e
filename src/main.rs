//! The `openk` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use openk::cli::{self, exit};

fn main() -> ExitCode {
    // Files we create are private, and no core dump may hold decrypted data.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    if let Err(e) = openk::engine::harden_process() {
        eprintln!("warning: could not disable core dumps: {e}");
    }
    let cli = cli::parse_args();
    // The agent (`openk __agent`) logs to a file and builds its own runtime.
    if let Some(code) = cli::run_agent_process(&cli) {
        return ExitCode::from(code);
    }
    // The server logs its own way; the TUI logs to a file, never the screen.
    if !matches!(cli.command, cli::Command::Serve(_) | cli::Command::Tui) {
        openk::logging::init_stderr(cli.global.verbose);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::from(0),
        Err(e) => {
            // Messages embed strings from a server or a file: printed as data.
            eprintln!("error: {}", openk::text::text(&e.message));
            ExitCode::from(u8::try_from(e.code).unwrap_or(exit::ERROR as u8))
        }
    }
}
