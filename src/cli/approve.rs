//! Device approval from the command line (issue 13): `openk login
//! --approve` on the new device, `openk device requests | approve | deny`
//! on a signed-in one. The protocol is the engine's (`engine::approval`);
//! here are the prompts, the waiting and the words.

use std::io::Write as _;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use super::input::{self, confirm};
use super::output::{print, print_json, table};
use super::{CliError, CliResult, Global, exit};
use crate::engine::approval::{self, ApprovalEnd, Waiting};
use crate::engine::{self, Error};
use crate::text;

/// How long `--timeout` may be: up to the server's ten minutes.
const MAX_WAIT: Duration = approval::DEFAULT_WAIT;

/// `--timeout`: seconds (`90`, `90s`) or minutes (`5m`), 1 s to 10 min.
pub fn parse_wait(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 90s or 5m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" | "min" => n.saturating_mul(60),
        other => return Err(format!("unknown unit {other:?} in {text:?}: use s or m")),
    };
    let d = Duration::from_secs(secs);
    if d.is_zero() || d > MAX_WAIT {
        return Err(format!(
            "{text}: wait 1s to 10m (a request expires after 10 minutes)"
        ));
    }
    Ok(d)
}

/// Progress for a person (stderr, so that stdout stays the result).
fn say(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", text::text(text));
    let _ = err.flush();
}

/// Waits for `fut` unless Ctrl-C comes first (then `None`).
async fn or_ctrl_c<T>(fut: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        out = fut => Some(out),
        _ = tokio::signal::ctrl_c() => None,
    }
}

/// `openk login --approve` on a new device: asks for the master password,
/// requests an approval, shows the code once a signed-in device takes the
/// request, waits for the Secret Key and signs in.
pub async fn login_approved(
    g: &Global,
    dir: &std::path::Path,
    server: &str,
    email: &str,
    device_name: &str,
    allow_weak_kdf: bool,
    timeout: Duration,
) -> CliResult {
    let password = input::master_password(g, "Master password: ")?;
    let mut n = approval::request_approval(server, email, device_name).await?;
    let waiting = Waiting {
        timeout: timeout.min(n.expires_in()),
        poll: approval::DEFAULT_POLL,
    };
    let started = Instant::now();
    say(&format!(
        "Asked {email}'s signed-in devices to approve this one ({:?}, {}).\n\
         On one of them run `openk device approve` (or open the devices pane of `openk tui`).\n\
         Waiting up to {} s; Ctrl-C cancels.",
        n.device_name(),
        n.platform(),
        waiting.timeout.as_secs()
    ));
    let code = match or_ctrl_c(n.wait_for_code(waiting, started)).await {
        Some(code) => code?,
        None => return cancelled(&n).await,
    };
    if g.json {
        // One line a script can read before the final answer.
        print_json(&json!({ "approval_id": n.id(), "code": code.as_str() }))?;
    }
    say(&format!(
        "code: {code}\nCheck that the other device shows this code, and confirm there."
    ));
    let approved = match or_ctrl_c(n.wait_for_secret(waiting, started)).await {
        Some(approved) => approved?,
        None => return cancelled(&n).await,
    };
    // A mistyped master password can be typed again on a terminal: the
    // Secret Key that came is kept for the next try.
    let mut password = password;
    let mut tries = 1;
    let vault = loop {
        match n.login(dir, &approved, password, allow_weak_kdf).await {
            Err(Error::WrongPassword) if tries < 3 && retypable(g) => {
                say("Wrong master password; try again.");
                password = input::master_password(g, "Master password: ")?;
                tries += 1;
            }
            other => break other?,
        }
    };
    let account = vault.account_id();
    let device = vault.device_id();
    vault.close().await;
    if g.json {
        print_json(&json!({
            "server": server, "email": email, "account_id": account, "device_id": device,
            "home": dir, "new_device": true, "approved": true,
        }))
    } else {
        print(&format!(
            "Approved. Logged in to {server} as {email}; this device's vault is {}.\n\
             `openk sync` downloads your items.\n",
            dir.display()
        ))
    }
}

async fn cancelled(n: &approval::NewDevice) -> CliResult {
    n.cancel().await;
    Err(Error::ApprovalEnded(ApprovalEnd::Interrupted).into())
}

/// Whether the master password comes from a prompt (so it can be asked again).
fn retypable(g: &Global) -> bool {
    !g.password_stdin && std::env::var_os("OPENK_PASSWORD").is_none() && input::interactive()
}

