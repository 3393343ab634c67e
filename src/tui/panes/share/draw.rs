//! Drawing the share pane: the list (vaults, invitations, links) on the
//! left, the selected one's details on the right. Every server string goes
//! through `truncate`/`text::cell` (controls and bidi overrides removed).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Focus, Key, Row, Section, SharePane, needs_server};
use crate::engine::activity::Activity;
use crate::engine::contacts::Trust;
use crate::engine::remote::share::ShareInfo;
use crate::engine::shared_vaults::{Invitation, MemberView, VaultInfo};
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;
use crate::tui::widgets::{ago, block, cells, spinner, truncate};

pub(super) fn draw(p: &SharePane, f: &mut Frame, app: &App, area: Rect) {
    let left_w = (area.width * 2 / 5).max(30);
    let [list, details] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(20)]).areas(area);
    p.list_area.set(list);
    draw_list(p, f, app, list);
    draw_details(p, f, app, details);
}

/// A vault's kind and this account's standing in it, for the list.
fn standing(v: &VaultInfo) -> String {
    match &v.shared {
        None => "personal".into(),
        Some(s) if s.mine => "shared · owner".into(),
        Some(s) => format!(
            "{} · {}",
            s.role.as_str(),
            crate::text::cell(&s.owner_email)
        ),
    }
}

/// `"x"` at the left and `right` at the right of `width` cells (the left
/// part cut first).
fn two_sided(left: &str, right: &str, width: usize) -> String {
    let right = truncate(right, width.saturating_sub(8).max(width / 2));
    let left = truncate(left, width.saturating_sub(cells(&right) + 2));
    let pad = width.saturating_sub(cells(&left) + cells(&right));
    format!("{left}{}{right}", " ".repeat(pad))
}

fn draw_list(p: &SharePane, f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let height = usize::from(area.height.saturating_sub(2));
    let mut offset = p.offset.get();
    if p.sel < offset {
        offset = p.sel;
    } else if height > 0 && p.sel >= offset + height {
        offset = p.sel + 1 - height;
    }
    // A header just above the selection stays in sight.
    if offset > 0 && offset == p.sel && matches!(p.rows.get(p.sel - 1), Some(Row::Header(_))) {
        offset -= 1;
    }
    p.offset.set(offset);
    let width = usize::from(area.width.saturating_sub(3));
    let focused = p.focus == Focus::List;
    let lines: Vec<Line> = p
        .rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, row)| {
            let style = if i == p.sel {
                if focused {
                    t.selected
                } else {
                    t.accent.add_modifier(Modifier::BOLD)
                }
            } else {
                t.text
            };
            match row {
                Row::Header(s) => Line::from(Span::styled(header(p, *s), t.dim)),
                Row::Empty(s) => Line::from(Span::styled(format!(" {}", empty(p, app, *s)), t.dim)),
                Row::Vault(j) => {
                    let v = &p.local.as_ref().map(|l| &l.vaults[*j]);
                    let text =
                        v.map_or_else(String::new, |v| two_sided(&v.name, &standing(v), width));
                    Line::from(Span::styled(format!(" {text}"), style))
                }
                Row::Invite(j) => {
                    let text = p.invitations().get(*j).map_or_else(String::new, |i| {
                        two_sided(&i.name, &format!("from {}", i.owner_email), width)
                    });
                    Line::from(Span::styled(format!(" {text}"), style))
                }
                Row::Link(j) => {
                    let text = p.links().get(*j).map_or_else(String::new, |l| {
                        let name = l.item.as_deref().unwrap_or("(another device)");
                        two_sided(name, &link_state(l, app), width)
                    });
                    Line::from(Span::styled(format!(" {text}"), style))
                }
            }
        })
        .collect();
    let title = if p.loading {
        format!("Sharing {}", spinner(app))
    } else {
        "Sharing".to_owned()
    };
    f.render_widget(
        Paragraph::new(lines).block(block(app, &title, focused)),
        area,
    );
}

fn header(p: &SharePane, s: Section) -> String {
    match s {
        Section::Vaults => "Vaults".into(),
        Section::Invitations => match p.invitations().len() {
            0 => "Invitations".into(),
            n => format!("Invitations ({n})"),
        },
        Section::Links => match p.links().len() {
            0 => "Share links".into(),
            n => format!("Share links ({n})"),
        },
    }
}

/// What an empty section says: none, not read yet, or why not.
fn empty(p: &SharePane, app: &App, s: Section) -> String {
    if s == Section::Vaults {
        return "reading…".into();
    }
    if needs_server(app).is_some() {
        return "needs a sync server".into();
    }
    let part = p.remote.as_ref().map(|r| match s {
        Section::Invitations => r.invitations.as_ref().err(),
        _ => r.links.as_ref().err(),
    });
    match part {
        Some(None) => "none".into(),
        Some(Some(_)) => "the server did not say (details →)".into(),
        None if p.loading => "asking the server…".into(),
        None if p.stopped => "not asked (S asks again)".into(),
        None => "…".into(),
    }
}

