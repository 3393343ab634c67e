//! `openk vault`: the vaults of this account and the ones shared with it —
//! create, list, invite with the invitee's fingerprint, accept or decline,
//! members and roles.

use clap::Subcommand;
use serde_json::json;

use super::input::confirm;
use super::output::{print, print_json, table};
use super::{CliError, CliResult, Global, unlock};
use crate::engine::Session;
use crate::engine::members::Role;
use crate::text;

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Create a vault (synced to the server with the next sync)
    Create {
        /// Its name
        name: String,
    },
    /// The vaults here: personal and shared, with your role
    Ls,
    /// Rename a vault (yours, or one you manage)
    Rename {
        /// The vault (name or id)
        vault: String,
        /// Its new name
        name: String,
    },
    /// Invite an account to a vault of yours, with a role
    Invite {
        /// The vault (name or id)
        vault: String,
        /// The account's email
        email: String,
        /// viewer (reads), editor (also writes items) or manager (also manages members)
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The invitee's fingerprint as they read it to you (else shown and asked on a terminal)
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
    },
    /// Invitations waiting for your answer
    Invitations,
    /// Accept an invitation (VAULT: the vault's id as `openk vault invitations` lists it)
    Accept { vault: String },
    /// Decline an invitation
    Decline { vault: String },
    /// A shared vault's members, roles and fingerprints
    Members { vault: String },
    /// Give a member another role
    Role {
        vault: String,
        email: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Remove a member (a manager): the vault key is rotated, so they open nothing written after
    Remove {
        /// The vault (name or id)
        vault: String,
        /// The member's email
        email: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Leave a vault shared with you: it goes from this device (edits not yet synced stay, in your personal vault)
    Leave {
        /// The vault (name or id)
        vault: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Who added, changed, moved or removed which item, and who joined or left (managers)
    Activity {
        /// The vault (name or id)
        vault: String,
        /// At most this many lines, newest first
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: use viewer, editor or manager"))
}

pub async fn vault(g: &Global, cmd: &VaultCommand) -> CliResult {
    let mut session = unlock(g).await?;
    let result = run(g, &mut session, cmd).await;
    session.close().await;
    result
}

fn invitation_id(s: &str) -> Result<uuid::Uuid, CliError> {
    uuid::Uuid::parse_str(s.trim()).map_err(|_| {
        CliError::usage(format!(
            "{s:?} is not a vault id; `openk vault invitations` lists the ids"
        ))
    })
}

async fn run(g: &Global, s: &mut Session, cmd: &VaultCommand) -> CliResult {
    match cmd {
        VaultCommand::Create { name } => {
            let id = s.create_vault(name).await?;
            if g.json {
                return print_json(&json!({ "id": id, "name": name.trim() }));
            }
            print(&format!(
                "Created vault {:?} ({id}); `openk add … --vault {:?}` adds to it.\n",
                name.trim(),
                name.trim()
            ))
        }
        VaultCommand::Ls => {
            let vaults = s.vault_list().await?;
            if g.json {
                return print_json(&serde_json::to_value(&vaults).unwrap_or_default());
            }
            let rows: Vec<Vec<String>> = vaults
                .iter()
                .map(|v| {
                    let (kind, role) = match &v.shared {
                        None => ("personal".to_owned(), "owner".to_owned()),
                        Some(sh) if sh.mine => ("shared".to_owned(), "owner".to_owned()),
                        Some(sh) => (
                            format!("shared by {}", text::cell(&sh.owner_email)),
                            sh.role.as_str().to_owned(),
                        ),
                    };
                    vec![
                        text::cell(&v.name).into_owned(),
                        kind,
                        role,
                        v.id.to_string(),
                    ]
                })
                .collect();
            print(&table(&["NAME", "KIND", "ROLE", "ID"], &rows))
        }
        VaultCommand::Rename { vault, name } => {
            let id = s.resolve_vault(vault)?;
            s.rename_vault(id, name).await?;
            print(&format!("Renamed the vault to {:?}.\n", name.trim()))
        }
        VaultCommand::Invite {
            vault,
            email,
            role,
            fingerprint,
        } => {
            let id = s.resolve_vault(vault)?;
            let c = match fingerprint {
                Some(fp) => s.invite(id, email, *role, Some(fp)).await?,
                None => {
                    // One lookup: the fingerprint shown is of exactly the
                    // keys the invitation is sealed to.
                    let c = s.contact(email).await?;
                    c.check_shareable()?;
                    let asked = format!(
                        "{} has the fingerprint\n  {}\nDoes it match what they read you (their `openk status`)?",
                        text::line(&c.email),
                        c.fingerprint
                    );
                    if !confirm(&asked) {
                        return Err(CliError::usage(
                            "nothing was shared: compare the fingerprint with the invitee, then run again (or pass --fingerprint FP)",
                        ));
                    }
                    s.invite_contact(id, &c, *role).await?;
                    c
                }
            };
            if g.json {
                return print_json(&json!({
                    "vault_id": id, "email": c.email, "role": role.as_str(), "fingerprint": c.fingerprint,
                }));
            }
            print(&format!(
                "Invited {} as {}; they accept with `openk vault accept {id}`.\n",
                text::line(&c.email),
                role.as_str()
            ))
        }
        VaultCommand::Invitations => {
            let invites = s.invitations().await?;
            if g.json {
                return print_json(&serde_json::to_value(&invites).unwrap_or_default());
            }
            if invites.is_empty() {
                return print("No invitations.\n");
            }
            let rows: Vec<Vec<String>> = invites
                .iter()
                .map(|i| {
                    vec![
                        i.vault_id.to_string(),
                        text::cell(&i.name).into_owned(),
                        text::cell(&i.owner_email).into_owned(),
                        text::cell(&i.role).into_owned(),
                    ]
                })
                .collect();
            print(&table(&["VAULT", "NAME", "FROM", "ROLE"], &rows))
        }
        VaultCommand::Accept { vault } => {
            let id = invitation_id(vault)?;
            let name = s.accept(id).await?;
            if g.json {
                return print_json(&json!({ "vault_id": id, "name": name }));
            }
            print(&format!(
                "Joined {:?}; `openk sync` brings its items.\n",
                text::line(&name)
            ))
        }
        VaultCommand::Decline { vault } => {
            let id = invitation_id(vault)?;
            s.decline(id).await?;
            print("Declined.\n")
        }
        VaultCommand::Members { vault } => {
            let id = s.resolve_vault(vault)?;
            let members = s.members(id).await?;
            if g.json {
                return print_json(&serde_json::to_value(&members).unwrap_or_default());
            }
            let rows: Vec<Vec<String>> = members
                .iter()
                .map(|m| {
                    vec![
                        text::cell(&m.email).into_owned(),
                        m.role.as_str().to_owned(),
                        m.status.clone(),
                        m.fingerprint.clone(),
                        m.trust.clone(),
                    ]
                })
                .collect();
            print(&table(
                &["EMAIL", "ROLE", "STATUS", "FINGERPRINT", "TRUST"],
                &rows,
            ))
        }
        VaultCommand::Role { vault, email, role } => {
            let id = s.resolve_vault(vault)?;
            s.set_role(id, email, *role).await?;
            print(&format!(
                "{} is now {} of the vault.\n",
                text::line(email),
                role.as_str()
            ))
        }
        VaultCommand::Remove { vault, email, yes } => {
            let id = s.resolve_vault(vault)?;
            if !yes
                && !confirm(&format!(
                    "Remove {} from {vault:?}? The vault key is rotated (every item key re-wrapped).",
                    text::line(email)
                ))
            {
                return Err(CliError::usage(
                    "nothing was removed: confirm on a terminal or pass --yes",
                ));
            }
            s.remove_member(id, email).await?;
            if g.json {
                return print_json(&json!({ "vault_id": id, "removed": email }));
            }
            print(&format!(
                "Removed {} and rotated the vault key: they open nothing written from now on.\n",
                text::line(email)
            ))
        }
        VaultCommand::Leave { vault, yes } => {
            let id = s.resolve_vault(vault)?;
            if !yes
                && !confirm(&format!(
                    "Leave {vault:?}? Its items go from this device; only its managers can invite you again."
                ))
            {
                return Err(CliError::usage(
                    "nothing was left: confirm on a terminal or pass --yes",
                ));
            }
            let left = s.leave_vault(id).await?;
            if g.json {
                return print_json(&serde_json::to_value(&left).unwrap_or_default());
            }
            print(&left_text(&left))
        }
        VaultCommand::Activity { vault, limit } => {
            let id = s.resolve_vault(vault)?;
            let lines = s.activity(id, *limit).await?;
            if g.json {
                return print_json(&serde_json::to_value(&lines).unwrap_or_default());
            }
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|a| {
                    vec![
                        super::output::human_time(a.at),
                        text::cell(&a.who).into_owned(),
                        text::cell(&a.what).into_owned(),
                        a.proof.to_owned(),
                    ]
                })
                .collect();
            print(&table(&["WHEN", "WHO", "WHAT", "PROOF"], &rows))
        }
    }
}

/// What `leave` (or a sync that found the vault gone) says.
pub(super) fn left_text(left: &crate::engine::LeftVault) -> String {
    let mut out = format!(
        "{:?} is no longer on this device.\n",
        text::line(&left.name)
    );
    for name in &left.kept {
        out.push_str(&format!(
            "  your unsynced edit is kept in your personal vault as {:?}\n",
            text::line(name)
        ));
    }
    out
}
