//! The share pane's engine work, and what it answers. Every job answers an
//! [`Update`]: what it did ([`Done`], failures included, so the pane always
//! hears back) and the lists as they stand after it.

use std::collections::HashMap;

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::engine::activity::Activity;
use crate::engine::contacts::Contact;
use crate::engine::members::Role;
use crate::engine::remote::share::{ShareInfo, ShareLink, ShareOptions};
use crate::engine::shared_vaults::{Invitation, MemberView, VaultInfo};
use crate::engine::{Error, Session};
use crate::tui::sync_state::message;
use crate::tui::worker::{Job, To};

/// The share pane's id: the worker's answers for it are addressed here.
pub const TO: To = To("share");

/// What this device knows without asking the server.
#[derive(Debug, Clone, Default)]
pub struct Local {
    /// Personal first, then shared ones by name.
    pub vaults: Vec<VaultInfo>,
    /// The accounts whose keys this device pinned.
    pub contacts: Vec<Contact>,
    /// This account's fingerprint (what the people it shares with compare).
    pub fingerprint: String,
}

/// What the server says, each part or why it could not be read.
#[derive(Debug)]
pub struct Remote {
    pub invitations: Result<Vec<Invitation>, String>,
    pub links: Result<Vec<ShareInfo>, String>,
    /// The members of each shared vault, as its verified log shows them.
    pub members: HashMap<Uuid, Result<Vec<MemberView>, String>>,
}

/// An invitation to send: to this vault, with this role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteTo {
    pub vault: Uuid,
    /// The vault's name, for the questions.
    pub name: String,
    pub role: Role,
}

/// What a key lookup is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// An invitation (the invite popup waits for it).
    Invite(InviteTo),
    /// Verifying an account's key.
    Verify,
}

/// What a job did.
#[derive(Debug)]
pub enum Done {
    /// Worked: one line for the status bar.
    Said(String),
    /// Did not: why (the popup waiting for it keeps what was typed).
    Failed(String),
    /// One lookup of an account's keys (pinned now if never seen).
    Looked {
        purpose: Purpose,
        contact: Result<Box<Contact>, String>,
    },
    /// The account's keys were confirmed; `then` is the invitation that
    /// waited for it.
    Verified {
        contact: Box<Contact>,
        then: Option<InviteTo>,
    },
    LinkMade(Box<ShareLink>),
    Joined {
        vault: Uuid,
        name: String,
    },
    Created {
        vault: Uuid,
        name: String,
    },
    /// A link's URL to copy (`None`: made on another device).
    Url(Option<LinkUrl>),
    /// A vault's activity log, newest first, or why it could not be read.
    Activity {
        vault: Uuid,
        entries: Result<Vec<Activity>, String>,
    },
}

/// How many lines of a vault's activity the pane reads.
pub const ACTIVITY_LINES: usize = 500;

/// A link's URL: it holds the link's key, so `Debug` leaves it out.
pub struct LinkUrl(pub Zeroizing<String>);

impl std::fmt::Debug for LinkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkUrl([redacted: holds the key])")
    }
}

/// A job's answer: what it did, and the lists after it (`None`: not read).
#[derive(Debug, Default)]
pub struct Update {
    pub local: Option<Local>,
    pub remote: Option<Remote>,
    pub done: Option<Done>,
}

fn server(v: &Session) -> Option<String> {
    v.remote().map(|r| r.server.clone())
}

fn said(v: &Session, e: &Error) -> String {
    message(e, server(v).as_deref())
}

/// The vaults, pins and fingerprint on this device.
async fn local_of(v: &Session) -> Result<Local, Error> {
    let mut vaults = v.vault_list().await?;
    // Personal ones first (the account's own vault leads), then by name.
    vaults.sort_by_key(|x| {
        (
            x.shared.is_some(),
            x.shared.as_ref().map(|_| x.name.to_lowercase()),
        )
    });
    Ok(Local {
        vaults,
        contacts: v.contacts().await?,
        fingerprint: v.fingerprint(),
    })
}