/// Unix seconds of an RFC 3339 time (`2026-12-11T08:00:00Z`, an offset or
/// fraction allowed).
fn unix_of(s: &str) -> Option<i64> {
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i32>().ok();
    let month = time::Month::try_from(u8::try_from(n(5, 7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(n(0, 4)?, month, u8::try_from(n(8, 10)?).ok()?).ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(n(11, 13)?).ok()?,
        u8::try_from(n(14, 16)?).ok()?,
        u8::try_from(n(17, 19)?).ok()?,
    )
    .ok()?;
    let rest = s
        .get(19..)?
        .trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "Z" | "z" | "" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let h: i64 = o.get(1..3)?.parse().ok()?;
            let m: i64 = o.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(date.with_time(clock).assume_utc().unix_timestamp() - offset)
}

/// How long until `rfc3339`: "in 6 d", "in 3 h", "in 12 min", "expired".
fn left_until(app: &App, rfc3339: &str) -> String {
    let Some(at) = unix_of(rfc3339) else {
        return crate::text::cell(rfc3339).into_owned();
    };
    let now = app.clock.unix_millis() / 1000;
    match at - now {
        s if s <= 0 => "expired".into(),
        s if s < 3600 => format!("in {} min", (s + 59) / 60),
        s if s < 2 * 86_400 => format!("in {} h", s / 3600),
        s => format!("in {} d", s / 86_400),
    }
}

/// `2026-12-11 08:00 UTC` from an RFC 3339 time.
fn when(rfc3339: &str) -> String {
    let s = crate::text::cell(rfc3339);
    format!("{} UTC", s.get(..16).unwrap_or(&s).replace('T', " "))
}

fn views(l: &ShareInfo) -> String {
    match l.views_left {
        Some(1) => "1 view left".into(),
        Some(n) => format!("{n} views left"),
        None => "no view limit".into(),
    }
}

fn link_state(l: &ShareInfo, app: &App) -> String {
    let views = match l.views_left {
        Some(n) => format!(" · {n} view{}", if n == 1 { "" } else { "s" }),
        None => String::new(),
    };
    format!(
        "{}{views}",
        left_until(app, &l.expires_at).replace("in ", "")
    )
}

fn draw_details(p: &SharePane, f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let width = usize::from(area.width.saturating_sub(2));
    let (title, lines): (String, Vec<Line>) = match p.selected() {
        Some(Key::Vault(id)) => match p.vault(id) {
            Some(v) => (
                truncate(&v.name, width.saturating_sub(4)),
                vault_lines(p, app, v, width),
            ),
            None => (String::new(), Vec::new()),
        },
        Some(Key::Invite(id)) => match p.invitations().iter().find(|i| i.vault_id == id) {
            Some(i) => ("Invitation".into(), invitation_lines(p, app, i)),
            None => (String::new(), Vec::new()),
        },
        Some(Key::Link(id)) => match p.links().iter().find(|l| l.id == id) {
            Some(l) => ("Share link".into(), link_lines(app, l)),
            None => (String::new(), Vec::new()),
        },
        None => ("Sharing".into(), intro_lines(p, app)),
    };
    let mut lines = lines;
    if let Some(w) = p.working {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            format!("{} {w}… (Esc stops waiting)", spinner(app)),
            t.accent,
        )));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(app, &title, p.focus == Focus::Members)),
        area,
    );
}

fn dim(t: &Theme, s: impl Into<String>) -> Line<'static> {
    Line::from(Span::styled(s.into(), t.dim))
}

fn text(t: &Theme, s: impl Into<String>) -> Line<'static> {
    Line::from(Span::styled(s.into(), t.text))
}

fn field(t: &Theme, label: &str, value: impl Into<String>, style: Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:>11}  "), t.dim),
        Span::styled(value.into(), style),
    ])
}

/// How a member's trust is marked: plainly, a changed key loudest.
fn trust_mark(t: &Theme, trust: &str) -> (String, Style) {
    match trust {
        "verified" => ("✓ verified".into(), t.ok),
        "CHANGED" => ("⚠ KEY CHANGED".into(), t.danger),
        "you" => ("you".into(), t.dim),
        "pinned" => ("pinned".into(), t.text),
        _ => ("not pinned".into(), t.warn),
    }
}

