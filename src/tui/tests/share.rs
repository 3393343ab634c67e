//! The share pane (key `4`): snapshots of each state and popup from a
//! fixed world (fixed keys, ids and clock, so fingerprints and "in 6 d"
//! never move), and key-driven runs against the in-process server: accept
//! an invitation, invite with the fingerprint shown, change a role, a
//! changed key that blocks sharing until verified, make, copy and revoke a
//! link, and a server that never answers.

use std::collections::HashMap;

use crossterm::event::KeyCode;
use uuid::Uuid;

use super::{Harness, PASSWORD, Server, code, ctrl, key, point_at, register, silent_server};
use crate::engine::activity::Activity;
use crate::engine::contacts::{Contact, Trust};
use crate::engine::members::Role;
use crate::engine::remote::share::ShareInfo;
use crate::engine::shared_vaults::{Invitation, MemberView, SharedInfo, VaultInfo};
use crate::engine::sync::SyncOptions;
use crate::engine::test_fixtures::{fixed_contact, fixed_fingerprint, login, swap_identity};
use crate::engine::{SecretString, Session};
use crate::tui::app::Popup;
use crate::tui::panes::Pane as _;
use crate::tui::panes::share::{
    self, Done, Focus, InviteTo, Key, Local, Purpose, Remote, SharePane, Update,
};
use crate::tui::popups::share::Check;
use crate::tui::worker::{Answer, Reply, SyncState};

/// The fixed world's wall clock: 2026-12-04 10:00 UTC.
const T0_MS: i64 = 1_796_378_400_000;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn contact(email: &str, n: u8, trust: Trust) -> Contact {
    fixed_contact(email, id(100 + u128::from(n)), n, trust)
}

fn member(email: &str, n: u8, role: Role, trust: &str, status: &str) -> MemberView {
    MemberView {
        email: email.into(),
        account_id: id(100 + u128::from(n)),
        role,
        fingerprint: fixed_fingerprint(n),
        trust: trust.into(),
        status: status.into(),
    }
}

fn link(id: &str, created: &str, expires: &str, views: Option<(u32, u32)>) -> ShareInfo {
    ShareInfo {
        id: id.into(),
        created_at: created.into(),
        expires_at: expires.into(),
        max_views: views.map(|v| v.1),
        views_left: views.map(|v| v.0),
        item: None,
        fields: None,
    }
}

/// Personal, Team (ours, shared: us, Ben verified, Eve with a changed
/// key), Ops (Ana's, we edit), an invitation to Infra, two links.
fn world() -> Update {
    let shared = |owner: &str, role, mine| {
        Some(SharedInfo {
            owner_email: owner.into(),
            role,
            mine,
        })
    };
    let mut github = link(
        "k3Jd9Qx2",
        "2026-12-03T09:30:00Z",
        "2026-12-10T09:30:00Z",
        Some((2, 3)),
    );
    github.item = Some("GitHub".into());
    github.fields = Some(vec!["username".into(), "password".into()]);
    let mut members = HashMap::new();
    members.insert(
        id(2),
        Ok(vec![
            member("ben@example.org", 3, Role::Editor, "verified", "active"),
            member("eve@example.org", 5, Role::Viewer, "CHANGED", "invited"),
            member("tui@example.org", 1, Role::Manager, "you", "active"),
        ]),
    );
    members.insert(
        id(3),
        Ok(vec![
            member("ana@example.org", 2, Role::Manager, "pinned", "active"),
            member("tui@example.org", 1, Role::Editor, "you", "active"),
        ]),
    );
    Update {
        local: Some(Local {
            vaults: vec![
                VaultInfo {
                    id: id(1),
                    name: "Personal".into(),
                    shared: None,
                },
                VaultInfo {
                    id: id(3),
                    name: "Ops".into(),
                    shared: shared("ana@example.org", Role::Editor, false),
                },
                VaultInfo {
                    id: id(2),
                    name: "Team".into(),
                    shared: shared("tui@example.org", Role::Manager, true),
                },
            ],
            contacts: vec![
                contact("ana@example.org", 2, Trust::Pinned),
                contact("ben@example.org", 3, Trust::Verified),
            ],
            fingerprint: fixed_fingerprint(1),
        }),
        remote: Some(Remote {
            invitations: Ok(vec![Invitation {
                vault_id: id(4),
                // A server's string: its controls never reach the screen.
                name: "Infra\u{202e}\u{1b}[2J".into(),
                owner_email: "ana@example.org".into(),
                role: "viewer".into(),
            }]),
            links: Ok(vec![
                github,
                link(
                    "Zp81mWq0",
                    "2026-12-01T08:00:00Z",
                    "2026-12-04T14:00:00Z",
                    None,
                ),
            ]),
            members,
        }),
        done: None,
    }
}

