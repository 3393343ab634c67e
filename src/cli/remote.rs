//! Server commands: register, login, logout, status, device, audit, serve.

use clap::{Args, Subcommand};
use serde_json::json;
use uuid::Uuid;

use super::input::{self, confirm};
use super::output::{print, print_json, table};
use super::{CliError, CliResult, Global, exit, unlock, vault_dir};
use crate::engine::sync::limits;
use crate::engine::{self, remote};
use crate::text;

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Server URL, e.g. https://openk.example.org
    #[arg(long, env = "OPENK_SERVER")]
    pub server: String,
    /// Email address for the account
    #[arg(long)]
    pub email: String,
    /// Name of this device in the device list (default: the host name and a random suffix, e.g. vm-3f2a)
    #[arg(long)]
    pub device_name: Option<String>,
    /// A file holding the one-time invite code of an invite-only server
    /// (`-` reads it from stdin; else OPENK_INVITE). Not on the command
    /// line: other local users could read it there and register first.
    #[arg(long, value_name = "PATH")]
    pub invite_file: Option<std::path::PathBuf>,
}

/// The invite code for `register`: `--invite-file` (`-`: stdin), else
/// `OPENK_INVITE`, else none.
fn read_invite(a: &RegisterArgs) -> CliResult<Option<secrecy::SecretString>> {
    const LIMIT: usize = 4096;
    let bytes = match &a.invite_file {
        Some(path) if path.as_os_str() == "-" => {
            crate::secure_read::to_end(std::io::stdin(), LIMIT).map_err(|e| {
                CliError::usage(format!("cannot read the invite code from stdin: {e}"))
            })?
        }
        Some(path) => crate::secure_read::file(path, LIMIT).map_err(|e| {
            CliError::usage(format!(
                "cannot read the invite code from {}: {e}",
                path.display()
            ))
        })?,
        None => match std::env::var("OPENK_INVITE") {
            Ok(code) => zeroize::Zeroizing::new(code.into_bytes()),
            Err(_) => return Ok(None),
        },
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        CliError::usage(
            "the invite code is not text: put the code `openk serve invite` printed in the file",
        )
    })?;
    let code = text.trim();
    if code.is_empty() {
        return Err(CliError::usage(
            "the invite code is empty: put the code `openk serve invite` printed in the file",
        ));
    }
    Ok(Some(secrecy::SecretString::from(code.to_owned())))
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server URL (default: the one this vault is registered with)
    #[arg(long, env = "OPENK_SERVER")]
    pub server: Option<String>,
    /// Account email (default: the one this vault is registered with)
    #[arg(long)]
    pub email: Option<String>,
    /// The Secret Key from your Emergency Kit (new device), from SOURCE: -, @FILE, env:NAME or prompt (default: OPENK_SECRET_KEY, else a prompt)
    #[arg(long, num_args = 0..=1, default_missing_value = super::secret_arg::PROMPT, value_name = "SOURCE", value_parser = super::secret_arg::SecretSource::parser())]
    pub secret_key: Option<super::secret_arg::SecretSource>,
    /// Accept key derivation parameters below the recommended floor from the server
    #[arg(long)]
    pub allow_weak_kdf: bool,
    /// Name of this device in the device list (default: the host name and a random suffix, e.g. vm-3f2a)
    #[arg(long)]
    pub device_name: Option<String>,
    /// New device: instead of typing the Secret Key, have a signed-in device approve this one
    /// (`openk device approve` there; both show the same code)
    #[arg(long, conflicts_with = "secret_key")]
    pub approve: bool,
    /// With --approve: how long to wait for the approval (1s to 10m; e.g. 90s, 5m)
    #[arg(long, requires = "approve", value_parser = super::approve::parse_wait, value_name = "DURATION", default_value = "10m")]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List the account's devices
    Ls,
    /// List the new devices waiting for approval (`openk login --approve` on them)
    Requests,
    /// Approve a new device: compare the code it shows, then send it the Secret Key, sealed to it
    /// (ID: request id or id prefix; default: the only waiting request)
    Approve {
        id: Option<String>,
        /// `-`: read the code the new device shows from standard input and approve only if it
        /// matches (for scripts; without a terminal this is required)
        #[arg(long, value_name = "-")]
        code: Option<String>,
        /// How long to wait for the new device to answer (1s to 10m)
        #[arg(long, value_parser = super::approve::parse_wait, value_name = "DURATION", default_value = "2m")]
        timeout: std::time::Duration,
    },
    /// Deny a new device's request: nothing is sent to it (ID: request id or prefix; default: the only one)
    Deny { id: Option<String> },
    /// Rename a device (ID: id, id prefix, or `current`)
    Rename { id: String, name: String },
    /// Revoke a device: its session ends at once (ID: id, id prefix, or `current`)
    Revoke {
        id: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// At most this many of the server's own events (logins, …), newest first
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

pub async fn register(g: &Global, a: &RegisterArgs) -> CliResult {
    let invite = read_invite(a)?;
    let mut vault = unlock(g).await?;
    let name = a
        .device_name
        .clone()
        .unwrap_or_else(remote::default_device_name);
    let result = vault
        .register_invited(&a.server, &a.email, &name, invite.as_ref())
        .await;
    let server = vault.remote().map(|r| r.server.clone()).unwrap_or_default();
    let email = vault.remote().map(|r| r.email.clone()).unwrap_or_default();
    let account = vault.account_id();
    // Upload the items right away (unless --no-sync / auto_sync = false),
    // however long a large vault takes: the server has just answered.
    let note = if result.is_ok() {
        super::sync::sync_unless_off(g, &mut vault, None).await
    } else {
        None
    };
    vault.close().await;
    result?;
    super::sync::note_sync(note.as_deref());
    if g.json {
        print_json(
            &json!({ "server": server, "email": email, "account_id": account, "device_name": name }),
        )
    } else {
        print(&format!(
            "Registered {} with {server} as this device ({name:?}).\n\
             The server keeps only encrypted data; your password and Secret Key never leave this machine.\n",
            email
        ))
    }
}

fn read_secret_key(a: &LoginArgs) -> CliResult<zeroize::Zeroizing<String>> {
    if let Some(source) = &a.secret_key {
        return source.read(
            "--secret-key",
            "Secret Key (OK1-…, from your Emergency Kit)",
            super::secret_arg::Ask::Once,
            false,
        );
    }
    if let Ok(sk) = std::env::var("OPENK_SECRET_KEY") {
        return Ok(zeroize::Zeroizing::new(sk));
    }
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let sk = rpassword::prompt_password("Secret Key (OK1-…, from your Emergency Kit): ")
            .map_err(|e| CliError::general(format!("cannot read the Secret Key: {e}")))?;
        return Ok(zeroize::Zeroizing::new(sk));
    }
    Err(CliError::usage(
        "a new device needs the Secret Key: set OPENK_SECRET_KEY or pass --secret-key - \
         (standard input), --secret-key @FILE or --secret-key env:NAME",
    ))
}