fn intro_lines(p: &SharePane, app: &App) -> Vec<Line<'static>> {
    let t = &app.theme;
    let k = |a: Action| app.keymap.first_key(a);
    let mut out = vec![text(
        t,
        format!(
            "{} creates a vault; {} invites someone to it; {} makes a share link to the item \
             selected in the vault pane.",
            k(Action::New),
            k(Action::Invite),
            k(Action::ShareLink)
        ),
    )];
    if let Some(why) = needs_server(app) {
        out.push(Line::default());
        out.push(Line::from(Span::styled(why.to_owned(), t.warn)));
    }
    if let Some(l) = &p.local {
        out.push(Line::default());
        out.push(field(t, "you", l.fingerprint.clone(), t.text));
    }
    out
}

fn vault_lines(p: &SharePane, app: &App, v: &VaultInfo, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let k = |a: Action| app.keymap.first_key(a);
    let mut out = Vec::new();
    match &v.shared {
        None => {
            out.push(field(t, "kind", "personal: only you", t.text));
            out.push(Line::default());
            out.push(text(
                t,
                format!(
                    "{} invites someone: the vault becomes shared, its key sealed to each member's \
                     own key (the server never has it). {} creates another vault to share.",
                    k(Action::Invite),
                    k(Action::New)
                ),
            ));
            if let Some(why) = needs_server(app) {
                out.push(Line::default());
                out.push(Line::from(Span::styled(why.to_owned(), t.warn)));
            }
            return out;
        }
        Some(s) => {
            out.push(field(
                t,
                "owner",
                if s.mine {
                    "you".to_owned()
                } else {
                    crate::text::cell(&s.owner_email).into_owned()
                },
                t.text,
            ));
            out.push(field(
                t,
                "your role",
                if s.mine {
                    "owner (manager)"
                } else {
                    s.role.as_str()
                },
                t.text,
            ));
        }
    }
    out.push(Line::default());
    if let Some((id, lines)) = &p.activity
        && *id == v.id
    {
        out.extend(activity_lines(p, app, lines, width));
        return out;
    }
    let members = match p.members_of(v.id) {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            out.push(Line::from(Span::styled(
                format!("Cannot list the members: {}", crate::text::cell(e)),
                t.danger,
            )));
            return out;
        }
        None => {
            out.push(dim(
                t,
                if let Some(why) = needs_server(app) {
                    why.to_owned()
                } else if p.loading {
                    format!(
                        "{} Asking the server for the members… (Esc stops)",
                        spinner(app)
                    )
                } else {
                    "Members not read (S asks the server again)".to_owned()
                },
            ));
            return out;
        }
    };
    out.push(dim(t, format!("Members ({})", members.len())));
    let focused = p.focus == Focus::Members;
    for (i, m) in members.iter().enumerate() {
        out.extend(member_lines(app, m, width, focused && i == p.member_sel));
    }
    if let Some(m) = members.iter().find(|m| m.trust == "CHANGED") {
        out.push(Line::default());
        out.push(Line::from(Span::styled(
            format!(
                "⚠ The key of {} is not the one this device pinned. Someone may be substituting \
                 keys: nothing is shared with them until you compare the new fingerprint with \
                 them (in person or on a call) and confirm it: {} on them.",
                crate::text::cell(&m.email),
                k(Action::Verify)
            ),
            t.danger,
        )));
    }
    out
}

/// The activity log, newest first, from the line the user scrolled to.
fn activity_lines(
    p: &SharePane,
    app: &App,
    lines: &Result<Vec<Activity>, String>,
    width: usize,
) -> Vec<Line<'static>> {
    let t = &app.theme;
    let k = |a: Action| app.keymap.first_key(a);
    let lines = match lines {
        Ok(l) => l,
        Err(e) => {
            return vec![Line::from(Span::styled(
                format!("Cannot read the activity log: {}", crate::text::cell(e)),
                t.danger,
            ))];
        }
    };
    let mut out = vec![dim(
        t,
        format!(
            "Activity ({}, newest first) · {} members",
            lines.len(),
            k(Action::History)
        ),
    )];
    if lines.is_empty() {
        out.push(dim(t, "Nothing yet."));
    }
    let now = app.clock.unix_millis();
    for a in lines.iter().skip(p.activity_top) {
        let (proof, style) = match a.proof {
            "signed" => ("✓ signed", t.ok),
            "UNVERIFIED" => ("⚠ UNVERIFIED", t.danger),
            other => (other, t.dim),
        };
        let when = ago(now, a.at);
        let who = truncate(
            &a.who,
            width.saturating_sub(cells(&when) + cells(proof) + 4),
        );
        let pad = width.saturating_sub(cells(&when) + cells(&who) + cells(proof) + 2);
        out.push(Line::from(vec![
            Span::styled(format!("{when}  "), t.dim),
            Span::styled(who, t.text),
            Span::styled(format!("{}{proof}", " ".repeat(pad)), style),
        ]));
        out.push(Line::from(Span::styled(
            format!("  {}", truncate(&a.what, width.saturating_sub(2))),
            t.text,
        )));
    }
    out
}