fn pane(h: &Harness) -> &SharePane {
    h.app.pane_as::<SharePane>().expect("the share pane")
}

fn answer(h: &mut Harness, u: Update) {
    h.app.on_reply(Reply::To(share::TO, Answer::new(u)));
}

/// The share pane showing the fixed world, as if logged in.
async fn in_world() -> Harness {
    let mut h = Harness::unlocked().await;
    h.press(key('4')).await;
    assert_eq!(h.app.pane, share::TO);
    h.clock.set_unix_millis(T0_MS);
    h.app.sync = SyncState::Synced;
    answer(&mut h, world());
    h
}

/// Moves the selection (from the top) to `want`.
async fn select(h: &mut Harness, want: &Key) {
    h.press(code(KeyCode::Home)).await;
    for _ in 0..40 {
        if pane(h).selected().as_ref() == Some(want) {
            return;
        }
        h.press(key('j')).await;
    }
    panic!("{want:?} is not listed:\n{}", h.screen(100, 30, &[]));
}

/// The id of the first listed vault that `f` picks.
fn vault_named(h: &Harness, f: impl Fn(&VaultInfo) -> bool) -> Uuid {
    pane(h)
        .local
        .as_ref()
        .and_then(|l| l.vaults.iter().find(|v| f(v)))
        .map(|v| v.id)
        .expect("the vault is listed")
}

fn message(h: &Harness) -> String {
    h.app
        .message
        .as_ref()
        .map(|(m, _, _)| m.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_share_pane_says_plainly_that_it_needs_a_server() {
    let mut h = Harness::unlocked().await;
    h.press(key('4')).await;
    let text = h.screen(80, 24, &[]);
    assert!(
        text.contains("Personal") && text.contains("needs a sync server"),
        "{text}"
    );
    insta::assert_snapshot!("share_local_only", text);
    h.press(key('i')).await;
    assert!(
        message(&h).contains("Sharing needs a sync server"),
        "{}",
        message(&h)
    );
    h.press(key('p')).await;
    assert!(h.app.popups.is_empty());
    // A vault is made here all the same (the next sync takes it along).
    h.press(key('n')).await;
    h.keys("Family").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(h.app.popups.is_empty(), "{:?}", h.app.popups);
    assert!(
        message(&h).contains("Created the vault \"Family\""),
        "{}",
        message(&h)
    );
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("Family"), "{text}");
    // The name is taken once: the popup keeps what was typed and says why.
    h.press(key('n')).await;
    h.keys("family").await;
    h.press(code(KeyCode::Enter)).await;
    match h.app.popups.last() {
        Some(Popup::VaultName(s)) => {
            assert_eq!(s.input.as_str(), "family");
            assert!(
                s.error
                    .as_deref()
                    .is_some_and(|e| e.contains("already exists"))
            );
        }
        other => panic!("{other:?}"),
    }
    // Renamed here (no server to tell).
    h.press(code(KeyCode::Esc)).await;
    let family = vault_named(&h, |v| v.name == "Family");
    select(&mut h, &Key::Vault(family)).await;
    h.press(key('e')).await;
    h.press(ctrl('u')).await;
    h.keys("Home").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(
        message(&h).contains("Renamed the vault to \"Home\""),
        "{}",
        message(&h)
    );
    assert!(h.screen(80, 24, &[]).contains("Home"));
}

#[tokio::test]
async fn share_pane_snapshots_of_vaults_members_invitations_and_links() {
    let mut h = in_world().await;
    let text = h.screen(100, 30, &[]);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    insta::assert_snapshot!("share_personal_vault", text);

    select(&mut h, &Key::Vault(id(2))).await;
    insta::assert_snapshot!("share_team_members", h.screen(100, 30, &[]));
    // The members have the keys: Eve's changed key is marked plainly.
    h.press(code(KeyCode::Tab)).await;
    assert_eq!(pane(&h).focus, Focus::Members);
    h.press(key('j')).await;
    assert_eq!(
        pane(&h).selected_member().map(|m| m.email.as_str()),
        Some("eve@example.org")
    );
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("⚠ KEY CHANGED") && text.contains("✓ verified") && text.contains("invited"),
        "{text}"
    );
    insta::assert_snapshot!("share_member_changed", text);
    h.press(code(KeyCode::Esc)).await;
    assert_eq!(pane(&h).focus, Focus::List);
    assert_eq!(h.app.pane, share::TO, "Esc left the members, not the pane");

    // H: the activity log instead of the members (as the engine answers it).
    h.press(key('H')).await;
    // (The harness has no server: the job's offline answer said so.)
    h.app.sync = SyncState::Synced;
    let line = |at: i64, who: &str, what: &str, proof: &'static str| Activity {
        at: T0_MS - at * 60_000,
        who: who.into(),
        what: what.into(),
        item_id: None,
        proof,
    };
    answer(
        &mut h,
        Update {
            done: Some(Done::Activity {
                vault: id(2),
                entries: Ok(vec![
                    line(
                        5,
                        "ben@example.org",
                        "changed \"Deploy key\" (password)",
                        "signed",
                    ),
                    line(90, "eve@example.org", "added \"Planted\"", "UNVERIFIED"),
                    line(
                        3000,
                        "tui@example.org",
                        "invited eve@example.org as viewer",
                        "signed",
                    ),
                    line(4000, "tui@example.org", "shared the vault", "signed"),
                ]),
            }),
            ..Update::default()
        },
    );
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Activity (4, newest first)") && text.contains("⚠ UNVERIFIED"),
        "{text}"
    );
    insta::assert_snapshot!("share_activity", text);
    // Scrolled in the details; H goes back to the members.
    h.press(code(KeyCode::Tab)).await;
    h.press(key('j')).await;
    assert_eq!(pane(&h).activity_top, 1);
    assert!(pane(&h).selected_member().is_none());
    h.press(key('H')).await;
    assert!(h.screen(100, 30, &[]).contains("Members (3)"));
    assert_eq!(pane(&h).focus, Focus::List);
    // Ops is Ana's and we only edit it: no activity log for us.
    select(&mut h, &Key::Vault(id(3))).await;
    h.press(key('H')).await;
    assert!(message(&h).contains("Only the managers"), "{}", message(&h));
    h.app.message = None;

    select(&mut h, &Key::Vault(id(3))).await;
    let text = h.screen(100, 30, &[]);
    assert!(text.contains("editor · ana@example.org"), "{text}");

    select(&mut h, &Key::Invite(id(4))).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Infra") && text.contains("from ana@example.org"),
        "{text}"
    );
    insta::assert_snapshot!("share_invitation", text);

    select(&mut h, &Key::Link("k3Jd9Qx2".into())).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("2 views left of 3") && text.contains("in 5 d") && text.contains("GitHub"),
        "{text}"
    );
    insta::assert_snapshot!("share_link", text);
    insta::assert_snapshot!("share_link_80x24", h.screen(80, 24, &[]));
    select(&mut h, &Key::Link("Zp81mWq0".into())).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("made on another device") && text.contains("in 4 h"),
        "{text}"
    );
    // Its URL is only on the device that made it.
    h.press(key('y')).await;
    assert!(
        message(&h).contains("made on another device"),
        "{}",
        message(&h)
    );
    assert!(h.copies.lock().expect("copies").is_empty());
}

