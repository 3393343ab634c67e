//! What the share pane's keys do, and what it does with its jobs' answers.

use uuid::Uuid;

use super::{
    Done, Focus, InviteTo, Key, Purpose, SharePane, activity, lookup, needs_server, start, url,
};
use crate::engine::shared_vaults::VaultInfo;
use crate::tui::app::{App, Confirmable, Popup};
use crate::tui::keymap::Action;
use crate::tui::popups::share::{
    Check, InviteState, RoleState, VaultNameState, fail_top, waiting_lookup,
};
use crate::tui::worker::Request;

impl SharePane {
    /// `H` on a shared vault: its activity log instead of its members, or
    /// back to the members.
    pub(super) fn toggle_activity(&mut self, app: &mut App) {
        let Some(v) = self.selected_vault() else {
            return app.warn("H shows a shared vault's activity log: select the vault");
        };
        let id = v.id;
        if self.activity.as_ref().is_some_and(|(a, _)| *a == id) {
            self.activity = None;
            self.focus = Focus::List;
            return;
        }
        match &v.shared {
            None => {
                app.warn("A personal vault has no activity log: it starts when the vault is shared")
            }
            Some(_) if !Self::manages(v) => {
                app.warn("Only the managers of a shared vault see its activity log");
            }
            Some(_) => {
                if let Some(why) = needs_server(app) {
                    return app.warn(why);
                }
                start(app, "Reading the activity log", activity(id));
            }
        }
    }

    pub(super) fn on_done(&mut self, app: &mut App, d: Done) {
        match d {
            Done::Said(m) => app.say(m),
            Done::Failed(m) => {
                if !fail_top(app, &m) {
                    app.fail(m);
                }
            }
            Done::Looked { purpose, contact } => self.on_looked(app, purpose, contact),
            Done::Verified { contact, then } => {
                app.say(format!(
                    "Verified the fingerprint of {}; sharing with them works again",
                    crate::text::line(&contact.email)
                ));
                if let Some(to) = then {
                    app.popups
                        .push(Popup::Fingerprint(Check::Invite { to, contact }));
                }
            }
            Done::LinkMade(link) => {
                if matches!(app.popups.last(), Some(Popup::ShareLink(_))) {
                    app.popups.pop();
                }
                self.pending = Some(Key::Link(link.id.clone()));
                let what = format!("Share link for {}", crate::text::line(&link.item));
                copy(app, &link.url, &what);
            }
            Done::Joined { vault, name } => {
                self.pending = Some(Key::Vault(vault));
                app.say(format!(
                    "Joined {:?}; its items arrive with the sync",
                    crate::text::line(&name)
                ));
                app.send(Request::Sync);
            }
            Done::Created { vault, name } => {
                if matches!(app.popups.last(), Some(Popup::VaultName(_))) {
                    app.popups.pop();
                }
                self.pending = Some(Key::Vault(vault));
                let k = app.keymap.first_key(Action::Invite);
                app.say(format!(
                    "Created the vault {:?}; {k} invites someone to it",
                    crate::text::line(&name)
                ));
            }
            Done::Activity { vault, entries } => {
                if let Err(e) = &entries {
                    app.warn(e.clone());
                }
                self.activity = Some((vault, entries));
                self.activity_top = 0;
            }
            Done::Url(Some(url)) => copy(app, &url.0, "The share link"),
            Done::Url(None) => app.warn(
                "This link was made on another device: its URL (which holds the key) is only \
                 there; d revokes it",
            ),
        }
    }

    pub(super) fn on_looked(
        &mut self,
        app: &mut App,
        purpose: Purpose,
        contact: Result<Box<crate::engine::contacts::Contact>, String>,
    ) {
        use crate::engine::contacts::Trust;
        match purpose {
            Purpose::Invite(to) => {
                // Only for the invite popup still waiting for it.
                if !waiting_lookup(app) {
                    return;
                }
                let error = match contact {
                    Err(e) => e,
                    Ok(c) if c.trust == Trust::Me => {
                        "that is your own account: you are a member of your vaults already".into()
                    }
                    Ok(contact) => {
                        app.popups.pop();
                        app.popups.push(Popup::Fingerprint(
                            if matches!(contact.trust, Trust::Changed { .. }) {
                                Check::Verify {
                                    contact,
                                    then: Some(to),
                                }
                            } else {
                                Check::Invite { to, contact }
                            },
                        ));
                        return;
                    }
                };
                fail_top(app, &error);
            }
            Purpose::Verify => match contact {
                Err(e) => app.fail(e),
                Ok(c) if c.trust == Trust::Me => app.say("That is your own account"),
                Ok(contact) => app.popups.push(Popup::Fingerprint(Check::Verify {
                    contact,
                    then: None,
                })),
            },
        }
    }

    pub(super) fn ask_accept(&self, app: &mut App) {
        let Some(Key::Invite(id)) = self.selected() else {
            return;
        };
        if let Some(i) = self.invitations().iter().find(|i| i.vault_id == id) {
            app.popups.push(Popup::Confirm(Confirmable::Accept {
                vault: id,
                name: crate::text::line(&i.name).into_owned(),
                owner: crate::text::line(&i.owner_email).into_owned(),
                role: crate::text::line(&i.role).into_owned(),
            }));
        }
    }

    pub(super) fn copy_url(&self, app: &mut App, id: String) {
        app.send(Request::Job(url(id)));
    }

