//! `openk unlock` and `openk lock`: start and stop the agent that keeps the
//! vault's key between commands (see `crate::agent`), plus the hidden
//! `openk __agent` that is the agent process itself.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::output::{print, print_json, rfc3339};
use super::{Cli, CliError, CliResult, Command, Global, input, vault_dir};
use crate::agent::protocol::{AgentInfo, MAX_LINE, Ready, Secrets};
use crate::agent::{client, daemon};
use crate::engine::{self, SecretString};

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Lock after this many seconds without a command (default: `[agent]
    /// idle_timeout_secs` of the config file, 900; 0 = only `openk lock`)
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: u64,
}

/// Runs the agent process when the command line is `openk __agent`; must be
/// called before any tokio runtime is built.
#[must_use]
pub fn run_agent_process(cli: &Cli) -> Option<u8> {
    let Command::Agent(a) = &cli.command else {
        return None;
    };
    let Some(vault) = cli.global.home.clone() else {
        eprintln!("error: `openk __agent` needs --home");
        return Some(2);
    };
    let code = daemon::main(&daemon::Options {
        vault,
        idle_timeout: (a.idle_timeout > 0).then(|| Duration::from_secs(a.idle_timeout)),
        verbosity: cli.global.verbose,
    });
    Some(u8::try_from(code).unwrap_or(1))
}

fn locks_at_text(info: &AgentInfo) -> String {
    info.locks_at.map_or_else(
        || "only with `openk lock` (no idle timeout)".to_owned(),
        |ms| format!("at {} unless used", super::output::human_time(ms)),
    )
}

fn agent_json(info: &AgentInfo) -> serde_json::Value {
    json!({ "pid": info.pid, "locks_at": info.locks_at.map(rfc3339) })
}

/// `openk status`'s `agent` value: `null` or `{pid, locks_at}`.
pub async fn status_json(dir: &Path) -> (serde_json::Value, Option<String>) {
    match client::status(dir).await {
        Some(info) => (
            agent_json(&info),
            Some(format!(
                "running (pid {}), locks {}",
                info.pid,
                locks_at_text(&info)
            )),
        ),
        None => (serde_json::Value::Null, None),
    }
}

/// `openk unlock`.
///
/// # Errors
/// No vault (4), a wrong password (3), an agent that would not start (1).
pub async fn unlock(g: &Global, a: &UnlockArgs) -> CliResult {
    let dir = vault_dir(g)?;
    if !engine::has_vault_file(&dir) {
        return Err(engine::Error::NoVault(dir).into());
    }
    if let Some(info) = client::status(&dir).await {
        return report(g, &dir, &info, true);
    }
    let idle = match a.idle_timeout {
        Some(s) => s,
        None => g.config.agent.idle_timeout_secs,
    };
    let password = input::master_password(g, "Master password: ")?;
    let secrets = Secrets {
        password,
        secret_key: std::env::var("OPENK_SECRET_KEY")
            .ok()
            .map(SecretString::from),
    };
    let ready = tokio::task::spawn_blocking({
        let dir = dir.clone();
        let verbose = g.verbose;
        move || spawn_agent(&dir, idle, verbose, &secrets)
    })
    .await
    .map_err(|e| CliError::general(format!("the agent start stopped: {e}")))??;
    match ready {
        Ready {
            ok: true,
            agent: Some(info),
            already,
            ..
        } => report(g, &dir, &info, already),
        Ready { code, message, .. } => Err(CliError {
            code: if code == 0 { super::exit::ERROR } else { code },
            message: message.unwrap_or_else(|| "the agent did not start".into()),
        }),
    }
}

fn report(g: &Global, dir: &Path, info: &AgentInfo, already: bool) -> CliResult {
    if g.json {
        let mut v = agent_json(info);
        v["unlocked"] = json!(true);
        v["already"] = json!(already);
        v["home"] = json!(dir);
        return print_json(&v);
    }
    print(&format!(
        "{} The agent (pid {}) keeps {} unlocked; it locks {}.\n",
        if already {
            "Already unlocked."
        } else {
            "Unlocked."
        },
        info.pid,
        dir.display(),
        locks_at_text(info),
    ))
}

/// Starts `openk __agent`, hands it the secrets on its stdin and waits for
/// its one-line answer (after the KDF). The agent detaches on its own; a
/// failed one is reaped here.
fn spawn_agent(dir: &Path, idle: u64, verbose: u8, secrets: &Secrets) -> CliResult<Ready> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::general(format!("cannot find the openk binary: {e}")))?;
    let mut cmd = Process::new(exe);
    cmd.arg("__agent")
        .arg("--home")
        .arg(dir)
        .arg("--idle-timeout")
        .arg(idle.to_string());
    for _ in 0..verbose {
        cmd.arg("-v");
    }
    cmd.env_remove(input::PASSWORD_ENV)
        .env_remove("OPENK_SECRET_KEY")
        .env_remove("OPENK_HOME")
        .env_remove(super::DEPRECATED_HOME_ENV)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::general(format!("cannot start the agent: {e}")))?;
    let line = secrets.encode();
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows up as the agent's error answer below.
        let _ = stdin.write_all(&line);
    }
    drop(line);
    let mut answer = Vec::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut answer);
    }
    let ready: Option<Ready> = serde_json::from_slice(&answer).ok();
    if !ready.as_ref().is_some_and(|r| r.ok && !r.already) {
        // It is exiting (or crashed): reap it.
        let _ = child.wait();
    }
    ready.ok_or_else(|| {
        CliError::general(format!(
            "the agent did not start (see the log in {})",
            engine::files::state_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ))
    })
}

/// `openk lock`.
///
/// # Errors
/// None today beyond a missing vault directory setting.
pub async fn lock(g: &Global) -> CliResult {
    let dir = vault_dir(g)?;
    let locked = if dir.exists() {
        client::lock(&dir).await
    } else {
        None
    };
    if g.json {
        let mut v = json!({ "locked": locked.is_some() });
        if let Some(info) = &locked {
            v["pid"] = json!(info.pid);
        }
        return print_json(&v);
    }
    match locked {
        Some(info) => print(&format!(
            "Locked: the agent (pid {}) wiped its keys and stopped.\n",
            info.pid
        )),
        None => print(&format!(
            "No agent holds {}; nothing to lock.\n",
            dir.display()
        )),
    }
}

/// After a password change: the agent's key no longer opens the vault.
pub async fn lock_after_password_change(g: &Global) {
    if let Ok(dir) = vault_dir(g)
        && let Some(info) = client::lock(&dir).await
    {
        eprintln!(
            "The agent (pid {}) was locked; `openk unlock` starts a new one.",
            info.pid
        );
    }
}
