//! `openk emergency`: grant a trusted contact access to this account after
//! a wait (the owner is told of a request and can deny it), and, as the
//! contact, ask for and use such a grant.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::input::{self, confirm};
use super::items::{default_field, field_value};
use super::output::{print, print_exact, print_json, table};
use super::{CliError, CliResult, Global, unlock};
use crate::engine::emergency::{EmergencyRole, GrantInfo, human_secs, parse_wait};
use crate::engine::{self, Session, remote};
use crate::text;

#[derive(Debug, Subcommand)]
pub enum EmergencyCommand {
    /// Grant an account emergency access to yours: after they ask and the wait passes without your denial, they get it
    Grant {
        /// The contact's email
        email: String,
        /// How long a request waits before access opens: a number and s, m, h or d (1h to 90d; e.g. 7d)
        #[arg(long, value_name = "WAIT")]
        wait: String,
        /// view (read your items) or takeover (also take the account over: new password and Secret Key)
        #[arg(long, value_parser = parse_role, default_value = "view")]
        role: EmergencyRole,
        /// The contact's fingerprint as they read it to you (else shown and asked on a terminal)
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
    },
    /// The grants you gave (with their state and time left) and the ones you hold
    Ls,
    /// Ask for the emergency access an owner granted you (the wait starts; they are told)
    Request {
        /// The owner's email
        owner: String,
    },
    /// Deny a contact's pending request: nothing is released (the grant stays)
    Deny {
        /// The contact's email
        contact: String,
    },
    /// Revoke a grant you gave: the key sealed to the contact is deleted
    Revoke {
        /// The contact's email
        contact: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// After the wait: list the owner's items (names, kinds, vaults)
    Open {
        /// The owner's email
        owner: String,
    },
    /// After the wait: print a field of one of the owner's items (like `openk get`)
    Get {
        /// The owner's email
        owner: String,
        /// The item: its name or id (prefix of 4+)
        item: String,
        /// The field (default: the kind's main secret, e.g. the password)
        field: Option<String>,
    },
    /// After the wait, with a takeover grant: set a new master password and Secret Key for the owner's account, sign it in here in a new directory and rotate its key
    Takeover(TakeoverArgs),
}

#[derive(Debug, Args)]
pub struct TakeoverArgs {
    /// The owner's email
    pub owner: String,
    /// The new, empty directory for the owner's vault (your own stays at --home)
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// Read the new master password from the first line of stdin
    #[arg(long)]
    pub new_password_stdin: bool,
    /// Keep a new master password zxcvbn rates weak
    #[arg(long)]
    pub weak_password: bool,
    /// This device's name in the owner's device list (default: the host name)
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
    /// Also write the new Emergency Kit to this file (mode 0600, must not exist)
    #[arg(long, value_name = "PATH")]
    pub kit: Option<PathBuf>,
    /// Accept KDF parameters below the floor (your own vault's are used)
    #[arg(long)]
    pub allow_weak_kdf: bool,
}

fn parse_role(s: &str) -> Result<EmergencyRole, String> {
    EmergencyRole::parse(s).ok_or_else(|| format!("{s:?} is not a role: use view or takeover"))
}

pub async fn emergency(g: &Global, cmd: &EmergencyCommand) -> CliResult {
    if let EmergencyCommand::Takeover(a) = cmd {
        return takeover(g, a).await;
    }
    let mut session = unlock(g).await?;
    let result = run(g, &mut session, cmd).await;
    session.close().await;
    result
}

/// One grant as a table row: the other account, role, wait, state.
fn row(other: &str, gi: &GrantInfo) -> Vec<String> {
    let state = match (gi.state.as_str(), gi.seconds_left) {
        ("requested", Some(0)) => "requested (wait over)".to_owned(),
        ("requested", Some(s)) => format!("requested, opens in {}", human_secs(s)),
        (s, _) => text::cell(s).into_owned(),
    };
    vec![
        text::cell(other).into_owned(),
        text::cell(&gi.role).into_owned(),
        human_secs(gi.wait_secs),
        state,
    ]
}

async fn run(g: &Global, s: &mut Session, cmd: &EmergencyCommand) -> CliResult {
    match cmd {
        EmergencyCommand::Grant {
            email,
            wait,
            role,
            fingerprint,
        } => {
            let wait_secs = parse_wait(wait)?;
            let (c, gi) = match fingerprint {
                Some(fp) => s.emergency_grant(email, *role, wait_secs, Some(fp)).await?,
                None => {
                    // One lookup: the fingerprint shown is of exactly the
                    // keys the grant is sealed to.
                    let c = s.contact(email).await?;
                    c.check_shareable()?;
                    let asked = format!(
                        "{} has the fingerprint\n  {}\nDoes it match what they read you (their `openk status`)?",
                        text::line(&c.email),
                        c.fingerprint
                    );
                    if !confirm(&asked) {
                        return Err(CliError::usage(
                            "nothing was granted: compare the fingerprint with the contact, then run again (or pass --fingerprint FP)",
                        ));
                    }
                    let gi = s.emergency_grant_contact(&c, *role, wait_secs).await?;
                    (c, gi)
                }
            };
            if g.json {
                return print_json(&json!({
                    "id": gi.id, "email": c.email, "role": gi.role, "wait_secs": gi.wait_secs,
                    "fingerprint": c.fingerprint, "state": gi.state,
                }));
            }
            print(&format!(
                "Granted {} emergency {} access after a wait of {}. They ask with `openk emergency request {}`; you are told (`openk status`, `openk emergency ls`) and can deny it with `openk emergency deny {}` during the wait.\n",
                text::line(&c.email),
                text::line(&gi.role),
                human_secs(gi.wait_secs),
                text::line(&gi.owner_email),
                text::line(&c.email),
            ))
        }
        EmergencyCommand::Ls => {
            let grants = s.emergency_grants().await?;
            if g.json {
                return print_json(&serde_json::to_value(&grants).unwrap_or_default());
            }
            let mut out = String::new();
            if grants.given.is_empty() {
                out.push_str("You gave no emergency access grants.\n");
            } else {
                out.push_str("Given (your account, to):\n");
                let rows: Vec<Vec<String>> = grants
                    .given
                    .iter()
                    .map(|gi| row(&gi.contact_email, gi))
                    .collect();
                out.push_str(&table(&["CONTACT", "ROLE", "WAIT", "STATE"], &rows));
            }
            if grants.held.is_empty() {
                out.push_str("You hold no emergency access grants.\n");
            } else {
                out.push_str("Held (their account, to you):\n");
                let rows: Vec<Vec<String>> = grants
                    .held
                    .iter()
                    .map(|gi| row(&gi.owner_email, gi))
                    .collect();
                out.push_str(&table(&["OWNER", "ROLE", "WAIT", "STATE"], &rows));
            }
            for p in grants.pending() {
                out.push_str(&format!(
                    "WARNING: {} asked for emergency access to your account; deny it with `openk emergency deny {}`\n",
                    text::line(&p.contact_email),
                    text::line(&p.contact_email)
                ));
            }
            print(&out)
        }
        EmergencyCommand::Request { owner } => {
            let gi = s.emergency_request(owner).await?;
            if g.json {
                return print_json(&serde_json::to_value(&gi).unwrap_or_default());
            }
            let left = gi.seconds_left.unwrap_or(0);
            print(&format!(
                "Asked {} for emergency access. It opens in {} unless they deny it; then `openk emergency open {}`.\n",
                text::line(&gi.owner_email),
                human_secs(left),
                text::line(&gi.owner_email),
            ))
        }
        EmergencyCommand::Deny { contact } => {
            s.emergency_deny(contact).await?;
            if g.json {
                return print_json(&json!({ "denied": contact.trim() }));
            }
            print(&format!(
                "Denied the request of {}: nothing was released (the grant stays; `openk emergency revoke` removes it).\n",
                text::line(contact.trim())
            ))
        }
        EmergencyCommand::Revoke { contact, yes } => {
            if !yes
                && !confirm(&format!(
                    "Revoke the emergency access of {}?",
                    text::line(contact.trim())
                ))
            {
                return Err(CliError::usage(
                    "nothing was revoked (pass --yes to revoke without a terminal)",
                ));
            }
            s.emergency_revoke(contact).await?;
            if g.json {
                return print_json(&json!({ "revoked": contact.trim() }));
            }
            print(&format!(
                "Revoked the emergency access of {}.\n",
                text::line(contact.trim())
            ))
        }
        EmergencyCommand::Open { owner } => {
            let access = s.emergency_open(owner).await?;
            if g.json {
                let items: Vec<serde_json::Value> = access
                    .items
                    .iter()
                    .map(|i| {
                        json!({
                            "id": i.item.r.id,
                            "name": i.item.overview.name,
                            "kind": i.item.overview.kind,
                            "vault": i.vault,
                            "subtitle": i.item.overview.subtitle,
                        })
                    })
                    .collect();
                return print_json(&json!({
                    "owner": access.owner_email,
                    "grant_id": access.grant_id,
                    "role": access.role,
                    "vaults": access.vaults,
                    "items": items,
                    "unreadable": access.unreadable,
                }));
            }
            let rows: Vec<Vec<String>> = access
                .items
                .iter()
                .map(|i| {
                    vec![
                        text::cell(&i.item.overview.name).into_owned(),
                        serde_json::to_value(i.item.overview.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        text::cell(&i.vault).into_owned(),
                        i.item.r.id.to_string(),
                    ]
                })
                .collect();
            let mut out = format!(
                "Emergency access to {} ({} item(s)):\n",
                text::line(&access.owner_email),
                access.items.len()
            );
            out.push_str(&table(&["NAME", "KIND", "VAULT", "ID"], &rows));
            if access.unreadable > 0 {
                out.push_str(&format!(
                    "{} record(s) did not open (items of a shared vault whose key a manager rotated)\n",
                    access.unreadable
                ));
            }
            print(&out)
        }
        EmergencyCommand::Get { owner, item, field } => {
            let it = s.emergency_item(owner, item).await?;
            let field = field.clone().unwrap_or_else(|| default_field(&it));
            let value = zeroize::Zeroizing::new(field_value(&it, &field)?);
            if g.json {
                return print_json(&json!({
                    "id": it.r.id,
                    "name": it.overview.name,
                    "field": field,
                    "value": value.as_str(),
                }));
            }
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                print(&format!("{}\n", value.as_str()))
            } else {
                print_exact(&zeroize::Zeroizing::new(format!("{}\n", value.as_str())))
            }
        }
        EmergencyCommand::Takeover(_) => unreachable_takeover(),
    }
}

/// `Takeover` is run by [`takeover`] before a vault is unlocked.
fn unreachable_takeover() -> CliResult {
    Err(CliError::general("internal: takeover runs on its own"))
}

async fn takeover(g: &Global, a: &TakeoverArgs) -> CliResult {
    let dir = std::path::absolute(&a.into).unwrap_or_else(|_| a.into.clone());
    if dir.exists() && engine::vault_exists(&dir).await? {
        return Err(CliError::usage(format!(
            "{} holds a vault already; take the account over into a new directory (--into NEW_DIR)",
            dir.display()
        )));
    }
    if let Some(kit) = &a.kit
        && kit.exists()
    {
        return Err(CliError::usage(format!(
            "{} exists; choose a new file for the Emergency Kit",
            kit.display()
        )));
    }
    let mut s = unlock(g).await?;
    let password = match input::new_password(
        a.new_password_stdin,
        None,
        "master password",
        a.weak_password,
    ) {
        Ok(p) => p,
        Err(e) => {
            s.close().await;
            return Err(e);
        }
    };
    let device_name = a
        .device_name
        .clone()
        .unwrap_or_else(remote::default_device_name);
    let taken = s
        .emergency_takeover(&a.owner, &dir, password, a.allow_weak_kdf, &device_name)
        .await;
    s.close().await;
    let Some((kit_note, secret_key)) =
        super::recovery::new_kit(g, &dir, a.kit.as_deref(), taken?).await?
    else {
        return Ok(());
    };
    print(&format!(
        "Took over the account of {} into {}.\n\
         New Secret Key: {}\n\n\
         {kit_note}\n\
         The old master password and Secret Key no longer work, every session of the account ended,\n\
         the grant is used up, and the account key was rotated. Use it with `--home {}`.\n",
        text::line(a.owner.trim()),
        dir.display(),
        secret_key.as_str(),
        dir.display(),
    ))
}