    pub(super) fn delete(&self, app: &mut App) {
        match self.selected() {
            Some(Key::Invite(id)) if self.focus == Focus::List => {
                if let Some(i) = self.invitations().iter().find(|i| i.vault_id == id) {
                    app.popups.push(Popup::Confirm(Confirmable::Decline {
                        vault: id,
                        name: crate::text::line(&i.name).into_owned(),
                        owner: crate::text::line(&i.owner_email).into_owned(),
                    }));
                }
            }
            Some(Key::Link(id)) => {
                let item = self
                    .links()
                    .iter()
                    .find(|l| l.id == id)
                    .and_then(|l| l.item.as_deref())
                    .map(|i| crate::text::line(i).into_owned());
                app.popups
                    .push(Popup::Confirm(Confirmable::RevokeLink { id, item }));
            }
            Some(Key::Vault(id)) => self.remove_or_leave(app, id),
            _ => app.warn("d revokes a share link or declines an invitation: select one"),
        }
    }

    /// `d` on a vault: remove the member selected (a manager), or leave a
    /// vault shared with this account.
    pub(super) fn remove_or_leave(&self, app: &mut App, id: Uuid) {
        let Some(v) = self.vault(id) else { return };
        let name = v.name.clone();
        let Some(s) = &v.shared else {
            return app.warn(
                "d on a vault leaves one shared with you, or (on a member) removes them; this \
                 one is yours alone",
            );
        };
        let owner = crate::text::line(&s.owner_email).into_owned();
        match self.selected_member() {
            Some(m) if m.trust == "you" && s.mine => {
                app.warn("You own this vault: its owner does not leave it");
            }
            Some(m) if m.trust == "you" => app.warn(format!(
                "To leave {name:?}, go back to the list ({}) and press d there",
                app.keymap.first_key(Action::Back)
            )),
            Some(_) if !Self::manages(v) => app.warn(format!(
                "Only the managers of {name:?} remove members; you are {}",
                s.role.as_str()
            )),
            Some(m) if m.email == s.owner_email => {
                app.warn(format!(
                    "{owner} owns {name:?}: its owner cannot be removed"
                ));
            }
            Some(m) => app.popups.push(Popup::Confirm(Confirmable::RemoveMember {
                vault: id,
                name,
                email: crate::text::line(&m.email).into_owned(),
            })),
            None if s.mine => app.warn(format!(
                "You own {name:?}: {} to its members, then d removes one",
                app.keymap.first_key(Action::NextPane)
            )),
            None => app.popups.push(Popup::Confirm(Confirmable::Leave {
                vault: id,
                name,
                owner,
            })),
        }
    }

    /// Whether this account may invite to and rename this vault.
    pub(super) fn manages(v: &VaultInfo) -> bool {
        v.shared.as_ref().is_none_or(|s| s.mine || s.role.manages())
    }

    pub(super) fn edit(&self, app: &mut App) {
        let Some(Key::Vault(id)) = self.selected() else {
            return app.warn("e renames a vault, or changes a member's role: select one");
        };
        let Some(v) = self.vault(id) else { return };
        if !Self::manages(v) {
            return app.warn(format!(
                "Only the managers of {:?} rename it or change roles; you are {}",
                v.name,
                v.shared.as_ref().map_or("its owner", |s| s.role.as_str())
            ));
        }
        match self.selected_member() {
            Some(m) if m.trust == "you" => {
                app.warn("Your own role is for another manager to change");
            }
            Some(m) => app.popups.push(Popup::ShareRole(RoleState::new(
                InviteTo {
                    vault: id,
                    name: v.name.clone(),
                    role: m.role,
                },
                crate::text::line(&m.email).into_owned(),
            ))),
            None if self.focus == Focus::List => app
                .popups
                .push(Popup::VaultName(VaultNameState::rename(id, &v.name))),
            None => {}
        }
    }

    pub(super) fn invite(&self, app: &mut App) {
        if let Some(why) = needs_server(app) {
            return app.warn(why);
        }
        let Some(Key::Vault(id)) = self.selected() else {
            return app.warn("i invites someone to a vault: select the vault first");
        };
        let Some(v) = self.vault(id) else { return };
        if !Self::manages(v) {
            return app.warn(format!(
                "Only the managers of {:?} invite members; you are {}",
                v.name,
                v.shared.as_ref().map_or("its owner", |s| s.role.as_str())
            ));
        }
        app.popups.push(Popup::ShareInvite(InviteState::new(
            id,
            v.name.clone(),
            v.shared.is_none(),
        )));
    }

    pub(super) fn verify(&self, app: &mut App) {
        if let Some(why) = needs_server(app) {
            return app.warn(why);
        }
        match self.selected_member() {
            Some(m) if m.trust == "you" => app.say("That is you"),
            Some(m) => start(
                app,
                "Looking up their keys",
                lookup(m.email.clone(), Purpose::Verify),
            ),
            None => app.warn(format!(
                "v verifies a member's fingerprint: {} to the members, select one, then v",
                app.keymap.first_key(Action::NextPane)
            )),
        }
    }
}

/// Copies a link's URL (it carries the key) and says so.
fn copy(app: &mut App, url: &str, what: &str) {
    let clear = app.settings.clear_after;
    match app.clipboard.copy(url, clear) {
        Ok(via) => match clear {
            Some(d) => {
                app.clip_until = Some(app.clock.now() + d);
                app.say(format!(
                    "{what} copied to the {via} (cleared in {} s); anyone with it can open it",
                    d.as_secs()
                ));
            }
            None => app.say(format!(
                "{what} copied to the {via}; anyone with it can open it"
            )),
        },
        Err(e) => app.warn(e),
    }
}