pub async fn login(g: &Global, a: &LoginArgs) -> CliResult {
    let dir = vault_dir(g)?;
    if dir.exists() && engine::vault_exists(&dir).await? {
        if a.approve {
            return Err(CliError::usage(format!(
                "{} already holds a vault; --approve signs in a new device: use an empty --home",
                dir.display()
            )));
        }
        // This device already has the vault: a new session for it. A
        // password changed on another device is adopted by the unlock
        // (which then holds a new session already), from the server the
        // user named here only: the vault's record of it is not
        // authenticated until the unlock succeeds.
        let mut vault = super::open_vault(
            g,
            true,
            engine::UnlockOptions {
                allow_weak_kdf: a.allow_weak_kdf,
                confirmed_server: a.server.clone(),
            },
        )
        .await?;
        let Some(record) = vault.remote().cloned() else {
            vault.close().await;
            return Err(CliError::usage(
                "this vault is not registered with a server; use `openk register`, or log in as a new device with --home EMPTY_DIR",
            ));
        };
        if a.server.as_ref().is_some_and(|s| {
            remote::normalize_server_url(s).ok().as_deref() != Some(record.server.as_str())
        }) || a.email.as_ref().is_some_and(|e| {
            openk_server::email::normalize(e).ok().as_deref() != Some(record.email.as_str())
        }) {
            vault.close().await;
            return Err(CliError::usage(format!(
                "this vault belongs to {} on {}; use another --home directory for another account",
                record.email, record.server
            )));
        }
        let result = if vault.adopted_password_change() {
            Ok(())
        } else {
            vault.relogin().await
        };
        vault.close().await;
        match result {
            // The password opens this vault, but the server has another
            // Secret Key (rotated on another device): with the new one, the
            // change is taken here.
            Err(engine::Error::PasswordChanged)
                if a.secret_key.is_some() || std::env::var_os("OPENK_SECRET_KEY").is_some() =>
            {
                let secret_key = read_secret_key(a)?;
                let password = input::master_password(g, "Master password: ")?;
                let vault = engine::Session::take_changed_credentials(
                    &dir,
                    password,
                    &secret_key,
                    engine::UnlockOptions {
                        allow_weak_kdf: a.allow_weak_kdf,
                        confirmed_server: a.server.clone(),
                    },
                )
                .await?;
                vault.close().await;
            }
            other => other?,
        }
        return if g.json {
            print_json(
                &json!({ "server": record.server, "email": record.email, "new_device": false }),
            )
        } else {
            print(&format!(
                "Logged in to {} as {}.\n",
                record.server, record.email
            ))
        };
    }
    let server = a
        .server
        .clone()
        .ok_or_else(|| CliError::usage("--server URL is needed to log in on a new device"))?;
    let email = a
        .email
        .clone()
        .ok_or_else(|| CliError::usage("--email is needed to log in on a new device"))?;
    let name = a
        .device_name
        .clone()
        .unwrap_or_else(remote::default_device_name);
    if a.approve {
        return super::approve::login_approved(
            g,
            &dir,
            &server,
            &email,
            &name,
            a.allow_weak_kdf,
            a.timeout,
        )
        .await;
    }
    let password = input::master_password(g, "Master password: ")?;
    let secret_key = read_secret_key(a)?;
    let vault = remote::login(
        &dir,
        &server,
        &email,
        password,
        &secret_key,
        a.allow_weak_kdf,
        &name,
    )
    .await?;
    let account = vault.account_id();
    let device = vault.device_id();
    vault.close().await;
    if g.json {
        print_json(
            &json!({ "server": server, "email": email, "account_id": account, "device_id": device, "home": dir, "new_device": true }),
        )
    } else {
        print(&format!(
            "Logged in to {server} as {email}; this device's vault is {}.\n`openk sync` downloads your items.\n",
            dir.display()
        ))
    }
}