#[tokio::test]
async fn share_pane_popup_snapshots() {
    let mut h = in_world().await;
    let team = InviteTo {
        vault: id(2),
        name: "Team".into(),
        role: Role::Editor,
    };

    // Invite: email and role, then the fingerprint to compare.
    select(&mut h, &Key::Vault(id(2))).await;
    h.press(key('i')).await;
    h.keys("ben@example.org").await;
    h.press(code(KeyCode::Tab)).await;
    h.press(code(KeyCode::Right)).await;
    match h.app.popups.last() {
        Some(Popup::ShareInvite(s)) => assert_eq!(s.role, Role::Manager),
        other => panic!("{other:?}"),
    }
    h.press(code(KeyCode::Left)).await;
    insta::assert_snapshot!("share_invite_popup", h.screen(100, 30, &[]));
    // (The lookup's answer, as the server would give it.)
    if let Some(Popup::ShareInvite(s)) = h.app.popups.last_mut() {
        s.looking = true;
    }
    let looked = |c: Contact| Update {
        done: Some(Done::Looked {
            purpose: Purpose::Invite(team.clone()),
            contact: Ok(Box::new(c)),
        }),
        ..Update::default()
    };
    answer(&mut h, looked(contact("ben@example.org", 3, Trust::New)));
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::Fingerprint(Check::Invite { .. }))
    ));
    let text = h.screen(100, 30, &[]);
    assert!(text.contains(&fixed_fingerprint(3)), "{text}");
    insta::assert_snapshot!("share_invite_fingerprint", text);
    h.press(key('n')).await;
    assert!(h.app.popups.is_empty());
    assert_eq!(message(&h), "Nothing was shared");

    // A changed key: the invitation waits for its verification.
    h.press(key('i')).await;
    h.keys("eve@example.org").await;
    if let Some(Popup::ShareInvite(s)) = h.app.popups.last_mut() {
        s.looking = true;
    }
    answer(
        &mut h,
        looked(contact(
            "eve@example.org",
            6,
            Trust::Changed {
                pinned: fixed_fingerprint(5),
            },
        )),
    );
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::Fingerprint(Check::Verify { then: Some(_), .. }))
    ));
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("CHANGED")
            && text.contains(&fixed_fingerprint(5))
            && text.contains(&fixed_fingerprint(6)),
        "{text}"
    );
    insta::assert_snapshot!("share_key_changed", text);
    h.press(code(KeyCode::Esc)).await;
    assert!(message(&h).contains("Not verified"), "{}", message(&h));

    // Role: a picker, then a question.
    h.press(code(KeyCode::Tab)).await;
    h.press(key('e')).await;
    insta::assert_snapshot!("share_role_popup", h.screen(100, 30, &[]));
    h.press(key('j')).await;
    h.press(code(KeyCode::Enter)).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Make ben@example.org manager of \"Team\""),
        "{text}"
    );
    insta::assert_snapshot!("share_role_confirm", text);
    h.press(key('n')).await;
    // Your own role is another manager's to change.
    h.press(key('j')).await;
    h.press(key('j')).await;
    h.press(key('e')).await;
    assert!(h.app.popups.is_empty());
    assert!(message(&h).contains("Your own role"), "{}", message(&h));
    h.press(code(KeyCode::Esc)).await;

    // Accept and decline ask first.
    select(&mut h, &Key::Invite(id(4))).await;
    h.press(key('a')).await;
    insta::assert_snapshot!("share_accept_confirm", h.screen(100, 30, &[]));
    h.press(key('n')).await;
    h.press(key('d')).await;
    insta::assert_snapshot!("share_decline_confirm", h.screen(100, 30, &[]));
    h.press(key('n')).await;

    // Revoking a link asks first.
    select(&mut h, &Key::Link("k3Jd9Qx2".into())).await;
    h.press(key('d')).await;
    insta::assert_snapshot!("share_revoke_confirm", h.screen(100, 30, &[]));
    h.press(key('n')).await;

    // A viewer or editor of someone else's vault does not manage it, and
    // leaves it after a question.
    select(&mut h, &Key::Vault(id(3))).await;
    h.press(key('i')).await;
    assert!(h.app.popups.is_empty());
    assert!(message(&h).contains("Only the managers"), "{}", message(&h));
    h.press(code(KeyCode::Tab)).await;
    h.press(key('d')).await;
    assert!(h.app.popups.is_empty());
    assert!(message(&h).contains("Only the managers"), "{}", message(&h));
    h.press(code(KeyCode::Esc)).await;
    h.press(key('d')).await;
    insta::assert_snapshot!("share_leave_confirm", h.screen(100, 30, &[]));
    h.press(key('n')).await;

    // A manager removes a member after a question.
    select(&mut h, &Key::Vault(id(2))).await;
    h.press(code(KeyCode::Tab)).await;
    h.press(key('d')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Remove ben@example.org from \"Team\"?"),
        "{text}"
    );
    insta::assert_snapshot!("share_remove_confirm", text);
    h.press(key('n')).await;
    h.press(code(KeyCode::Esc)).await;
    // Its owner does not leave it.
    h.press(key('d')).await;
    assert!(h.app.popups.is_empty());
    assert!(message(&h).contains("You own"), "{}", message(&h));

    // New vault.
    h.press(key('n')).await;
    h.keys("Family").await;
    insta::assert_snapshot!("share_new_vault", h.screen(100, 30, &[]));
    h.press(code(KeyCode::Esc)).await;

    // A new link, from the item selected in the vault pane (GitHub).
    h.press(key('p')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("A link to \"GitHub\"") && text.contains("username, password, url, totp"),
        "{text}"
    );
    insta::assert_snapshot!("share_link_form", text);
    // What the form refuses keeps what was typed, on the row at fault.
    h.press(ctrl('u')).await;
    h.keys("45d").await;
    h.press(code(KeyCode::Tab)).await;
    h.keys("0").await;
    h.press(code(KeyCode::Enter)).await;
    match h.app.popups.last() {
        Some(Popup::ShareLink(f)) => {
            assert_eq!(f.on, 0);
            assert!(
                f.error.as_deref().is_some_and(|e| e.contains("1h to 30d")),
                "{:?}",
                f.error
            );
            assert_eq!(f.rows[1].as_str(), "0");
        }
        other => panic!("{other:?}"),
    }
    h.press(ctrl('u')).await;
    h.keys("2d").await;
    h.press(code(KeyCode::Enter)).await;
    match h.app.popups.last() {
        Some(Popup::ShareLink(f)) => {
            assert_eq!(f.on, 1);
            assert!(f.error.as_deref().is_some_and(|e| e.contains("max views")));
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------- with the test server

/// An account on `server` whose vault is in `dir` (floor KDF).
async fn account(dir: &std::path::Path, url: &str, email: &str) -> Session {
    let mut s = Session::init(
        dir,
        SecretString::from(PASSWORD.to_owned()),
        crate::engine::KdfParams::FLOOR,
    )
    .await
    .expect("init");
    s.register(url, email, "laptop").await.expect("register");
    s
}

/// Unlocks the harness's vault (registered as tui@example.org) and opens
/// the share pane once the server's part is in.
async fn open_share(h: &mut Harness) {
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(key('4')).await;
    h.wait_until("the share pane's lists", |a| {
        a.pane_as::<SharePane>()
            .is_some_and(|p| p.remote.is_some() && !p.busy())
    })
    .await;
}

async fn wait_idle(h: &mut Harness) {
    h.wait_until("the share pane's work", |a| {
        a.pane_as::<SharePane>().is_some_and(|p| !p.busy())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_an_invitation_in_the_share_pane() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    let mut ana = account(&h._tmp.path().join("ana"), &server.url, "ana@example.org").await;
    let team = ana.create_vault("Team").await.expect("create");
    ana.add_to(team, login("Deploy key", "ci", "deploy-pass"))
        .await
        .expect("add");
    ana.sync(&SyncOptions::default()).await.expect("sync");
    ana.invite(team, "tui@example.org", Role::Editor, None)
        .await
        .expect("invite");

    open_share(&mut h).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Invitations (1)") && text.contains("from ana@example.org"),
        "{text}"
    );
    select(&mut h, &Key::Invite(team)).await;
    h.press(key('a')).await;
    assert!(h.screen(100, 30, &[]).contains("Accept the invitation?"));
    h.press(key('y')).await;
    wait_idle(&mut h).await;
    assert!(message(&h).contains("Joined \"Team\""), "{}", message(&h));
    assert_eq!(pane(&h).selected(), Some(Key::Vault(team)));
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("editor · ana@example.org") && text.contains("Invitations"),
        "{text}"
    );
    assert!(!text.contains("Invitations (1)"), "{text}");
    // Its members, with the owner's key as pinned when accepting.
    h.press(code(KeyCode::Tab)).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("ana@example.org") && text.contains("pinned") && text.contains("you"),
        "{text}"
    );
    // Its items arrive with the sync the accept started.
    h.wait_until("the shared vault's items", |a| {
        a.vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "Deploy key")
    })
    .await;
    // Ana sees the member as active.
    let members = ana.members(team).await.expect("members");
    assert!(
        members
            .iter()
            .any(|m| m.email == "tui@example.org" && m.status == "active"),
        "{members:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_with_the_fingerprint_shown_then_change_the_role() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    let mut ben = account(&h._tmp.path().join("ben"), &server.url, "ben@example.org").await;
    open_share(&mut h).await;

    // A vault to share.
    h.press(key('n')).await;
    h.keys("Team").await;
    h.press(code(KeyCode::Enter)).await;
    wait_idle(&mut h).await;
    let Some(Key::Vault(team)) = pane(&h).selected() else {
        panic!("the new vault is selected: {:?}", pane(&h).selected());
    };

    // The fingerprint shown is Ben's; no is no.
    h.press(key('i')).await;
    h.keys("ben@example.org").await;
    h.press(code(KeyCode::Enter)).await;
    wait_idle(&mut h).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains(&ben.fingerprint()) && text.contains("First seen now"),
        "{text}"
    );
    h.press(key('n')).await;
    assert!(ben.invitations().await.expect("none").is_empty());

    // Again, and yes: invited as editor, with exactly those keys.
    h.press(key('i')).await;
    h.keys("ben@example.org").await;
    h.press(code(KeyCode::Enter)).await;
    wait_idle(&mut h).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains(&ben.fingerprint()) && text.contains("before (not yet verified)"),
        "{text}"
    );
    h.press(key('y')).await;
    wait_idle(&mut h).await;
    assert!(
        message(&h).contains("Invited ben@example.org"),
        "{}",
        message(&h)
    );
    let text = h.screen(100, 30, &[]);
    assert!(text.contains("editor · invited"), "{text}");

    // Ben's role, changed after a question.
    h.press(code(KeyCode::Tab)).await;
    while pane(&h).selected_member().map(|m| m.email.as_str()) != Some("ben@example.org") {
        h.press(key('j')).await;
    }
    h.press(key('e')).await;
    h.press(key('j')).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(
        h.screen(100, 30, &[])
            .contains("Make ben@example.org manager")
    );
    h.press(key('y')).await;
    wait_idle(&mut h).await;
    assert!(message(&h).contains("is now manager"), "{}", message(&h));
    assert!(h.screen(100, 30, &[]).contains("manager · invited"));
    // The activity log says so, from the signed membership log.
    h.press(code(KeyCode::Esc)).await;
    h.press(key('H')).await;
    wait_idle(&mut h).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("invited ben@example.org as editor")
            && text.contains("made ben@example.org manager")
            && text.contains("shared the vault"),
        "{text}"
    );

    let invites = ben.invitations().await.expect("invitations");
    assert_eq!(invites.len(), 1, "{invites:?}");
    ben.accept(team)
        .await
        .expect("Ben opens the key sealed to him");
    let roles: Vec<(String, Role)> = ben
        .members(team)
        .await
        .expect("members")
        .into_iter()
        .map(|m| (m.email, m.role))
        .collect();
    assert!(
        roles.contains(&("ben@example.org".to_owned(), Role::Manager)),
        "{roles:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_key_blocks_sharing_until_its_fingerprint_is_confirmed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("server.db");
    let server =
        crate::engine::test_server::TestServer::start(&format!("sqlite://{}", db.display())).await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    let ben = account(&h._tmp.path().join("ben"), &server.url, "ben@example.org").await;
    let ben_fp = ben.fingerprint();
    // Ben is a member of Team with the keys pinned then.
    let team = {
        let mut me = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
            .await
            .expect("unlock");
        let team = me.create_vault("Team").await.expect("create");
        me.invite(team, "ben@example.org", Role::Viewer, Some(&ben_fp))
            .await
            .expect("invite");
        me.close().await;
        team
    };
    let new_fp = swap_identity(&db, "ben@example.org").await;

    open_share(&mut h).await;
    select(&mut h, &Key::Vault(team)).await;
    h.press(code(KeyCode::Tab)).await;
    while pane(&h).selected_member().map(|m| m.email.as_str()) != Some("ben@example.org") {
        h.press(key('j')).await;
    }
    // v: the server's keys differ from the pinned ones, said plainly.
    h.press(key('v')).await;
    wait_idle(&mut h).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("CHANGED") && text.contains(&ben_fp) && text.contains(&new_fp),
        "{text}"
    );
    h.press(key('n')).await;
    // Inviting to another vault is held up the same way.
    h.press(code(KeyCode::Esc)).await;
    let personal = vault_named(&h, |v| v.shared.is_none());
    select(&mut h, &Key::Vault(personal)).await;
    h.press(key('i')).await;
    h.keys("ben@example.org").await;
    h.press(code(KeyCode::Enter)).await;
    wait_idle(&mut h).await;
    match h.app.popups.last() {
        Some(Popup::Fingerprint(Check::Verify {
            then: Some(_),
            contact,
        })) => {
            assert_eq!(contact.fingerprint, new_fp);
        }
        other => panic!("{other:?}"),
    }
    h.press(key('n')).await;
    assert!(message(&h).contains("Not verified"), "{}", message(&h));

    // Confirmed (after comparing with Ben): the new key is pinned as
    // verified, and Team's log, which still names the old key, shows
    // Ben's key as CHANGED.
    select(&mut h, &Key::Vault(team)).await;
    h.press(code(KeyCode::Tab)).await;
    while pane(&h).selected_member().map(|m| m.email.as_str()) != Some("ben@example.org") {
        h.press(key('j')).await;
    }
    h.press(key('v')).await;
    wait_idle(&mut h).await;
    h.press(key('y')).await;
    wait_idle(&mut h).await;
    assert!(
        message(&h).contains("Verified the fingerprint"),
        "{}",
        message(&h)
    );
    let text = h.screen(100, 30, &[]);
    assert!(text.contains("⚠ KEY CHANGED"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_copy_and_revoke_a_share_link() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    // GitHub is selected in the vault pane; p makes a link to it.
    assert_eq!(
        h.app
            .vault()
            .detail
            .as_ref()
            .map(|d| d.overview.name.as_str()),
        Some("GitHub")
    );
    h.press(key('p')).await;
    // A field it does not have: the engine says which it has; kept typed.
    h.press(code(KeyCode::Tab)).await;
    h.keys("2").await;
    h.press(code(KeyCode::Tab)).await;
    h.keys("pasword").await;
    h.press(code(KeyCode::Enter)).await;
    h.wait_until(
        "the refusal",
        |a| matches!(a.popups.last(), Some(Popup::ShareLink(f)) if !f.saving),
    )
    .await;
    match h.app.popups.last() {
        Some(Popup::ShareLink(f)) => {
            assert!(
                f.error
                    .as_deref()
                    .is_some_and(|e| e.contains("has no field")),
                "{:?}",
                f.error
            );
            assert_eq!(f.rows[2].as_str(), "pasword");
        }
        other => panic!("{other:?}"),
    }
    h.press(ctrl('u')).await;
    h.keys("username, password").await;
    h.press(code(KeyCode::Enter)).await;
    h.wait_until("the link", |a| a.popups.is_empty()).await;
    assert!(
        message(&h).contains("Share link for GitHub copied"),
        "{}",
        message(&h)
    );
    let url = h.last_copy();
    assert!(url.starts_with(&format!("{}/s/", server.url)), "{url}");
    let opened = crate::engine::remote::share::open_link(&url)
        .await
        .expect("opens");
    let labels: Vec<&str> = opened.fields.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(labels, ["username", "password"]);

    // The share pane lists it with its item and views; y copies it again.
    h.press(key('4')).await;
    wait_idle(&mut h).await;
    let id = url
        .split("/s/")
        .nth(1)
        .and_then(|r| r.split('#').next())
        .expect("id");
    select(&mut h, &Key::Link(id.to_owned())).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("GitHub") && text.contains("1 view left of 2") && !text.contains(&url),
        "{text}"
    );
    h.copies.lock().expect("copies").clear();
    h.press(key('y')).await;
    assert_eq!(h.last_copy(), url);

    // Revoked: gone at once.
    h.press(key('d')).await;
    h.press(key('y')).await;
    wait_idle(&mut h).await;
    assert!(
        message(&h).contains("Revoked share link"),
        "{}",
        message(&h)
    );
    assert!(!h.screen(100, 30, &[]).contains("1 view left"));
    let gone = crate::engine::remote::share::open_link(&url).await;
    assert!(
        matches!(gone, Err(crate::engine::Error::ShareGone)),
        "{gone:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_never_holds_the_share_pane_and_esc_stops_waiting() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    point_at(&h.dir, &silent_server()).await;
    h.wait_for_network = false;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    let start = std::time::Instant::now();
    h.press(key('4')).await;
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    // What this device knows is there at once; the server's part waits.
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Personal") && text.contains("asking the server"),
        "{text}"
    );
    assert!(pane(&h).busy());
    h.press(code(KeyCode::Esc)).await;
    assert!(!pane(&h).busy());
    assert!(!h.worker.is_busy());
    let text = h.screen(100, 30, &[]);
    assert!(text.contains("not asked (S asks again)"), "{text}");
    // A vault is still made here at once.
    h.press(key('n')).await;
    h.keys("Later").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(h.screen(100, 30, &[]).contains("Later"));
}