/// Invitations, links and every shared vault's members. A server that
/// fails the first request is not asked the rest (each would wait as long).
async fn remote_of(v: &mut Session) -> Remote {
    let invitations = v.invitations().await.map_err(|e| said(v, &e));
    if let Err(e) = &invitations {
        return Remote {
            invitations: Err(e.clone()),
            links: Err(e.clone()),
            members: HashMap::new(),
        };
    }
    let links = v.share_links().await.map_err(|e| said(v, &e));
    let mut members = HashMap::new();
    let shared: Vec<Uuid> = v
        .vault_list()
        .await
        .map(|l| {
            l.into_iter()
                .filter(|x| x.shared.is_some())
                .map(|x| x.id)
                .collect()
        })
        .unwrap_or_default();
    for id in shared {
        let m = v.members(id).await.map_err(|e| said(v, &e));
        members.insert(id, m);
    }
    Remote {
        invitations,
        links,
        members,
    }
}

/// What a change did, and everything read again after it.
async fn after(v: &mut Session, done: Done) -> Update {
    Update {
        local: local_of(v).await.ok(),
        remote: Some(remote_of(v).await),
        done: Some(done),
    }
}

/// What a failed change says: only that (nothing changed, nothing to read).
fn failed(v: &Session, e: &Error) -> Update {
    Update {
        done: Some(Done::Failed(said(v, e))),
        ..Update::default()
    }
}

/// A network change that is refused at once on a logged-out device.
fn change<F>(what: &'static str, run: F) -> Job
where
    F: for<'a> FnOnce(&'a mut Session) -> futures::future::BoxFuture<'a, Update> + Send + 'static,
{
    Job::network(TO, what, move |v| Box::pin(async move { Ok(run(v).await) })).offline(|| Update {
        done: Some(Done::Failed(
            "logged out of the server: log in (press :, then login) to share".into(),
        )),
        ..Update::default()
    })
}

/// The vaults, pins and fingerprint on this device (no server).
#[must_use]
pub fn local() -> Job {
    Job::new(TO, "share-local", |v| {
        Box::pin(async move {
            Ok(Update {
                local: Some(local_of(v).await?),
                ..Update::default()
            })
        })
    })
    .fresh()
    .latest_only()
}

/// Everything the pane lists, the server's part included.
#[must_use]
pub fn load() -> Job {
    Job::network(TO, "share-load", |v| {
        Box::pin(async move {
            Ok(Update {
                local: local_of(v).await.ok(),
                remote: Some(remote_of(v).await),
                done: None,
            })
        })
    })
    .offline(Update::default)
    .latest_only()
}

/// Looks up an account's keys once (pinning them if never seen): the
/// fingerprint the user then compares is of exactly these keys.
#[must_use]
pub fn lookup(email: String, purpose: Purpose) -> Job {
    change("share-lookup", move |v| {
        Box::pin(async move {
            let contact = v
                .contact(&email)
                .await
                .map(Box::new)
                .map_err(|e| said(v, &e));
            Update {
                done: Some(Done::Looked { purpose, contact }),
                ..Update::default()
            }
        })
    })
}