pub async fn logout(g: &Global) -> CliResult {
    let mut vault = unlock(g).await?;
    let result = vault.logout().await;
    vault.close().await;
    let told = result?;
    if g.json {
        return print_json(&json!({ "logged_out": true, "server_notified": told }));
    }
    if told {
        print("Logged out. The local vault stays on this device; `openk login` signs in again.\n")
    } else {
        print(
            "Logged out locally; the server could not be reached, so its session ends when it expires.\n",
        )
    }
}

/// `openk status`: the local part from the vault alone; the server part
/// with a short deadline ([`limits::STATUS`]), saying what it could not
/// confirm instead of failing.
pub async fn status(g: &Global) -> CliResult {
    let mut vault = unlock(g).await?;
    // The server is asked while the local part is read.
    let probe = vault.remote_status(limits::STATUS).map(tokio::spawn);
    let (count, damaged) = {
        let (entries, damaged) = vault.entries().await?;
        (entries.len(), damaged.len())
    };
    let local_sync = vault.local_sync_status().await?;
    let (vault_id, vault_name) = vault.default_vault();
    let (agent, agent_text) = super::session::status_json(vault.dir()).await;
    let read_only = vault.is_read_only();
    let info = json!({
        "agent": agent,
        "home": vault.dir(),
        "read_only": read_only,
        "vault_id": vault_id,
        "vault_name": vault_name,
        "account_id": vault.account_id(),
        "device_id": vault.device_id(),
        "fingerprint": vault.fingerprint(),
        "kdf": vault.kdf(),
        "items": count,
        "damaged_items": damaged,
        "sync": {
            "pending": local_sync.pending,
            "last_sync": local_sync.last_sync.map(super::output::rfc3339),
            "conflicts": local_sync.conflicts,
        },
    });
    vault.close().await;
    let remote = match probe {
        Some(task) => Some(
            task.await
                .map_err(|e| CliError::general(format!("the server check failed: {e}")))?,
        ),
        None => None,
    };
    if g.json {
        let mut v = info;
        v["server"] = serde_json::to_value(&remote).unwrap_or_default();
        if let Some(p) = remote.as_ref().and_then(|r| r.problem.as_deref()) {
            v["server"]["problem"] = super::errors::message(p).into();
        }
        return print_json(&v);
    }
    let mut rows = vec![
        vec![
            "home".to_owned(),
            info["home"].as_str().unwrap_or("").to_owned(),
        ],
        vec![
            "vault".to_owned(),
            format!(
                "{} ({}){}",
                vault_name_str(&info),
                info["vault_id"].as_str().unwrap_or(""),
                if read_only {
                    ", read-only: changes are refused"
                } else {
                    ""
                }
            ),
        ],
        vec![
            "account".to_owned(),
            info["account_id"].as_str().unwrap_or("").to_owned(),
        ],
        vec![
            "fingerprint".to_owned(),
            format!(
                "{} (compare it with the people you share with)",
                info["fingerprint"].as_str().unwrap_or("")
            ),
        ],
        vec![
            "device".to_owned(),
            info["device_id"].as_str().unwrap_or("").to_owned(),
        ],
        vec![
            "items".to_owned(),
            format!(
                "{count}{}",
                if damaged > 0 {
                    format!(" ({damaged} damaged)")
                } else {
                    String::new()
                }
            ),
        ],
    ];
    rows.push(vec![
        "agent".into(),
        agent_text.unwrap_or_else(|| "none (`openk unlock` starts one)".into()),
    ]);
    match &remote {
        None => rows.push(vec![
            "server".into(),
            "none (local only; `openk register` connects one)".into(),
        ]),
        Some(r) => {
            rows.push(vec![
                "server".into(),
                if r.reachable {
                    format!("{} (answering)", r.server)
                } else if r.confirmed {
                    format!("{}: {}", r.server, r.state)
                } else {
                    format!("{}: {} (could not confirm the session)", r.server, r.state)
                },
            ]);
            rows.push(vec!["email".into(), text::cell(&r.email).into_owned()]);
            rows.push(vec![
                "session".into(),
                match (r.session.as_str(), r.confirmed) {
                    ("expired", _) => "expired (the next `openk sync` renews it)".to_owned(),
                    ("rejected", _) => "rejected by the server (see problem)".to_owned(),
                    (s, true) => text::cell(s).into_owned(),
                    (s, false) => format!("{} (as last known here; not confirmed)", text::cell(s)),
                },
            ]);
            if let Some(p) = &r.problem {
                let p = super::errors::message(p);
                rows.push(vec!["problem".into(), text::cell(&p).into_owned()]);
            }
            rows.push(vec![
                "sync".into(),
                format!(
                    "{} pending change(s); last synced {}",
                    local_sync.pending,
                    local_sync
                        .last_sync
                        .map_or_else(|| "never".to_owned(), super::output::human_time)
                ),
            ]);
            for g in &r.emergency_requests {
                rows.push(vec![
                    "WARNING".into(),
                    format!(
                        "{} asked for emergency access to this account; it opens in {} unless you \
                         deny it: `openk emergency deny {}`",
                        text::cell(&g.contact_email),
                        crate::engine::emergency::human_secs(g.seconds_left.unwrap_or(0)),
                        text::cell(&g.contact_email)
                    ),
                ]);
            }
            if local_sync.conflicts > 0 {
                rows.push(vec![
                    "conflicts".into(),
                    format!(
                        "{} item(s); `openk ls --conflicts` lists them",
                        local_sync.conflicts
                    ),
                ]);
            }
        }
    }
    let text = table(&["", ""], &rows);
    print(
        &text
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
}

fn vault_name_str(info: &serde_json::Value) -> String {
    text::cell(info["vault_name"].as_str().unwrap_or("")).into_owned()
}

/// A device by id, id prefix (4+), exact name, or `current`.
fn pick_device(devices: &[remote::Device], query: &str) -> CliResult<Uuid> {
    let q = query.trim().to_lowercase();
    let found: Vec<_> = devices
        .iter()
        .filter(|d| {
            (q == "current" && d.current)
                || d.id.to_string() == q
                || (q.len() >= 4 && d.id.to_string().starts_with(&q))
                || d.name.to_lowercase() == q
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => Err(CliError {
            code: exit::NOT_FOUND,
            message: format!("no device matches {query:?}; `openk device ls` lists them"),
        }),
        many => Err(CliError {
            code: exit::AMBIGUOUS,
            message: format!(
                "{query:?} matches {} devices; use the id:\n{}",
                many.len(),
                many.iter()
                    .map(|d| format!("  {}  {}", d.id, text::line(&d.name)))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }),
    }
}

pub async fn device(g: &Global, cmd: &DeviceCommand) -> CliResult {
    let mut vault = unlock(g).await?;
    let result = device_inner(g, &mut vault, cmd).await;
    vault.close().await;
    result
}

async fn device_inner(g: &Global, vault: &mut engine::Session, cmd: &DeviceCommand) -> CliResult {
    match cmd {
        DeviceCommand::Requests => return super::approve::requests(g, vault).await,
        DeviceCommand::Approve { id, code, timeout } => {
            return super::approve::approve(g, vault, id.as_deref(), code.as_deref(), *timeout)
                .await;
        }
        DeviceCommand::Deny { id } => return super::approve::deny(g, vault, id.as_deref()).await,
        _ => {}
    }
    let devices = vault.devices().await?;
    match cmd {
        DeviceCommand::Requests | DeviceCommand::Approve { .. } | DeviceCommand::Deny { .. } => {
            Ok(())
        }
        DeviceCommand::Ls => {
            if g.json {
                return print_json(&serde_json::to_value(&devices).unwrap_or_default());
            }
            let rows: Vec<Vec<String>> = devices
                .iter()
                .map(|d| {
                    vec![
                        d.id.to_string(),
                        format!(
                            "{}{}",
                            text::cell(&d.name),
                            if d.current { " (this device)" } else { "" }
                        ),
                        text::cell(d.platform.as_deref().unwrap_or("-")).into_owned(),
                        text::cell(&d.created_at).into_owned(),
                        text::cell(&d.last_seen_at).into_owned(),
                        approver_name(&devices, d.approved_by),
                    ]
                })
                .collect();
            print(&table(
                &[
                    "ID",
                    "NAME",
                    "PLATFORM",
                    "ADDED",
                    "LAST SEEN",
                    "APPROVED BY",
                ],
                &rows,
            ))
        }
        DeviceCommand::Rename { id, name } => {
            let id = pick_device(&devices, id)?;
            let d = vault.rename_device(id, name).await?;
            if g.json {
                print_json(&serde_json::to_value(&d).unwrap_or_default())
            } else {
                print(&format!(
                    "Renamed device {} to {:?}.\n",
                    d.id,
                    text::line(&d.name)
                ))
            }
        }
        DeviceCommand::Revoke { id, yes } => {
            let id = pick_device(&devices, id)?;
            let name = devices
                .iter()
                .find(|d| d.id == id)
                .map(|d| text::line(&d.name).into_owned())
                .unwrap_or_default();
            if !yes
                && !confirm(&format!(
                    "Revoke device {name:?}? It will be signed out at once."
                ))
            {
                return Err(CliError::usage(
                    "revoking a device needs confirmation; confirm on a terminal or pass --yes",
                ));
            }
            vault.revoke_device(id).await?;
            if g.json {
                print_json(&json!({ "id": id, "revoked": true }))
            } else {
                print(&format!("Revoked {name:?}; its session has ended.\n"))
            }
        }
    }
}

/// Who approved a device, for `device ls`: the approver's name while it is
/// on the list, else its id; `-` for a device that came in with the Secret Key.
fn approver_name(devices: &[remote::Device], approver: Option<Uuid>) -> String {
    match approver {
        None => "-".into(),
        Some(id) => devices
            .iter()
            .find(|d| d.id == id)
            .map_or_else(|| id.to_string(), |d| text::cell(&d.name).into_owned()),
    }
}

/// `openk audit`: the account's signed security history, verified (a gap,
/// a bad signature or a dropped tail is tampering: exit 1), then the
/// server's own events, marked as its word.
pub async fn audit(g: &Global, a: &AuditArgs) -> CliResult {
    let mut vault = unlock(g).await?;
    let history = vault.security_history().await;
    let server = if vault.is_logged_in() {
        Some(vault.audit(a.limit.clamp(1, 1000)).await)
    } else {
        None
    };
    vault.close().await;
    let history = history?;
    let (events, server_problem) = match server {
        Some(Ok(e)) => (e, None),
        Some(Err(e)) => (Vec::new(), Some(e.to_string())),
        None => (
            Vec::new(),
            Some("this vault is not logged in to a server".to_owned()),
        ),
    };
    if g.json {
        let mut out = json!({
            "verified": history.verified,
            "checked_server": history.checked_server,
            "entries": history.entries,
            "server_events": events,
        });
        if let Some(t) = &history.tampering {
            out["tampering"] = json!(t);
        }
        if let Some(p) = &history.problem {
            out["problem"] = json!(p);
        }
        if let Some(p) = &server_problem {
            out["server_problem"] = json!(p);
        }
        print_json(&out)?;
    } else {
        print(&audit_text(&history, &events, server_problem.as_deref()))?;
    }
    match history.tampering {
        Some(t) => Err(engine::Error::HistoryTampered(t).into()),
        None => Ok(()),
    }
}

/// The human form of `openk audit`. Every string from the server (or
/// signed by a device, which the server relays) is data: stripped of
/// terminal controls.
fn audit_text(
    h: &engine::security::SecurityHistory,
    events: &[remote::Event],
    server_problem: Option<&str>,
) -> String {
    let mut out = String::new();
    let signed = h.entries.iter().filter(|e| !e.pending).count();
    let banner = match (&h.tampering, h.checked_server, h.verified) {
        (Some(t), _, _) => format!(
            "Security history: TAMPERED at entry {}: {}\nShown: the entries before it.\n",
            t.seq,
            text::line(&t.what)
        ),
        (None, true, true) => format!(
            "Security history (signed by this account's devices): verified, {signed} entries\n"
        ),
        _ => format!(
            "Security history: NOT CHECKED with the server ({}); what this device knows:\n",
            text::line(h.problem.as_deref().unwrap_or("unknown"))
        ),
    };
    out.push_str(&banner);
    if h.entries.is_empty() {
        out.push_str("(no entries)\n");
    } else {
        let rows: Vec<Vec<String>> = h
            .entries
            .iter()
            .map(|e| {
                let detail: Vec<String> = e
                    .detail
                    .iter()
                    .map(|(k, v)| format!("{}={}", text::cell(k), text::cell(v)))
                    .collect();
                vec![
                    if e.pending {
                        "-".to_owned()
                    } else {
                        e.seq.to_string()
                    },
                    super::output::human_time(e.at.saturating_mul(1000)),
                    text::cell(e.kind.as_str()).into_owned(),
                    if e.device.is_empty() {
                        e.device_id.to_string()[..13].to_owned()
                    } else {
                        text::cell(&e.device).into_owned()
                    },
                    if e.pending {
                        format!("{} (not sent yet)", detail.join(" "))
                            .trim_start()
                            .to_owned()
                    } else {
                        detail.join(" ")
                    },
                ]
            })
            .collect();
        out.push_str(&table(&["SEQ", "TIME", "EVENT", "DEVICE", "DETAIL"], &rows));
    }
    out.push_str("\nServer's word (not signed by any device):\n");
    if let Some(p) = server_problem {
        out.push_str(&format!("(could not be read: {})\n", text::line(p)));
        return out;
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                text::cell(&e.at).into_owned(),
                text::cell(&e.kind).into_owned(),
                e.device_id
                    .map(|d| d.to_string()[..13].to_owned())
                    .unwrap_or_default(),
                text::cell(e.address.as_deref().unwrap_or_default()).into_owned(),
                text::cell(e.detail.as_deref().unwrap_or_default()).into_owned(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["TIME", "EVENT", "DEVICE", "ADDRESS", "DETAIL"],
        &rows,
    ));
    out
}

/// `openk serve [backup | restore]`: exactly `openk-server`.
#[derive(Debug, Args)]
#[command(
    subcommand_value_name = "ADMIN",
    subcommand_help_heading = "Administration"
)]
pub struct ServeCommand {
    #[command(flatten)]
    pub args: openk_server::ServeArgs,
    #[command(subcommand)]
    pub admin: Option<openk_server::AdminCommand>,
}

pub async fn serve(serve: &ServeCommand) -> CliResult {
    let settings =
        openk_server::Settings::load(&serve.args).map_err(|e| CliError::usage(format!("{e:#}")))?;
    openk_server::init_logging(settings.log_format);
    let result = match serve.admin.clone() {
        None => openk_server::launch(settings).await,
        Some(admin) => admin.run(&settings).await,
    };
    result.map_err(|e| CliError::general(format!("{e:#}")))
}