#[tokio::test]
async fn share_popups_clear_only_their_area_and_the_palette_runs_the_actions() {
    let mut h = in_world().await;
    select(&mut h, &Key::Vault(id(2))).await;
    for (keys, what) in [
        (vec![key('i')], "invite"),
        (vec![code(KeyCode::Tab), key('e')], "role"),
        (vec![key('n')], "new vault"),
        (vec![key('p')], "new link"),
    ] {
        for k in keys {
            h.press(k).await;
        }
        assert!(!h.app.popups.is_empty(), "{what} open");
        for (w, ht) in [(80, 24), (120, 40)] {
            super::assert_only_popup_area_changes(&mut h, w, ht, what);
        }
        h.app.popups.clear();
    }
    h.press(key('h')).await;
    assert_eq!(pane(&h).focus, Focus::List);
    h.app.popups.push(Popup::Fingerprint(Check::Verify {
        contact: Box::new(contact(
            "eve@example.org",
            6,
            Trust::Changed {
                pinned: fixed_fingerprint(5),
            },
        )),
        then: None,
    }));
    super::assert_only_popup_area_changes(&mut h, 80, 24, "key changed");
    h.app.popups.clear();

    // Every share action is in the palette too.
    select(&mut h, &Key::Vault(id(2))).await;
    h.press(key(':')).await;
    h.keys("invite").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.popups.last(), Some(Popup::ShareInvite(_))));
    h.press(code(KeyCode::Esc)).await;
    select(&mut h, &Key::Invite(id(4))).await;
    h.press(key(':')).await;
    h.keys("accept an invitation").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::Confirm(crate::tui::app::Confirmable::Accept { .. }))
    ));
    h.press(code(KeyCode::Esc)).await;
    h.press(key(':')).await;
    h.keys("share pane").await;
    h.press(code(KeyCode::Enter)).await;
    assert_eq!(h.app.pane, share::TO);
}