fn member_lines(app: &App, m: &MemberView, width: usize, selected: bool) -> [Line<'static>; 2] {
    let t = &app.theme;
    let (mark, mark_style) = trust_mark(t, &m.trust);
    let role = if m.status == "active" {
        m.role.as_str().to_owned()
    } else {
        format!("{} · {}", m.role.as_str(), crate::text::cell(&m.status))
    };
    let right = format!("{role}  {mark}");
    let email = truncate(&m.email, width.saturating_sub(cells(&right) + 4));
    let pad = width.saturating_sub(cells(&email) + cells(&right) + 2);
    let base = if selected { t.selected } else { t.text };
    [
        Line::from(vec![
            Span::styled(
                format!(
                    "{} {email}{}",
                    if selected { "▸" } else { " " },
                    " ".repeat(pad)
                ),
                base,
            ),
            Span::styled(format!("{role}  "), base),
            Span::styled(mark, if selected { base } else { mark_style }),
        ]),
        Line::from(Span::styled(format!("    {}", m.fingerprint), t.dim)),
    ]
}

fn invitation_lines(p: &SharePane, app: &App, i: &Invitation) -> Vec<Line<'static>> {
    let t = &app.theme;
    let k = |a: Action| app.keymap.first_key(a);
    let owner = crate::text::cell(&i.owner_email).into_owned();
    let mut out = vec![
        field(t, "vault", crate::text::cell(&i.name).into_owned(), t.title),
        field(t, "from", owner.clone(), t.text),
        field(t, "role", crate::text::cell(&i.role).into_owned(), t.text),
    ];
    let pinned = p
        .local
        .as_ref()
        .and_then(|l| l.contacts.iter().find(|c| c.email == i.owner_email));
    match pinned {
        Some(c) => {
            out.push(field(t, "their key", c.fingerprint.clone(), t.text));
            out.push(if c.trust == Trust::Verified {
                field(t, "", "✓ verified on this device", t.ok)
            } else {
                field(t, "", "pinned on this device (not yet verified)", t.dim)
            });
        }
        None => out.push(field(
            t,
            "their key",
            "not pinned yet: accepting pins it",
            t.warn,
        )),
    }
    out.push(Line::default());
    out.push(text(
        t,
        format!(
            "Accepting checks the vault's signed membership log against {owner}'s keys and \
             opens the vault key sealed to yours; nothing is taken from the server unchecked."
        ),
    ));
    if let Some(l) = &p.local {
        out.push(Line::default());
        out.push(field(t, "you", l.fingerprint.clone(), t.text));
        out.push(dim(
            t,
            format!("{owner} may ask you to read this fingerprint."),
        ));
    }
    out.push(Line::default());
    out.push(dim(
        t,
        format!(
            "{} accepts · {} declines",
            k(Action::Accept),
            k(Action::Delete)
        ),
    ));
    out
}

fn link_lines(app: &App, l: &ShareInfo) -> Vec<Line<'static>> {
    let t = &app.theme;
    let k = |a: Action| app.keymap.first_key(a);
    let mut out = vec![match &l.item {
        Some(item) => field(t, "item", crate::text::cell(item).into_owned(), t.title),
        None => field(t, "item", "(made on another device)", t.dim),
    }];
    if let Some(fields) = &l.fields {
        out.push(field(
            t,
            "fields",
            if fields.is_empty() {
                "none".to_owned()
            } else {
                crate::text::cell(&fields.join(", ")).into_owned()
            },
            t.text,
        ));
    }
    out.push(field(
        t,
        "id",
        crate::text::cell(&l.id).into_owned(),
        t.text,
    ));
    out.push(field(t, "created", when(&l.created_at), t.text));
    let left = left_until(app, &l.expires_at);
    out.push(field(
        t,
        "expires",
        format!("{} ({left})", when(&l.expires_at)),
        if left == "expired" { t.danger } else { t.text },
    ));
    out.push(field(
        t,
        "views",
        match l.max_views {
            Some(max) => format!("{} of {max}", views(l)),
            None => views(l),
        },
        t.text,
    ));
    out.push(Line::default());
    if l.item.is_some() {
        out.push(text(
            t,
            "Anyone with the link can read these fields until it expires or its views are used \
             up; the key is only in the link (after the #), never on the server.",
        ));
        out.push(Line::default());
        out.push(dim(
            t,
            format!(
                "{} copies the link · {} revokes it now",
                k(Action::CopyField),
                k(Action::Delete)
            ),
        ));
    } else {
        out.push(text(
            t,
            "Made on another device: its URL (which holds the key) is only there.",
        ));
        out.push(Line::default());
        out.push(dim(t, format!("{} revokes it now", k(Action::Delete))));
    }
    out
}