/// A request by id or id prefix (4+), or the only one when `query` is none.
fn pick(requests: &[approval::Request], query: Option<&str>) -> CliResult<Uuid> {
    let found: Vec<_> = match query {
        None => requests.iter().collect(),
        Some(q) => {
            let q = q.trim().to_lowercase();
            requests
                .iter()
                .filter(|r| {
                    let id = r.id.to_string();
                    id == q || (q.len() >= 4 && id.starts_with(&q))
                })
                .collect()
        }
    };
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => Err(CliError {
            code: exit::NOT_FOUND,
            message: match query {
                None => "no device is waiting for approval; run `openk login --approve` on the new device first".into(),
                Some(q) => format!("no device request matches {q:?}; `openk device requests` lists them"),
            },
        }),
        many => Err(CliError {
            code: exit::AMBIGUOUS,
            message: format!(
                "{} devices are waiting; name one by its id:\n{}",
                many.len(),
                many.iter()
                    .map(|r| format!(
                        "  {}  {} ({})",
                        r.id,
                        text::line(&r.device_name),
                        text::line(&r.platform)
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }),
    }
}

/// `openk device requests`.
pub async fn requests(g: &Global, vault: &mut engine::Session) -> CliResult {
    let requests = vault.approval_requests().await?;
    if g.json {
        return print_json(&serde_json::to_value(&requests).unwrap_or_default());
    }
    if requests.is_empty() {
        return print("No device is waiting for approval.\n");
    }
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                text::cell(&r.device_name).into_owned(),
                text::cell(&r.platform).into_owned(),
                text::cell(&r.created_at).into_owned(),
                format!("{} s", r.expires_in),
                text::cell(&r.state).into_owned(),
            ]
        })
        .collect();
    print(&table(
        &["ID", "NAME", "PLATFORM", "REQUESTED", "EXPIRES IN", "STATE"],
        &rows,
    ))
}

/// `openk device approve [ID] [--code -]`.
pub async fn approve(
    g: &Global,
    vault: &mut engine::Session,
    id: Option<&str>,
    code: Option<&str>,
    timeout: Duration,
) -> CliResult {
    let code_from_stdin = match code {
        None => false,
        Some("-") => true,
        Some(_) => {
            return Err(CliError::usage(
                "--code takes `-`: the code exists only once this device has taken the request, \
                 so it is read from standard input then (a script writes it there when the new \
                 device shows it)",
            ));
        }
    };
    if code_from_stdin && g.password_stdin {
        return Err(CliError::usage(
            "--code - and --password-stdin both read standard input; pass the password in \
             OPENK_PASSWORD instead",
        ));
    }
    if !code_from_stdin && !input::interactive() {
        return Err(CliError::usage(
            "approving a device needs the code compared: run it on a terminal, or pass --code - \
             and write the code the new device shows on standard input",
        ));
    }
    let requests = vault.approval_requests().await?;
    let id = pick(&requests, id)?;
    let request = requests.iter().find(|r| r.id == id).cloned();
    if let Some(r) = &request {
        say(&format!(
            "Device {:?} ({}) asks to join; requested {}.\nWaiting for it to answer…",
            text::line(&r.device_name),
            text::line(&r.platform),
            text::line(&r.created_at)
        ));
    }
    let waiting = Waiting {
        timeout,
        poll: approval::DEFAULT_POLL,
    };
    let claim = match or_ctrl_c(vault.claim_approval(id, waiting)).await {
        Some(claim) => claim?,
        None => {
            vault.deny_approval(id).await.ok();
            return Err(Error::ApprovalEnded(ApprovalEnd::Interrupted).into());
        }
    };
    let name = text::line(&claim.request.device_name).into_owned();
    let platform = text::line(&claim.request.platform).into_owned();
    let code = claim.code().clone();
    if code_from_stdin {
        say("Type the code the new device shows:");
        let typed = read_code_line()?;
        vault.approve_if_code(claim, &typed).await?;
    } else {
        say(&format!(
            "\n  code: {code}\n  device: {name:?} ({platform})\n"
        ));
        if !confirm("Does the new device show this code? Approve it?") {
            vault.deny_approval(id).await.ok();
            return Err(CliError {
                code: exit::NOT_APPROVED,
                message: "not approved: the request was denied and nothing was sent".into(),
            });
        }
        vault.approve(claim).await?;
    }
    if g.json {
        print_json(
            &json!({ "id": id, "approved": true, "device_name": name, "platform": platform }),
        )
    } else {
        print(&format!(
            "Approved {name:?} ({platform}); it signs in with its master password.\n"
        ))
    }
}

fn read_code_line() -> CliResult<String> {
    let line = crate::secure_read::line(std::io::stdin(), 64)
        .map_err(|e| CliError::usage(format!("cannot read the code from standard input: {e}")))?
        .unwrap_or_default();
    let text = std::str::from_utf8(&line)
        .map_err(|_| CliError::usage("the code on standard input is not text"))?;
    Ok(text.trim().to_owned())
}

/// `openk device deny [ID]`.
pub async fn deny(g: &Global, vault: &mut engine::Session, id: Option<&str>) -> CliResult {
    let requests = vault.approval_requests().await?;
    let id = pick(&requests, id)?;
    vault.deny_approval(id).await?;
    if g.json {
        print_json(&json!({ "id": id, "denied": true }))
    } else {
        print("Denied; nothing was sent to that device.\n")
    }
}