/// Invites the account `contact` names (the one whose fingerprint was
/// shown) to a vault: the vault key is sealed to exactly its keys.
#[must_use]
pub fn invite(to: InviteTo, contact: Contact) -> Job {
    change("share-invite", move |v| {
        Box::pin(async move {
            match v.invite_contact(to.vault, &contact, to.role).await {
                Ok(()) => {
                    let done = Done::Said(format!(
                        "Invited {} to {:?} as {}; they accept in their share pane (4) or with \
                         `openk vault accept {}`",
                        contact.email,
                        to.name,
                        to.role.as_str(),
                        to.vault
                    ));
                    after(v, done).await
                }
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// Confirms an account's keys with the fingerprint the user compared; a
/// key that changed meanwhile is refused.
#[must_use]
pub fn verify(contact: Contact, then: Option<InviteTo>) -> Job {
    change("share-verify", move |v| {
        Box::pin(async move {
            match v.verify_contact(&contact.email, &contact.fingerprint).await {
                Ok(c) => {
                    let done = Done::Verified {
                        contact: Box::new(c),
                        then,
                    };
                    after(v, done).await
                }
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// Accepts an invitation (after the engine verified the vault's log).
#[must_use]
pub fn accept(vault: Uuid) -> Job {
    change("share-accept", move |v| {
        Box::pin(async move {
            match v.accept(vault).await {
                Ok(name) => after(v, Done::Joined { vault, name }).await,
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// Declines an invitation.
#[must_use]
pub fn decline(vault: Uuid, name: String) -> Job {
    change("share-decline", move |v| {
        Box::pin(async move {
            match v.decline(vault).await {
                Ok(()) => {
                    after(
                        v,
                        Done::Said(format!("Declined the invitation to {name:?}")),
                    )
                    .await
                }
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// Gives a member another role.
#[must_use]
pub fn set_role(to: InviteTo, email: String) -> Job {
    change("share-role", move |v| {
        Box::pin(async move {
            match v.set_role(to.vault, &email, to.role).await {
                Ok(()) => {
                    let done = Done::Said(format!(
                        "{email} is now {} of {:?}",
                        to.role.as_str(),
                        to.name
                    ));
                    after(v, done).await
                }
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// A shared vault's activity log (its managers'): the signed membership
/// log and the item versions this device holds.
#[must_use]
pub fn activity(vault: Uuid) -> Job {
    change("share-activity", move |v| {
        Box::pin(async move {
            let entries = v
                .activity(vault, ACTIVITY_LINES)
                .await
                .map_err(|e| said(v, &e));
            Update {
                done: Some(Done::Activity { vault, entries }),
                ..Update::default()
            }
        })
    })
}

/// Removes a member from a shared vault, rotating its key.
#[must_use]
pub fn remove_member(vault: Uuid, name: String, email: String) -> Job {
    change("share-remove", move |v| {
        Box::pin(async move {
            match v.remove_member(vault, &email).await {
                Ok(()) => {
                    let done = Done::Said(format!(
                        "Removed {email} from {name:?}: the vault has a new key, which they do \
                         not have"
                    ));
                    after(v, done).await
                }
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// Leaves a vault another account shares with this one.
#[must_use]
pub fn leave(vault: Uuid, name: String) -> Job {
    change("share-leave", move |v| {
        Box::pin(async move {
            match v.leave_vault(vault).await {
                Ok(left) => {
                    let kept = if left.kept.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; your unsynced edits of {} are now in your personal vault",
                            left.kept.join(", ")
                        )
                    };
                    after(v, Done::Said(format!("Left {name:?}{kept}"))).await
                }
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// Creates a vault here (the next sync puts it on the server).
#[must_use]
pub fn create_vault(name: String) -> Job {
    Job::new(TO, "share-create", move |v| {
        Box::pin(async move {
            Ok(match v.create_vault(&name).await {
                Ok(vault) => Update {
                    local: local_of(v).await.ok(),
                    done: Some(Done::Created {
                        vault,
                        name: name.trim().to_owned(),
                    }),
                    ..Update::default()
                },
                Err(e) => failed(v, &e),
            })
        })
    })
    .writes()
}

async fn renamed(v: &mut Session, vault: Uuid, name: String, network: bool) -> Update {
    match v.rename_vault(vault, &name).await {
        Ok(()) => {
            let done = Done::Said(format!("Renamed the vault to {:?}", name.trim()));
            if network {
                after(v, done).await
            } else {
                Update {
                    local: local_of(v).await.ok(),
                    done: Some(done),
                    ..Update::default()
                }
            }
        }
        Err(e) => failed(v, &e),
    }
}

/// Renames a vault: here, and on the server when `network` (logged in).
#[must_use]
pub fn rename(vault: Uuid, name: String, network: bool) -> Job {
    if network {
        change("share-rename", move |v| {
            Box::pin(renamed(v, vault, name, true))
        })
    } else {
        Job::new(TO, "share-rename", move |v| {
            Box::pin(async move { Ok(renamed(v, vault, name, false).await) })
        })
    }
}

/// Makes a share link for one item; the pane copies its URL.
#[must_use]
pub fn make_link(item: Uuid, options: ShareOptions) -> Job {
    change("share-link", move |v| {
        Box::pin(async move {
            match v.share_link(&item.to_string(), &options).await {
                Ok(link) => after(v, Done::LinkMade(Box::new(link))).await,
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// Revokes a share link: the server deletes it at once.
#[must_use]
pub fn revoke(id: String) -> Job {
    change("share-revoke", move |v| {
        Box::pin(async move {
            match v.revoke_share(&id).await {
                Ok(()) => {
                    after(
                        v,
                        Done::Said(format!("Revoked share link {id}: it is gone")),
                    )
                    .await
                }
                Err(e) => failed(v, &e),
            }
        })
    })
}

/// The URL of a link this device made (no server).
#[must_use]
pub fn url(id: String) -> Job {
    Job::new(TO, "share-url", move |v| {
        Box::pin(async move {
            Ok(match v.share_url(&id).await {
                Ok(url) => Update {
                    done: Some(Done::Url(url.map(LinkUrl))),
                    ..Update::default()
                },
                Err(e) => failed(v, &e),
            })
        })
    })
}