/// The harness's own session (another handle on its vault directory).
async fn me(h: &Harness) -> Session {
    Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock")
}

/// Selects the member with this email in the selected vault's members.
async fn select_member(h: &mut Harness, email: &str) {
    if pane(h).focus != Focus::Members {
        h.press(code(KeyCode::Tab)).await;
    }
    h.press(code(KeyCode::Home)).await;
    for _ in 0..10 {
        if pane(h).selected_member().map(|m| m.email.as_str()) == Some(email) {
            return;
        }
        h.press(key('j')).await;
    }
    panic!("{email} is not listed:\n{}", h.screen(100, 30, &[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_a_member_and_keep_working_under_the_new_key() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    let mut ben = account(&h._tmp.path().join("ben"), &server.url, "ben@example.org").await;
    let (team, item) = {
        let mut me = me(&h).await;
        let team = me.create_vault("Team").await.expect("create");
        let item = me
            .add_to(team, login("Deploy key", "ci", "deploy-pass"))
            .await
            .expect("add")
            .r
            .id;
        me.invite(
            team,
            "ben@example.org",
            Role::Viewer,
            Some(&ben.fingerprint()),
        )
        .await
        .expect("invite");
        me.close().await;
        (team, item)
    };
    ben.accept(team).await.expect("accept");
    ben.sync(&SyncOptions::default()).await.expect("sync");
    assert!(ben.item(item).await.is_ok(), "Ben reads the vault");

    open_share(&mut h).await;
    select(&mut h, &Key::Vault(team)).await;
    // Not the owner, not yourself.
    select_member(&mut h, "tui@example.org").await;
    h.press(key('d')).await;
    assert!(h.app.popups.is_empty());
    assert!(
        message(&h).contains("its owner does not leave"),
        "{}",
        message(&h)
    );
    select_member(&mut h, "ben@example.org").await;
    h.press(key('d')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Remove ben@example.org from \"Team\"?"),
        "{text}"
    );
    h.press(key('y')).await;
    wait_idle(&mut h).await;
    assert!(
        message(&h).contains("Removed ben@example.org"),
        "{}",
        message(&h)
    );
    let members: Vec<String> = match pane(&h).members_of(team) {
        Some(Ok(m)) => m.iter().map(|m| m.email.clone()).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(members, ["tui@example.org"]);

    // The rotation ran on the network job's handle; the worker's handle
    // took the new key from the store too: the item still opens, copies
    // and saves, and the save reaches the server under the new key.
    h.press(key('1')).await;
    while h.app.selected_id() != Some(item) {
        h.press(key('j')).await;
    }
    h.press(key('c')).await;
    assert_eq!(h.last_copy(), "deploy-pass");
    h.press(key('f')).await;
    h.wait_until("the favourite synced", |a| a.sync == SyncState::Synced)
        .await;
    // Ben keeps nothing of it: the server no longer shares it with him.
    ben.sync(&SyncOptions::default()).await.expect("sync");
    assert!(
        !ben.vault_list()
            .await
            .expect("vaults")
            .iter()
            .any(|v| v.id == team),
        "Ben still has the vault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_a_vault_shared_with_you() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    let mut ana = account(&h._tmp.path().join("ana"), &server.url, "ana@example.org").await;
    let team = ana.create_vault("Team").await.expect("create");
    ana.add_to(team, login("Deploy key", "ci", "deploy-pass"))
        .await
        .expect("add");
    ana.sync(&SyncOptions::default()).await.expect("sync");
    ana.invite(team, "tui@example.org", Role::Editor, None)
        .await
        .expect("invite");
    {
        let mut me = me(&h).await;
        me.accept(team).await.expect("accept");
        me.sync(&SyncOptions::default()).await.expect("sync");
        me.close().await;
    }
    open_share(&mut h).await;
    assert!(
        h.app
            .vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "Deploy key")
    );
    select(&mut h, &Key::Vault(team)).await;
    h.press(key('d')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Leave \"Team\", shared by ana@example.org?"),
        "{text}"
    );
    h.press(key('y')).await;
    wait_idle(&mut h).await;
    assert!(message(&h).contains("Left \"Team\""), "{}", message(&h));
    assert!(pane(&h).vault(team).is_none(), "still listed");
    h.wait_until("its items gone", |a| {
        !a.vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "Deploy key")
    })
    .await;
    let members = ana.members(team).await.expect("members");
    assert!(
        !members.iter().any(|m| m.email == "tui@example.org"),
        "{members:?}"
    );
}
