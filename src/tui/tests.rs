//! TUI tests: the real [`App`] driven by key events against a real
//! [`Worker`] on a temporary vault (floor KDF), a fake clock and a fake
//! clipboard; screens rendered with ratatui's `TestBackend` and compared
//! with insta snapshots (in `snapshots/`). Every snapshot is also checked
//! for fixture secrets: none may appear unless the test revealed it.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use super::app::{App, CreateStep, Popup, Screen, Settings};
use super::clip::{Copies, FakeClipboard};
use super::clock::FakeClock;
use super::keymap::Keymap;
use super::panes::vault::{Filter, Focus};
use super::panes::{devices, search, vault};
use super::theme::Theme;
use super::ui;
use super::worker::{Reply, Request, Worker};
use crate::engine::model::{Field, FieldKind, ItemKind, label, now_millis};
use crate::engine::test_fixtures::login;
use crate::engine::{ItemDraft, KdfParams, SecretString, Session};

mod approve;
mod import;
mod recovery;
mod share;

const PASSWORD: &str = "correct horse battery staple";

/// The code the engine computes for the test's TOTP seed at `unix_seconds`.
fn totp_code(unix_seconds: u64) -> String {
    Field::new(label::TOTP, TOTP_SEED, FieldKind::Totp)
        .totp_at(unix_seconds)
        .expect("seed")
        .code
}
const SECRETS: [&str; 4] = [
    "hunter2-secret",
    "4111111111114242",
    "sk-live-0000",
    "JBSWY3DPEHPK3PXP",
];
const TOTP_SEED: &str = "JBSWY3DPEHPK3PXP";
const SHOWN_DIR: &str = "/home/alice/.local/share/openk/vault";

struct Harness {
    app: App,
    worker: Worker,
    /// Requests the worker queues to itself (syncs, server events).
    own: tokio::sync::mpsc::UnboundedReceiver<Request>,
    clock: FakeClock,
    copies: Copies,
    dir: PathBuf,
    /// Whether `pump` waits for network jobs to finish.
    wait_for_network: bool,
    _tmp: tempfile::TempDir,
}

/// A vault with a few items of different kinds.
async fn fixture(dir: &std::path::Path) {
    let mut v = Session::init(
        dir,
        SecretString::from(PASSWORD.to_owned()),
        KdfParams::FLOOR,
    )
    .await
    .expect("init");
    let mut github = login("GitHub", "alice", "hunter2-secret");
    github
        .fields
        .push(Field::new(label::URL, "https://github.com", FieldKind::Url));
    github
        .fields
        .push(Field::new(label::TOTP, TOTP_SEED, FieldKind::Totp));
    github.tags = vec!["work".into()];
    github.folder = Some("Dev".into());
    github.favorite = true;
    let mut gitlab = login("GitLab", "alice@work", "gl-pass-1");
    gitlab.tags = vec!["work".into()];
    let card = ItemDraft {
        kind: ItemKind::Card,
        name: "Visa".into(),
        fields: vec![
            Field::new(label::CARDHOLDER, "Alice Example", FieldKind::Text),
            Field::new(label::NUMBER, "4111111111114242", FieldKind::Secret),
        ],
        tags: vec![],
        folder: Some("Bank".into()),
        favorite: false,
    };
    let api = ItemDraft {
        kind: ItemKind::ApiKey,
        name: "Stripe".into(),
        fields: vec![Field::new(label::KEY, "sk-live-0000", FieldKind::Secret)],
        tags: vec!["billing".into()],
        folder: None,
        favorite: false,
    };
    let note = ItemDraft {
        kind: ItemKind::Note,
        name: "Wifi at home".into(),
        fields: vec![Field::new(
            label::NOTES,
            "ask the router",
            FieldKind::Multiline,
        )],
        tags: vec![],
        folder: None,
        favorite: false,
    };
    v.add_many(vec![github, gitlab, card, api, note])
        .await
        .expect("add");
    v.close().await;
}

fn settings(has_vault: bool) -> Settings {
    Settings {
        vault_dir: PathBuf::from(SHOWN_DIR),
        lock_after: Some(Duration::from_secs(300)),
        clear_after: Some(Duration::from_secs(30)),
        has_vault,
    }
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

impl Harness {
    async fn new(with_vault: bool) -> Self {
        Self::with_theme(with_vault, Theme::named("dark", false)).await
    }

    async fn with_theme(with_vault: bool, theme: Theme) -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("vault");
        if with_vault {
            fixture(&dir).await;
        }
        // On a TOTP period boundary, and not before the items were saved, so
        // countdowns and "just now" are the same on every run.
        let clock = FakeClock::new(now_millis() / 30_000 * 30_000);
        let clip = FakeClipboard::default();
        let copies = clip.copied.clone();
        let app = App::new(
            settings(with_vault),
            theme,
            Keymap::default(),
            Box::new(clock.clone()),
            Box::new(clip),
        );
        let mut worker =
            Worker::new(dir.clone(), KdfParams::FLOOR, true).with_kit_dir(tmp.path().into());
        let (me, own) = tokio::sync::mpsc::unbounded_channel();
        worker.connect(me);
        Self {
            app,
            worker,
            own,
            clock,
            copies,
            dir,
            wait_for_network: true,
            _tmp: tmp,
        }
    }

    /// Serves what the app asked for until it asks for nothing more (and,
    /// unless `wait_for_network` is off, until network jobs are done).
    async fn pump(&mut self) {
        for _ in 0..200 {
            let mut requests: Vec<Request> = self.app.outbox.drain(..).collect();
            while let Ok(r) = self.own.try_recv() {
                requests.push(r);
            }
            if requests.is_empty() {
                if !self.wait_for_network || !self.worker.is_busy() {
                    return;
                }
                // A network job runs in its own task: wait for its answer.
                match tokio::time::timeout(Duration::from_secs(20), self.own.recv()).await {
                    Ok(Some(r)) => requests.push(r),
                    _ => return,
                }
            }
            for r in requests {
                for reply in self.worker.handle(r).await {
                    self.app.on_reply(reply);
                }
            }
        }
    }

    async fn press(&mut self, k: KeyEvent) {
        self.app.handle_event(&Event::Key(k));
        self.pump().await;
    }

    async fn keys(&mut self, s: &str) {
        for c in s.chars() {
            self.press(key(c)).await;
        }
    }

    async fn unlocked() -> Self {
        let mut h = Self::new(true).await;
        h.keys(PASSWORD).await;
        h.press(code(KeyCode::Enter)).await;
        assert!(matches!(h.app.screen, Screen::Main), "unlocked");
        h
    }

    fn render(&mut self, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        t.draw(|f| ui::draw(f, &self.app)).expect("draw");
        t
    }

    /// The screen as text, checked for secrets the test did not reveal.
    fn screen(&mut self, w: u16, h: u16, revealed: &[&str]) -> String {
        let text = self.render(w, h).backend().to_string();
        for s in SECRETS {
            if !revealed.contains(&s) {
                assert!(!text.contains(s), "secret {s:?} on screen:\n{text}");
            }
        }
        text
    }
}

fn style_runs(buf: &Buffer, rows: &[u16]) -> String {
    let mut out = String::new();
    for &y in rows {
        let mut last = None;
        let mut text = String::new();
        for x in 0..buf.area.width {
            let cell = &buf[(x, y)];
            let style = (cell.fg, cell.bg, cell.modifier);
            if last.is_some_and(|l| l != style) {
                out.push_str(&format!(
                    "{:?} {:?}\n",
                    last.expect("some"),
                    text.trim_end()
                ));
                text.clear();
            }
            last = Some(style);
            text.push_str(cell.symbol());
        }
        if let Some(l) = last {
            out.push_str(&format!("{l:?} {:?}\n", text.trim_end()));
        }
        out.push_str("--\n");
    }
    out
}

// ----------------------------------------------------------------- unlock

#[tokio::test]
async fn unlock_screen_masks_the_password() {
    let mut h = Harness::new(true).await;
    h.keys("hunter2-secret").await;
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("••••••••••••••"));
    insta::assert_snapshot!("unlock_screen", text);
}

#[tokio::test]
async fn wrong_password_says_so_and_stays_locked() {
    let mut h = Harness::new(true).await;
    h.keys("not the password").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Unlock(_)));
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("wrong password"), "{text}");
    insta::assert_snapshot!("unlock_wrong_password", text);
    // The right one then works.
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Main));
}

#[tokio::test]
async fn ctrl_c_and_esc_quit_from_the_unlock_screen() {
    let mut h = Harness::new(true).await;
    h.press(ctrl('c')).await;
    assert!(h.app.quit);
    let mut h = Harness::new(true).await;
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.quit);
}

#[tokio::test]
async fn first_run_creates_the_vault_and_writes_the_kit() {
    let mut h = Harness::new(false).await;
    assert!(matches!(h.app.screen, Screen::Create(_)));
    h.keys("abc").await;
    let weak = h.screen(80, 24, &[]);
    assert!(weak.contains("Too easy to guess"), "{weak}");
    insta::assert_snapshot!("create_weak_password", weak);
    // Below zxcvbn's floor the password is refused where it was typed.
    h.press(code(KeyCode::Enter)).await;
    let Screen::Create(s) = &h.app.screen else {
        panic!("still creating")
    };
    assert!(!s.on_second && s.first.as_str() == "abc");
    assert!(
        s.error
            .as_deref()
            .is_some_and(|e| e.contains("too easy to guess"))
    );
    for _ in 0..3 {
        h.press(code(KeyCode::Backspace)).await;
    }
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.keys("correct horse battery stapler").await;
    h.press(code(KeyCode::Enter)).await;
    let Screen::Create(s) = &h.app.screen else {
        panic!("still creating")
    };
    assert!(s.error.as_deref().is_some_and(|e| e.contains("differ")));
    assert!(!h.dir.exists() || !crate::engine::has_vault_file(&h.dir));
    for _ in 0.."correct horse battery stapler".len() {
        h.press(code(KeyCode::Backspace)).await;
    }
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    let Screen::Create(s) = &h.app.screen else {
        panic!("still creating")
    };
    let CreateStep::Kit { secret_key, kit } = &s.step else {
        panic!("kit step, not {:?}", s.step)
    };
    assert!(secret_key.starts_with("OK1-"), "secret key shown");
    let secret_key = secret_key.as_str().to_owned();
    let kit = kit.as_ref().expect("kit written").clone();
    let text = std::fs::read_to_string(&kit).expect("kit file");
    assert!(text.contains(secret_key.as_str()));
    let screen = h.screen(80, 24, &[]);
    assert!(screen.contains(secret_key.as_str()) && screen.contains("Emergency Kit"));
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Main));
    assert!(crate::engine::has_vault_file(&h.dir));
}

#[tokio::test]
async fn kit_step_snapshot() {
    let mut h = Harness::new(false).await;
    h.app.on_reply(Reply::Created {
        entries: std::sync::Arc::new(Vec::new()),
        secret_key: zeroize::Zeroizing::new("OK1-ABCDEF-GHJKLM-NPQRST-VWXYZ2-3456".into()),
        kit: Ok(PathBuf::from(
            "/home/alice/openk-emergency-kit-0193a1b2.txt",
        )),
    });
    insta::assert_snapshot!("create_kit_step", h.screen(80, 24, &[]));
}

// ------------------------------------------------------------- vault pane

#[tokio::test]
async fn vault_pane_lists_favourites_first_and_masks_secrets() {
    let mut h = Harness::unlocked().await;
    let names: Vec<&str> = h
        .app
        .vault()
        .shown
        .iter()
        .map(|&i| h.app.vault().entries[i as usize].overview.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["GitHub", "GitLab", "Stripe", "Visa", "Wifi at home"]
    );
    let text = h.screen(80, 24, &[]);
    insta::assert_snapshot!("vault_pane_80x24", text);
    insta::assert_snapshot!("vault_pane_120x40", h.screen(120, 40, &[]));
}

#[tokio::test]
async fn vault_pane_reveal_toggles_only_the_selected_field() {
    let mut h = Harness::unlocked().await;
    h.press(key('r')).await;
    let text = h.screen(80, 24, &["hunter2-secret"]);
    assert!(text.contains("hunter2-secret"));
    insta::assert_snapshot!("vault_pane_revealed_password", text);
    h.press(key('r')).await;
    assert!(!h.screen(80, 24, &[]).contains("hunter2-secret"));
    // Moving to another item forgets what was revealed.
    h.press(key('r')).await;
    h.press(key('j')).await;
    h.press(key('k')).await;
    assert!(!h.screen(80, 24, &[]).contains("hunter2-secret"));
}

#[tokio::test]
async fn totp_shows_a_live_countdown_and_the_code_when_revealed() {
    let mut h = Harness::unlocked().await;
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("••• •••  ⏱ 30s"), "{text}");
    h.clock.advance(Duration::from_secs(7));
    h.app.tick();
    assert!(h.screen(80, 24, &[]).contains("⏱ 23s"));
    // Select the TOTP field (details column) and reveal it.
    h.press(key('l')).await;
    h.press(key('l')).await;
    while h
        .app
        .vault()
        .detail
        .as_ref()
        .expect("detail")
        .details
        .fields[h.app.vault().field_sel]
        .kind
        != FieldKind::Totp
    {
        h.press(key('j')).await;
    }
    h.press(key('r')).await;
    let now = u64::try_from(h.clock_unix() / 1000).expect("time");
    let code = totp_code(now);
    let shown = format!("{} {}", &code[..3], &code[3..]);
    assert!(h.screen(80, 24, &[]).contains(&shown));
}

impl Harness {
    fn clock_unix(&self) -> i64 {
        use super::clock::Clock as _;
        self.clock.unix_millis()
    }
}

#[tokio::test]
async fn sidebar_filters_folders_tags_and_sort() {
    let mut h = Harness::unlocked().await;
    h.press(key('h')).await;
    assert_eq!(h.app.vault().focus, Focus::Sidebar);
    h.press(key('G')).await;
    // The last row is the last tag: #work.
    assert_eq!(h.app.vault().filter, Filter::Tag("work".into()));
    assert_eq!(h.app.vault().shown.len(), 2);
    insta::assert_snapshot!("vault_pane_tag_filter", h.screen(80, 24, &[]));
    h.press(code(KeyCode::Esc)).await;
    h.press(code(KeyCode::Esc)).await;
    assert_eq!(h.app.vault().filter, Filter::All);
    h.press(key('s')).await;
    assert!(h.screen(80, 24, &[]).contains("Sorted by last change"));
    assert!(h.screen(120, 40, &[]).contains("by changed"));
}

#[tokio::test]
async fn mouse_click_selects_and_wheel_scrolls() {
    let mut h = Harness::unlocked().await;
    h.render(80, 24);
    let list = h.app.areas().list;
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: list.x + 3,
        row: list.y + 3,
        modifiers: KeyModifiers::NONE,
    };
    h.app.handle_event(&Event::Mouse(click));
    h.pump().await;
    assert_eq!(h.app.vault().sel, 2);
    assert_eq!(
        h.app
            .vault()
            .detail
            .as_ref()
            .map(|d| d.overview.name.as_str()),
        Some("Stripe")
    );
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: list.x + 3,
        row: list.y + 3,
        modifiers: KeyModifiers::NONE,
    };
    h.app.handle_event(&Event::Mouse(wheel));
    assert_eq!(h.app.vault().sel, 4);
}

// ------------------------------------------------------------------ copy

#[tokio::test]
async fn copy_password_username_and_totp_go_through_the_clipboard() {
    let mut h = Harness::unlocked().await;
    h.press(key('c')).await;
    h.press(key('u')).await;
    h.press(key('t')).await;
    let copies = h.copies.lock().expect("copies").clone();
    let now = u64::try_from(h.clock_unix() / 1000).expect("time");
    let code = totp_code(now);
    let values: Vec<&str> = copies.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(values, ["hunter2-secret", "alice", code.as_str()]);
    assert!(
        copies
            .iter()
            .all(|(_, d)| *d == Some(Duration::from_secs(30)))
    );
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("clip 30s"), "{text}");
    assert!(text.contains("Copied the TOTP code of GitHub"));
    h.clock.advance(Duration::from_secs(31));
    h.app.tick();
    assert!(!h.screen(80, 24, &[]).contains("clip "));
}

#[tokio::test]
async fn details_say_how_often_and_when_the_item_was_used() {
    let mut h = Harness::unlocked().await;
    let used = |h: &mut Harness| {
        h.screen(80, 24, &[])
            .lines()
            .find(|l| l.contains(" used "))
            .map(|l| {
                l.split(" used ")
                    .nth(1)
                    .unwrap_or("")
                    .trim_end_matches(['"', '│', ' '])
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    assert_eq!(used(&mut h), "never");
    // Copies count (and a copy makes no new version: still v1).
    h.press(key('c')).await;
    h.press(key('u')).await;
    assert_eq!(used(&mut h), "2 times · just now");
    insta::assert_snapshot!("vault_pane_used_twice", h.screen(80, 24, &[]));
    assert!(h.screen(80, 24, &[]).contains("just now · v1"));
    // Hiding a revealed secret is no use; revealing one is.
    h.press(key('r')).await;
    h.press(key('r')).await;
    assert_eq!(used(&mut h), "3 times · just now");
    // Another item has its own count; time goes by.
    h.press(key('j')).await;
    assert_eq!(used(&mut h), "never");
    h.press(key('k')).await;
    // (The fake clock started up to 30 s before the uses.)
    h.clock.advance(Duration::from_secs(2 * 3600 + 60));
    assert_eq!(used(&mut h), "3 times · 2 h ago");
}

#[tokio::test]
async fn copy_right_after_moving_waits_for_the_details() {
    let mut h = Harness::unlocked().await;
    h.app.handle_event(&Event::Key(key('j')));
    h.app.handle_event(&Event::Key(key('c')));
    h.pump().await;
    let copies = h.copies.lock().expect("copies").clone();
    assert_eq!(copies.first().map(|c| c.0.as_str()), Some("gl-pass-1"));
}

// ---------------------------------------------------------------- search

#[tokio::test]
async fn search_updates_per_keystroke_highlights_and_jumps() {
    let mut h = Harness::unlocked().await;
    h.press(key('/')).await;
    assert_eq!(h.app.pane, search::TO);
    h.keys("git").await;
    assert_eq!(h.app.search().hits.len(), 2);
    for _ in 0..3 {
        h.press(code(KeyCode::Backspace)).await;
    }
    h.keys("lab").await;
    assert_eq!(h.app.search().hits.len(), 1, "lab matches GitLab only");
    let t = h.render(80, 24);
    let text = t.backend().to_string();
    insta::assert_snapshot!("search_pane", text);
    // The matched characters are highlighted (underlined).
    let buf = t.backend().buffer();
    let results = h.app.areas().results;
    let row = results.y + 1;
    let underlined: String = (results.x..results.x + results.width)
        .map(|x| &buf[(x, row)])
        .filter(|c| c.modifier.contains(ratatui::style::Modifier::UNDERLINED))
        .map(ratatui::buffer::Cell::symbol)
        .collect();
    assert_eq!(underlined, "Lab");
    h.press(code(KeyCode::Enter)).await;
    assert_eq!(h.app.pane, vault::TO);
    assert_eq!(
        h.app
            .vault()
            .detail
            .as_ref()
            .map(|d| d.overview.name.as_str()),
        Some("GitLab")
    );
}

#[tokio::test]
async fn search_filters_narrow_results() {
    let mut h = Harness::unlocked().await;
    h.press(key('/')).await;
    h.keys("kind:card").await;
    let names: Vec<String> = h
        .app
        .search()
        .hits
        .iter()
        .filter_map(|id| h.app.entry(*id).map(|e| e.overview.name.clone()))
        .collect();
    assert_eq!(names, ["Visa"]);
    for _ in 0.."kind:card".len() {
        h.press(code(KeyCode::Backspace)).await;
    }
    h.keys("tag:work folder:Dev").await;
    assert_eq!(h.app.search().hits.len(), 1);
    h.press(ctrl('u')).await;
    h.keys("kind:nope").await;
    assert!(
        h.app
            .search()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("unknown kind"))
    );
    h.press(code(KeyCode::Esc)).await;
    assert_eq!(h.app.pane, vault::TO);
}

// ------------------------------------------------------- add, edit, trash

#[tokio::test]
async fn add_a_login_with_the_generator() {
    let mut h = Harness::unlocked().await;
    h.press(key('n')).await;
    insta::assert_snapshot!("new_item_kind_picker", h.screen(80, 24, &[]));
    h.press(code(KeyCode::Enter)).await; // login
    h.keys("Bank").await;
    h.press(code(KeyCode::Down)).await;
    h.keys("bob").await;
    h.press(code(KeyCode::Down)).await;
    h.press(ctrl('g')).await;
    let Some(Popup::Generator(g)) = h.app.popups.last_mut() else {
        panic!("generator open")
    };
    assert!(g.entropy > 100.0);
    g.value = zeroize::Zeroizing::new("Gen3rated!Passw0rd#xyz".into());
    g.entropy = 131.1;
    insta::assert_snapshot!("generator_popup", h.screen(80, 24, &[]));
    h.press(code(KeyCode::Right)).await; // regenerates, 21 characters
    let Some(Popup::Generator(g)) = h.app.popups.last() else {
        panic!("generator open")
    };
    let generated = g.value.as_str().to_owned();
    assert_eq!(generated.chars().count(), 21);
    h.press(code(KeyCode::Enter)).await;
    insta::assert_snapshot!("new_item_form", h.screen(80, 24, &[]));
    h.press(ctrl('s')).await;
    assert!(h.app.popups.is_empty());
    let item = h.app.vault().detail.clone().expect("selected");
    assert_eq!(item.overview.name, "Bank");
    assert_eq!(h.app.selected_id(), Some(item.r.id));
    assert_eq!(
        item.field(label::PASSWORD).map(|f| f.value.expose()),
        Some(generated.as_str())
    );
    assert_eq!(
        item.field(label::USERNAME).map(|f| f.value.expose()),
        Some("bob")
    );
}

#[tokio::test]
async fn every_kind_has_a_form_that_saves() {
    for (i, kind) in ItemKind::ALL.iter().enumerate() {
        let mut h = Harness::unlocked().await;
        h.press(key('n')).await;
        for _ in 0..i {
            h.press(key('j')).await;
        }
        h.press(code(KeyCode::Enter)).await;
        let name = format!("my {kind}");
        h.keys(&name).await;
        h.press(code(KeyCode::Down)).await;
        h.keys("value1").await;
        h.press(ctrl('s')).await;
        let item = h.app.vault().detail.clone().expect("saved");
        assert_eq!(item.overview.kind, *kind);
        assert_eq!(item.overview.name, name);
        assert_eq!(item.details.fields.len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn edit_changes_fields_and_adds_and_removes_custom_ones() {
    let mut h = Harness::unlocked().await;
    h.press(key('e')).await;
    let Some(Popup::Form(form)) = h.app.popups.last() else {
        panic!("form open")
    };
    assert_eq!(form.rows[1].label, "username");
    h.press(code(KeyCode::Down)).await;
    h.keys("-new").await;
    h.press(ctrl('n')).await;
    h.keys("recovery code").await;
    h.press(code(KeyCode::Enter)).await;
    h.keys("abc-123").await;
    h.press(ctrl('t')).await; // make it secret
    insta::assert_snapshot!("edit_item_form", h.screen(80, 24, &["JBSWY3DPEHPK3PXP"]));
    // Remove the URL field.
    let Some(Popup::Form(form)) = h.app.popups.last() else {
        panic!("form open")
    };
    let url_row = form
        .rows
        .iter()
        .position(|r| r.label == "url")
        .expect("url row");
    let at = form.sel;
    for _ in 0..at.abs_diff(url_row) {
        h.press(code(if url_row > at {
            KeyCode::Down
        } else {
            KeyCode::Up
        }))
        .await;
    }
    h.press(ctrl('x')).await;
    h.press(ctrl('s')).await;
    let item = h.app.vault().detail.clone().expect("saved");
    assert_eq!(
        item.field(label::USERNAME).map(|f| f.value.expose()),
        Some("alice-new")
    );
    let custom = item.field("recovery code").expect("custom field");
    assert_eq!(
        (custom.value.expose(), custom.kind),
        ("abc-123", FieldKind::Secret)
    );
    assert!(item.field(label::URL).is_none());
    assert!(item.overview.urls.is_empty());
    assert_eq!(
        item.field(label::PASSWORD).map(|f| f.value.expose()),
        Some("hunter2-secret")
    );
    assert_eq!(item.r.version, 2);
}

#[tokio::test]
async fn trash_asks_first_then_restore_brings_it_back() {
    let mut h = Harness::unlocked().await;
    h.press(key('d')).await;
    insta::assert_snapshot!("confirm_trash", h.screen(80, 24, &[]));
    h.press(key('n')).await;
    assert_eq!(h.app.vault().shown.len(), 5);
    h.press(key('d')).await;
    h.press(key('y')).await;
    assert_eq!(h.app.vault().shown.len(), 4);
    // Trash in the sidebar lists it; R restores it.
    h.press(key('h')).await;
    h.press(key('j')).await;
    h.press(key('j')).await;
    h.press(key('j')).await;
    assert_eq!(h.app.vault().filter, Filter::Trash);
    assert_eq!(h.app.vault().shown.len(), 1);
    h.press(key('l')).await;
    insta::assert_snapshot!("trash_view", h.screen(80, 24, &[]));
    h.press(key('R')).await;
    assert_eq!(h.app.vault().filter, Filter::Trash);
    assert!(h.app.vault().shown.is_empty());
    h.press(code(KeyCode::Esc)).await;
    h.press(code(KeyCode::Esc)).await;
    assert_eq!(h.app.vault().shown.len(), 5);
}

#[tokio::test]
async fn history_lists_versions_and_the_fields_that_differ() {
    let mut h = Harness::unlocked().await;
    h.press(key('e')).await;
    h.press(code(KeyCode::Down)).await;
    h.press(code(KeyCode::Down)).await;
    h.keys("-v2").await;
    h.press(ctrl('s')).await;
    h.press(key('H')).await;
    let Some(Popup::History(hist)) = h.app.popups.last() else {
        panic!("history open")
    };
    assert_eq!(hist.versions.len(), 2);
    h.press(key('k')).await;
    h.press(code(KeyCode::Enter)).await;
    let text = h.screen(80, 24, &[]);
    assert!(
        text.contains("password") && text.contains("changed (r reveals)"),
        "{text}"
    );
    insta::assert_snapshot!("history_popup", text);
    h.press(key('r')).await;
    let text = h.screen(80, 24, &["hunter2-secret"]);
    assert!(
        text.contains("hunter2-secret → hunter2-secret-v2"),
        "{text}"
    );
}

// ----------------------------------------------------------------- lock

#[tokio::test]
async fn idle_lock_wipes_state_and_returns_to_unlock() {
    let mut h = Harness::unlocked().await;
    h.press(key('r')).await;
    assert!(h.screen(80, 24, &["hunter2-secret"]).contains("lock 5:00"));
    h.clock.advance(Duration::from_secs(299));
    h.app.tick();
    assert!(matches!(h.app.screen, Screen::Main));
    assert!(h.screen(80, 24, &["hunter2-secret"]).contains("lock 0:01"));
    // A key press restarts the countdown.
    h.press(key('j')).await;
    h.press(key('k')).await;
    h.clock.advance(Duration::from_secs(200));
    h.app.tick();
    assert!(matches!(h.app.screen, Screen::Main));
    h.clock.advance(Duration::from_secs(100));
    h.app.tick();
    assert!(matches!(h.app.screen, Screen::Unlock(_)));
    assert!(
        h.app.vault().entries.is_empty()
            && h.app.vault().detail.is_none()
            && h.app.vault().shown.is_empty()
    );
    assert!(matches!(h.app.outbox.as_slice(), [Request::Lock]));
    h.pump().await;
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("Locked after being idle"), "{text}");
    assert!(!text.contains("GitHub"));
    // The worker dropped the vault: a late request fails.
    let replies = h
        .worker
        .handle(Request::Job(vault::read_item(uuid::Uuid::nil())))
        .await;
    assert!(matches!(replies.as_slice(), [Reply::Error(m)] if m.contains("locked")));
}

#[tokio::test]
async fn capital_l_locks_now() {
    let mut h = Harness::unlocked().await;
    h.press(key('L')).await;
    assert!(matches!(h.app.screen, Screen::Unlock(_)));
    assert!(h.app.vault().entries.is_empty());
}

// ------------------------------------------------------- overlays & panes

#[tokio::test]
async fn help_overlay_lists_every_binding() {
    let mut h = Harness::unlocked().await;
    h.press(key('?')).await;
    let text = h.screen(80, 24, &[]);
    for a in super::keymap::Action::ALL {
        let keys = h.app.keymap.keys_of(a);
        assert!(text.contains(&keys), "{} ({keys}) missing", a.name());
        // Every binding fits 80×24: each one's words are on screen (a
        // pair's in one cell).
        let pair = super::popups::help::PAIRS
            .iter()
            .find(|p| p.0 == a || p.1 == a)
            .map(|p| p.2);
        let words = pair.unwrap_or_else(|| a.describe().trim_end_matches(" pane"));
        assert!(
            text.contains(words),
            "{} ({words}) missing:\n{text}",
            a.name()
        );
    }
    insta::assert_snapshot!("help_overlay", text);
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.popups.is_empty());
}

#[tokio::test]
async fn command_palette_finds_and_runs_actions() {
    let mut h = Harness::unlocked().await;
    h.press(key(':')).await;
    h.keys("lock").await;
    insta::assert_snapshot!("command_palette", h.screen(80, 24, &[]));
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Unlock(_)));
}

#[tokio::test]
async fn devices_pane_says_local_only_plainly() {
    let mut h = Harness::unlocked().await;
    h.press(key('3')).await;
    assert_eq!(h.app.pane, devices::TO);
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("Local only"), "{text}");
    insta::assert_snapshot!("devices_pane_local_only", text);
    h.press(code(KeyCode::Tab)).await;
    assert_eq!(h.app.pane, super::panes::share::TO);
    h.press(code(KeyCode::Tab)).await;
    assert_eq!(h.app.pane, vault::TO);
}

#[tokio::test]
async fn small_terminal_gets_a_message_and_resize_redraws() {
    let mut h = Harness::unlocked().await;
    let small = h.screen(60, 20, &[]);
    assert!(small.contains("Terminal too small") && small.contains("need 80×24"));
    insta::assert_snapshot!("terminal_too_small", small);
    assert!(h.screen(80, 24, &[]).contains("All items"));
}

#[tokio::test]
async fn themes_dark_light_and_no_color() {
    for (name, theme) in [
        ("dark", Theme::named("dark", false)),
        ("light", Theme::named("light", false)),
        ("no_color", Theme::named("dark", true)),
    ] {
        let mut h = Harness::with_theme(true, theme).await;
        h.keys(PASSWORD).await;
        h.press(code(KeyCode::Enter)).await;
        let t = h.render(80, 24);
        let buf = t.backend().buffer();
        // Tabs, the selected row, the message line and the status bar.
        let runs = style_runs(buf, &[0, 2, 22, 23]);
        if name == "no_color" {
            assert!(!runs.contains("Rgb"), "no colour with NO_COLOR");
        }
        insta::assert_snapshot!(format!("theme_{name}"), runs);
    }
}

// ------------------------------------------------- with a sync server

/// The in-process test server, started on a random port with an in-memory store.
struct Server;

impl Server {
    async fn start() -> crate::engine::test_server::TestServer {
        crate::engine::test_server::TestServer::start("memory").await
    }
}

/// An emergency access request pending against the account: the devices
/// pane warns the owner (and lists the grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devices_pane_warns_of_a_pending_emergency_request() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    let mut v = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    v.register(&server.url, "owner@example.org", "laptop")
        .await
        .expect("register");
    let mut contact = Session::init(
        &h._tmp.path().join("contact"),
        SecretString::from(PASSWORD.to_owned()),
        KdfParams::FLOOR,
    )
    .await
    .expect("init");
    contact
        .register(&server.url, "contact@example.org", "desk")
        .await
        .expect("register");
    v.emergency_grant(
        "contact@example.org",
        crate::engine::emergency::EmergencyRole::View,
        7 * 86_400,
        None,
    )
    .await
    .expect("grant");
    v.close().await;
    contact
        .emergency_request("owner@example.org")
        .await
        .expect("request");
    contact.close().await;

    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(key('3')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("contact@example.org asked for emergency access"),
        "{text}"
    );
    // The notice, with the time left (which moves) left out.
    let notice: String = text
        .lines()
        .filter(|l| l.contains("mergency") || l.contains("openk emergency deny"))
        .map(|l| {
            let l = l.trim_end();
            match (l.find("opens in "), l.find(" unless")) {
                (Some(a), Some(b)) if a < b => format!("{}opens in …{}\n", &l[..a], &l[b..]),
                _ => format!("{l}\n"),
            }
        })
        .collect();
    insta::assert_snapshot!("devices_pane_emergency_request", notice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_in_devices_pane_renames_revokes_and_syncs_in_the_background() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    let mut v = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    v.register(&server.url, "tui@example.org", "laptop")
        .await
        .expect("register");
    let kit = v.emergency_kit();
    let secret_key = kit
        .lines()
        .find_map(|l| l.strip_prefix("Secret Key:"))
        .map(|s| s.trim().to_owned())
        .expect("secret key");
    v.close().await;
    let phone = crate::engine::remote::login(
        &h._tmp.path().join("phone"),
        &server.url,
        "tui@example.org",
        SecretString::from(PASSWORD.to_owned()),
        &secret_key,
        false,
        "phone",
    )
    .await
    .expect("second device");
    phone.close().await;

    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Main));
    assert_eq!(h.app.sync, super::worker::SyncState::Synced);

    h.press(key('3')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("laptop  (this device)") && text.contains("phone"),
        "{text}"
    );
    assert!(text.contains("Synced"), "{text}");
    let phone_at = |h: &Harness| {
        h.app
            .devices()
            .list
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .and_then(|l| l.iter().position(|d| !d.current))
    };
    while Some(h.app.devices().sel) != phone_at(&h) {
        h.press(key('j')).await;
    }
    h.press(key('e')).await;
    // The rename field has the readline keys too.
    h.press(ctrl('a')).await;
    h.keys("my ").await;
    h.press(ctrl('e')).await;
    h.press(ctrl('w')).await;
    h.press(ctrl('u')).await;
    h.keys("old phone").await;
    h.press(code(KeyCode::Enter)).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("old phone") && text.contains("Device renamed"),
        "{text}"
    );
    h.press(key('d')).await;
    assert!(h.screen(100, 30, &[]).contains("Revoke \"old phone\"?"));
    h.press(key('y')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("Device revoked") && !text.contains("old phone"),
        "{text}"
    );

    // A write syncs in the background: a new device sees it.
    h.press(key('1')).await;
    h.press(key('f')).await;
    assert_eq!(h.app.sync, super::worker::SyncState::Synced);
    let mut tablet = crate::engine::remote::login(
        &h._tmp.path().join("tablet"),
        &server.url,
        "tui@example.org",
        SecretString::from(PASSWORD.to_owned()),
        &secret_key,
        false,
        "tablet",
    )
    .await
    .expect("third device");
    let favourites = tablet
        .entries()
        .await
        .expect("entries")
        .0
        .iter()
        .filter(|e| e.overview.favorite)
        .count();
    // GitHub was the only favourite; `f` on it (selected) unmarked it.
    assert_eq!(favourites, 0);
}

// ------------------------------------- what the user typed is never lost

fn form(h: &Harness) -> &super::app::Form {
    match h.app.popups.last() {
        Some(Popup::Form(f)) => f,
        other => panic!("the form is open, not {other:?}"),
    }
}

fn row_value(h: &Harness, label: &str) -> String {
    form(h)
        .rows
        .iter()
        .find(|r| r.label == label)
        .map(|r| r.value.as_str().to_owned())
        .unwrap_or_else(|| panic!("no {label} row"))
}

async fn go_to_row(h: &mut Harness, label: &str) {
    for _ in 0..30 {
        if form(h).rows[form(h).sel].label == label {
            return;
        }
        h.press(code(KeyCode::Tab)).await;
    }
    panic!("no {label} row");
}

#[tokio::test]
async fn a_validation_error_keeps_every_field_and_focuses_the_bad_one() {
    let mut h = Harness::unlocked().await;
    h.press(key('n')).await;
    h.press(code(KeyCode::Enter)).await; // login
    h.keys("Bank").await;
    h.press(code(KeyCode::Enter)).await; // Enter on a one-line field: next field
    h.keys("bob").await;
    h.press(code(KeyCode::Down)).await;
    h.press(ctrl('g')).await;
    h.press(code(KeyCode::Enter)).await;
    let generated = row_value(&h, "password");
    assert_eq!(generated.chars().count(), PasswordLen::DEFAULT);
    go_to_row(&mut h, "tags").await;
    h.keys("my tag").await;
    h.press(ctrl('s')).await;
    // Still open, everything kept, the cursor on the tags, the reason shown.
    let f = form(&h);
    assert_eq!(f.rows[f.sel].label, "tags");
    assert!(
        f.error.as_deref().is_some_and(|e| e.contains("space")),
        "{:?}",
        f.error
    );
    assert_eq!(row_value(&h, "name"), "Bank");
    assert_eq!(row_value(&h, "username"), "bob");
    assert_eq!(row_value(&h, "password"), generated);
    assert_eq!(row_value(&h, "tags"), "my tag");
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("contains a space"), "{text}");
    // Fixing the field saves everything.
    h.press(ctrl('w')).await;
    h.press(code(KeyCode::Backspace)).await;
    h.keys("-tag").await;
    h.press(ctrl('s')).await;
    assert!(h.app.popups.is_empty(), "saved and closed");
    let item = h.app.vault().detail.clone().expect("saved item");
    assert_eq!(item.overview.tags, ["my-tag"]);
    assert_eq!(
        item.field(label::PASSWORD).map(|f| f.value.expose()),
        Some(generated.as_str())
    );
}

/// The generator's default length (the form test above checks it is used).
struct PasswordLen;
impl PasswordLen {
    const DEFAULT: usize = 20;
}

#[tokio::test]
async fn an_engine_refusal_keeps_the_form_open_on_the_field_it_names() {
    let mut h = Harness::unlocked().await;
    h.press(key('e')).await;
    h.press(code(KeyCode::Down)).await;
    h.keys("-2").await;
    // Saved, but the engine says no before the worker runs it.
    h.app.handle_event(&Event::Key(ctrl('s')));
    assert!(form(&h).saving);
    h.app.outbox.clear();
    h.app.on_reply(Reply::Rejected(
        "the TOTP secret is not valid: bad base32".into(),
    ));
    let f = form(&h);
    assert!(!f.saving);
    assert_eq!(f.rows[f.sel].label, "totp");
    assert_eq!(
        f.error.as_deref(),
        Some("the TOTP secret is not valid: bad base32")
    );
    assert_eq!(row_value(&h, "username"), "alice-2");
    // Keys work again and the next save goes through.
    h.press(ctrl('s')).await;
    assert!(h.app.popups.is_empty());
    assert_eq!(
        h.app
            .vault()
            .detail
            .as_ref()
            .and_then(|d| d.field(label::USERNAME))
            .map(|f| f.value.expose().to_owned())
            .as_deref(),
        Some("alice-2")
    );
}

#[tokio::test]
async fn discarding_a_changed_form_asks_and_no_keeps_everything() {
    let mut h = Harness::unlocked().await;
    // An unchanged form closes at once, with Esc or Ctrl-C… (Ctrl-C quits).
    h.press(key('e')).await;
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.popups.is_empty());
    h.press(key('n')).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.popups.is_empty());
    // …a changed one asks.
    h.press(key('e')).await;
    h.press(code(KeyCode::Down)).await;
    h.keys("-typed").await;
    h.press(code(KeyCode::Esc)).await;
    assert!(matches!(h.app.popups.last(), Some(Popup::Discard)));
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("Throw away your changes"), "{text}");
    insta::assert_snapshot!("discard_confirm", text);
    h.press(key('n')).await;
    assert_eq!(row_value(&h, "username"), "alice-typed");
    assert_eq!(form(&h).rows[form(&h).sel].label, "username");
    h.press(ctrl('c')).await;
    assert!(
        !h.app.quit,
        "Ctrl-C on a changed form asks instead of quitting"
    );
    assert!(matches!(h.app.popups.last(), Some(Popup::Discard)));
    h.press(code(KeyCode::Esc)).await;
    assert_eq!(row_value(&h, "username"), "alice-typed");
    // Over the generator too.
    go_to_row(&mut h, "password").await;
    h.press(ctrl('g')).await;
    h.press(ctrl('c')).await;
    assert!(matches!(h.app.popups.last(), Some(Popup::Discard)));
    h.press(code(KeyCode::Enter)).await; // Enter keeps editing
    assert_eq!(row_value(&h, "username"), "alice-typed");
    h.press(code(KeyCode::Esc)).await;
    h.press(key('y')).await;
    assert!(h.app.popups.is_empty());
    assert_eq!(
        h.app
            .vault()
            .detail
            .as_ref()
            .and_then(|d| d.field(label::USERNAME))
            .map(|f| f.value.expose().to_owned())
            .as_deref(),
        Some("alice"),
        "nothing was saved"
    );
    // Ctrl-C with an unchanged form open quits.
    h.press(key('e')).await;
    h.press(ctrl('c')).await;
    assert!(h.app.quit);
}

#[tokio::test]
async fn notes_are_multi_line_in_the_form_and_saved_with_newlines() {
    let mut h = Harness::unlocked().await;
    h.press(key('n')).await;
    h.press(key('j')).await; // note
    h.press(code(KeyCode::Enter)).await;
    h.keys("Plan").await;
    h.press(code(KeyCode::Enter)).await;
    assert_eq!(form(&h).rows[form(&h).sel].label, "notes");
    h.keys("line one").await;
    h.press(code(KeyCode::Enter)).await;
    h.keys("line two").await;
    h.press(code(KeyCode::Enter)).await;
    h.keys("line three").await;
    // Up moves between the note's lines, and out of it at the first.
    h.press(code(KeyCode::Up)).await;
    h.press(code(KeyCode::Up)).await;
    h.press(ctrl('e')).await;
    h.keys("!").await;
    assert_eq!(row_value(&h, "notes"), "line one!\nline two\nline three");
    assert_eq!(form(&h).rows[form(&h).sel].label, "notes");
    let text = h.screen(80, 24, &[]);
    let rows: Vec<&str> = text.lines().collect();
    let at = rows
        .iter()
        .position(|l| l.contains("notes  line one!"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(rows[at + 1].contains("line two") && rows[at + 2].contains("line three"));
    insta::assert_snapshot!("form_multiline_notes", text);
    h.press(code(KeyCode::Up)).await;
    assert_eq!(form(&h).rows[form(&h).sel].label, "name");
    // Ctrl-S saves from any field.
    h.press(ctrl('s')).await;
    assert!(h.app.popups.is_empty());
    let item = h.app.vault().detail.clone().expect("saved");
    assert_eq!(
        item.field(label::NOTES).map(|f| f.value.expose()),
        Some("line one!\nline two\nline three")
    );
}

#[tokio::test]
async fn readline_keys_work_in_the_unlock_field() {
    let mut h = Harness::new(true).await;
    h.keys("horse battery staple").await;
    h.press(ctrl('a')).await;
    h.keys("correct ").await;
    h.press(ctrl('e')).await;
    h.keys(" junk words").await;
    h.press(ctrl('w')).await;
    h.press(ctrl('w')).await;
    h.press(code(KeyCode::Backspace)).await;
    h.press(code(KeyCode::Home)).await;
    h.keys("xy").await;
    h.press(ctrl('u')).await;
    h.press(code(KeyCode::End)).await;
    h.keys("??").await;
    h.press(code(KeyCode::Left)).await;
    h.press(code(KeyCode::Left)).await;
    h.press(ctrl('k')).await;
    h.keys("Z").await;
    h.press(code(KeyCode::Left)).await;
    h.press(code(KeyCode::Delete)).await;
    let Screen::Unlock(s) = &h.app.screen else {
        panic!("unlock screen")
    };
    assert_eq!(s.input.as_str(), PASSWORD);
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Main), "unlocked");
}

#[tokio::test]
async fn readline_keys_work_in_form_search_and_palette_fields() {
    let mut h = Harness::unlocked().await;
    h.press(key('e')).await;
    h.press(code(KeyCode::Down)).await; // username "alice"
    h.press(ctrl('a')).await;
    h.keys("x-").await;
    h.press(code(KeyCode::End)).await;
    h.keys(" smith").await;
    h.press(ctrl('w')).await;
    assert_eq!(row_value(&h, "username"), "x-alice ");
    h.press(code(KeyCode::Backspace)).await;
    h.press(code(KeyCode::Home)).await;
    h.press(code(KeyCode::Right)).await;
    h.press(code(KeyCode::Right)).await;
    h.press(ctrl('u')).await;
    assert_eq!(row_value(&h, "username"), "alice");
    h.press(code(KeyCode::Right)).await;
    h.press(ctrl('k')).await;
    h.keys("bert").await;
    h.press(code(KeyCode::Left)).await;
    h.press(code(KeyCode::Delete)).await;
    h.press(ctrl('e')).await;
    h.keys("o").await;
    assert_eq!(row_value(&h, "username"), "abero");
    // The cursor is drawn where it is: the character under it reversed.
    h.press(code(KeyCode::Left)).await;
    let t = h.render(80, 24);
    let buf = t.backend().buffer();
    let reversed: String = buf
        .content()
        .iter()
        .filter(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED))
        .map(ratatui::buffer::Cell::symbol)
        .collect();
    assert!(reversed.ends_with('o'), "{reversed:?}");
    h.press(ctrl('s')).await;
    assert_eq!(
        h.app
            .vault()
            .detail
            .as_ref()
            .and_then(|d| d.field(label::USERNAME))
            .map(|f| f.value.expose().to_owned())
            .as_deref(),
        Some("abero")
    );
    // The search box.
    h.press(key('/')).await;
    h.keys("xx gitlab").await;
    h.press(ctrl('a')).await;
    h.press(code(KeyCode::Delete)).await;
    h.press(code(KeyCode::Delete)).await;
    h.press(code(KeyCode::Delete)).await;
    assert_eq!(h.app.search().input.as_str(), "gitlab");
    assert_eq!(h.app.search().hits.len(), 1);
    h.press(ctrl('e')).await;
    h.press(ctrl('w')).await;
    assert!(h.app.search().input.is_empty());
    h.keys("lab").await;
    h.press(ctrl('u')).await;
    assert!(h.app.search().input.is_empty());
    h.press(code(KeyCode::Esc)).await;
    // The palette.
    h.press(key(':')).await;
    h.keys("lock nowx").await;
    h.press(code(KeyCode::Backspace)).await;
    h.press(ctrl('a')).await;
    h.press(ctrl('k')).await;
    h.keys("sort").await;
    let Some(Popup::Palette { input, .. }) = h.app.popups.last() else {
        panic!("palette open")
    };
    assert_eq!(input.as_str(), "sort");
    h.press(code(KeyCode::Esc)).await;
}

// ------------------------------------------------------------ popups

/// Every cell of the body outside the popup's own area is the same with
/// and without the popup.
fn assert_only_popup_area_changes(h: &mut Harness, w: u16, ht: u16, what: &str) {
    let popups = std::mem::take(&mut h.app.popups);
    let base = h.render(w, ht).backend().buffer().clone();
    h.app.popups = popups;
    let with = h.render(w, ht).backend().buffer().clone();
    let r = h.app.areas().popup;
    assert!(r.width > 0 && r.height > 0, "{what}: the popup has an area");
    // The body: below the tabs, above the message line and the status bar.
    for y in 1..ht - 2 {
        for x in 0..w {
            if r.contains(ratatui::layout::Position::new(x, y)) {
                continue;
            }
            assert_eq!(
                base[(x, y)].symbol(),
                with[(x, y)].symbol(),
                "{what}: cell ({x}, {y}) outside the popup {r:?} changed:\n{}",
                h.screen(w, ht, &[])
            );
        }
    }
}

#[tokio::test]
async fn every_popup_clears_only_its_own_area() {
    let mut h = Harness::unlocked().await;
    for (keys, what) in [
        (vec![key('n')], "kind picker"),
        (vec![key('n'), code(KeyCode::Enter)], "new item form"),
        (
            vec![key('e'), code(KeyCode::Tab), code(KeyCode::Tab), ctrl('g')],
            "generator",
        ),
        (vec![key('e'), key('x'), code(KeyCode::Esc)], "discard"),
        (vec![key('?')], "help"),
        (vec![key(':')], "palette"),
        (vec![key('d')], "confirm"),
        (vec![key('H')], "history"),
    ] {
        for k in keys {
            h.press(k).await;
        }
        assert!(!h.app.popups.is_empty(), "{what} open");
        for (w, ht) in [(80, 24), (120, 40)] {
            assert_only_popup_area_changes(&mut h, w, ht, what);
        }
        h.app.popups.clear();
    }
    h.press(key(':')).await;
    h.keys("passwd").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.popups.last(), Some(Popup::Passwd(_))));
    assert_only_popup_area_changes(&mut h, 80, 24, "passwd");
}

#[tokio::test]
async fn a_wide_character_under_a_popup_edge_does_not_eat_its_border() {
    let mut h = Harness::unlocked().await;
    let mut v = Vec::new();
    for i in 0..20 {
        v.push(login(&format!("abcd🔑 item {i:02}"), "u", "p"));
    }
    h.worker.handle(Request::Lock).await;
    let mut vault = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    vault.add_many(v).await.expect("add");
    vault.close().await;
    h.app.lock();
    h.pump().await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    let mut t = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    t.draw(|f| ui::draw(f, &h.app)).expect("draw");
    h.press(key('d')).await;
    t.draw(|f| ui::draw(f, &h.app)).expect("draw");
    let r = h.app.areas().popup;
    let buf = t.backend().buffer();
    for y in r.top()..r.bottom() {
        let edge = buf[(r.x, y)].symbol();
        assert!(
            ["╭", "│", "╰"].contains(&edge),
            "row {y}: the popup's left border is {edge:?}:\n{}",
            t.backend()
        );
    }
}

// ------------------------------------------------ the palette's commands

async fn palette(h: &mut Harness, name: &str) {
    h.press(key(':')).await;
    h.keys(name).await;
    let first = super::app::palette_matches(name).first().copied();
    assert_eq!(first.map(super::app::PaletteItem::name), Some(name));
    h.press(code(KeyCode::Enter)).await;
}

fn message(h: &Harness) -> String {
    h.app
        .message
        .as_ref()
        .map(|(m, _, _)| m.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn palette_purge_asks_then_destroys_a_trashed_item() {
    let mut h = Harness::unlocked().await;
    palette(&mut h, "purge").await;
    assert!(h.app.popups.is_empty());
    assert!(
        message(&h).contains("Only an item in the trash"),
        "{}",
        message(&h)
    );
    h.press(key('d')).await;
    h.press(key('y')).await;
    h.press(key('h')).await;
    for _ in 0..3 {
        h.press(key('j')).await;
    }
    assert_eq!(h.app.vault().filter, Filter::Trash);
    h.press(key('l')).await;
    palette(&mut h, "purge").await;
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("Purge for good?"), "{text}");
    h.press(key('n')).await;
    assert_eq!(h.app.vault().shown.len(), 1);
    palette(&mut h, "purge").await;
    h.press(key('y')).await;
    assert!(h.app.vault().shown.is_empty());
    assert_eq!(h.app.vault().entries.len(), 4);
    assert!(message(&h).contains("Purged \"GitHub\""), "{}", message(&h));
}

#[tokio::test]
async fn palette_passwd_checks_the_current_password_and_changes_it() {
    let mut h = Harness::unlocked().await;
    palette(&mut h, "passwd").await;
    assert!(matches!(h.app.popups.last(), Some(Popup::Passwd(_))));
    let new = "a-whole-new-set-of-Fq7zw";
    h.keys("not the password").await;
    h.press(code(KeyCode::Enter)).await;
    h.keys(new).await;
    h.press(code(KeyCode::Enter)).await;
    h.keys("a-whole-new-set-of-Fq7z").await;
    h.press(code(KeyCode::Enter)).await;
    let Some(Popup::Passwd(p)) = h.app.popups.last() else {
        panic!("passwd open")
    };
    assert!(p.error.as_deref().is_some_and(|e| e.contains("differ")));
    h.keys(new).await;
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("Strength") && !text.contains(new), "{text}");
    // The meter's numbers belong to the strength estimator, not to this popup.
    let without_meter: Vec<&str> = text.lines().filter(|l| !l.contains("Strength")).collect();
    insta::assert_snapshot!("passwd_popup", without_meter.join("\n"));
    h.press(code(KeyCode::Enter)).await;
    // The wrong current password: asked again, the new ones kept.
    let Some(Popup::Passwd(p)) = h.app.popups.last() else {
        panic!("passwd still open")
    };
    assert!(
        p.error.as_deref().is_some_and(|e| e.contains("wrong")),
        "{:?}",
        p.error
    );
    assert_eq!((p.on, p.fields[0].as_str()), (0, ""));
    assert_eq!(p.fields[1].as_str(), new);
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(h.app.popups.is_empty());
    assert!(
        message(&h).contains("Master password changed"),
        "{}",
        message(&h)
    );
    // Only the new password opens the vault now.
    h.press(key('L')).await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Unlock(_)));
    h.keys(new).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Main));
}

#[tokio::test]
async fn palette_login_logout_and_verify_need_a_server() {
    let mut h = Harness::unlocked().await;
    for name in ["login", "logout", "sync --verify"] {
        palette(&mut h, name).await;
        assert!(
            message(&h).contains("local only") && message(&h).contains("--server URL"),
            "{name}: {}",
            message(&h)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn palette_logout_login_and_sync_verify_run_through_the_engine() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    let mut v = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    v.register(&server.url, "palette@example.org", "laptop")
        .await
        .expect("register");
    v.close().await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    assert_eq!(h.app.sync, super::worker::SyncState::Synced);

    palette(&mut h, "sync --verify").await;
    assert!(message(&h).starts_with("Verified"), "{}", message(&h));
    assert!(message(&h).contains("5 item(s)"), "{}", message(&h));

    palette(&mut h, "logout").await;
    assert!(message(&h).starts_with("Logged out"), "{}", message(&h));
    assert_eq!(h.app.sync, super::worker::SyncState::LoggedOut);
    palette(&mut h, "logout").await;
    assert!(
        message(&h).contains("Already logged out"),
        "{}",
        message(&h)
    );
    palette(&mut h, "sync --verify").await;
    assert!(message(&h).contains("Logged out"), "{}", message(&h));

    palette(&mut h, "login").await;
    assert!(message(&h).starts_with("Logged in to"), "{}", message(&h));
    assert_eq!(h.app.sync, super::worker::SyncState::Synced);
    assert!(h.app.busy.is_none());
}

#[tokio::test]
async fn wide_characters_keep_the_kind_column_in_place() {
    let mut h = Harness::new(true).await;
    let mut v = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    let names = [
        "🔑 keys",
        "👨\u{200d}👩\u{200d}👧 family",
        "日本語のアカウント名がとても長い",
        "café ☕ and a long tail of words",
    ];
    v.add_many(names.iter().map(|n| login(n, "u", "p")).collect())
        .await
        .expect("add");
    v.close().await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    for (w, ht) in [(80, 24), (120, 40)] {
        let t = h.render(w, ht);
        let buf = t.backend().buffer();
        let list = h.app.areas().list;
        let right = list.x + list.width - 1;
        for y in list.y + 1..list.y + 1 + u16::try_from(h.app.vault().shown.len()).expect("rows") {
            let kind: String = (right - 5..right).map(|x| buf[(x, y)].symbol()).collect();
            assert!(
                ["login", "  api", " card", " note"].contains(&kind.as_str()),
                "{w}x{ht} row {y}: the kind column reads {kind:?}:\n{}",
                t.backend()
            );
            assert_eq!(buf[(right, y)].symbol(), "│", "{w}x{ht} row {y}: border");
        }
    }
}

#[tokio::test]
async fn the_generator_hint_follows_its_mode() {
    let mut h = Harness::unlocked().await;
    h.press(key('e')).await;
    go_to_row(&mut h, "password").await;
    h.press(ctrl('g')).await;
    let text = h.screen(80, 24, &["hunter2-secret"]);
    assert!(text.contains("←→ length · Tab words"), "{text}");
    h.press(code(KeyCode::Tab)).await;
    let text = h.screen(80, 24, &["hunter2-secret"]);
    assert!(
        text.contains("←→ words · Tab password") && text.contains("Tab password"),
        "{text}"
    );
    assert!(!text.contains("Tab words"), "{text}");
    h.press(code(KeyCode::Tab)).await;
    assert!(h.screen(80, 24, &[]).contains("Tab words"));
}

#[tokio::test]
async fn the_conflict_banner_shows_the_merge_note() {
    let mut h = Harness::unlocked().await;
    let note =
        "Both devices changed the password; this device's value was kept and the other is in v1";
    let item = h.app.vault_mut().detail.as_mut().expect("details");
    item.overview.conflict = Some(crate::engine::model::SyncConflict {
        fields: vec!["password".into()],
        other_version: 1,
        note: note.into(),
        at: 0,
    });
    let text = h.screen(120, 40, &[]);
    assert!(text.contains("! conflict: password (H shows v1)"), "{text}");
    // Wrapped over lines, every word of the note is there.
    let shown: String = text
        .lines()
        .map(|l| l.rsplit('│').nth(1).unwrap_or("").trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(shown.contains(note), "{shown}\n{text}");
}

#[tokio::test]
async fn the_idle_lock_says_when_it_discarded_a_changed_form() {
    let mut h = Harness::unlocked().await;
    h.press(key('e')).await;
    h.keys("-x").await;
    h.clock.advance(Duration::from_secs(301));
    h.app.tick();
    assert!(matches!(h.app.screen, Screen::Unlock(_)));
    assert!(
        message(&h).contains("unsaved form was discarded"),
        "{}",
        message(&h)
    );
}

// ------------------------------------- a silent server, other writers

/// A server that accepts connections and never answers (the connections
/// are held open until the process ends).
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    url
}

/// Registers the harness's vault (device "laptop") and returns the Secret Key.
async fn register(h: &Harness, url: &str) -> String {
    let mut v = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    v.register(url, "tui@example.org", "laptop")
        .await
        .expect("register");
    let secret_key = v
        .emergency_kit()
        .lines()
        .find_map(|l| l.strip_prefix("Secret Key:"))
        .map(|s| s.trim().to_owned())
        .expect("secret key");
    v.close().await;
    secret_key
}

/// Moves the vault's server to `url` (as if the server moved there).
async fn point_at(dir: &std::path::Path, url: &str) {
    let mut v = Session::unlock(dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    v.move_server_for_test(url).await.expect("set server");
    v.close().await;
}

/// Another writer on the same vault directory (a CLI in another terminal).
async fn other_writer(dir: &std::path::Path) -> Session {
    Session::unlock(dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("second handle")
}

fn set_fields(fields: &[(&str, &str, FieldKind)]) -> crate::engine::ItemPatch {
    crate::engine::ItemPatch {
        set_fields: fields
            .iter()
            .map(|(l, v, k)| Field::new(l, *v, *k))
            .collect(),
        ..crate::engine::ItemPatch::default()
    }
}

impl Harness {
    /// Serves requests, the worker's own messages and its refresh tick
    /// until `done` holds; panics after 15 s.
    async fn wait_until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let start = std::time::Instant::now();
        loop {
            self.pump().await;
            if done(&self.app) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}; screen:\n{}",
                self.screen(100, 30, &SECRETS)
            );
            let next = tokio::time::timeout(Duration::from_millis(100), self.own.recv()).await;
            let req = match next {
                Ok(Some(r)) => r,
                _ => Request::Refresh,
            };
            for reply in self.worker.handle(req).await {
                self.app.on_reply(reply);
            }
        }
    }

    fn last_copy(&self) -> String {
        self.copies
            .lock()
            .expect("copies")
            .last()
            .map(|(v, _)| v.clone())
            .unwrap_or_default()
    }

    fn detail_field(&self, l: &str) -> Option<String> {
        self.app
            .vault()
            .detail
            .as_ref()
            .and_then(|d| d.field(l))
            .map(|f| f.value.expose().to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_never_holds_unlock_copy_reveal_or_edit_and_esc_cancels_the_sync() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    point_at(&h.dir, &silent_server()).await;
    // Nothing here may wait for the network job: it never ends by itself.
    h.wait_for_network = false;

    let start = std::time::Instant::now();
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(matches!(h.app.screen, Screen::Main), "unlocked");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(h.app.sync, super::worker::SyncState::Syncing);
    assert!(h.worker.is_busy(), "the sync runs in the background");
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("syncing…") && text.contains("GitHub"),
        "{text}"
    );

    // Copy, reveal, favourite and edit answer while the sync hangs.
    h.press(key('c')).await;
    assert_eq!(h.last_copy(), "hunter2-secret");
    h.press(key('r')).await;
    assert!(
        h.screen(100, 30, &["hunter2-secret"])
            .contains("hunter2-secret")
    );
    h.press(key('r')).await;
    h.press(key('f')).await;
    assert!(h.screen(100, 30, &[]).contains("Saved GitHub"));
    assert_eq!(
        h.app
            .vault()
            .entries
            .iter()
            .filter(|e| e.overview.favorite)
            .count(),
        0
    );
    h.press(key('e')).await;
    assert!(
        matches!(h.app.popups.last(), Some(Popup::Form(_))),
        "edit form"
    );
    h.keys("X").await;
    h.press(ctrl('s')).await;
    assert!(h.screen(100, 30, &[]).contains("Saved GitHubX"));
    assert!(h.worker.is_busy(), "still waiting for the server");

    // Silence for a while: the status bar says so, truthfully.
    h.clock.advance(Duration::from_secs(9));
    let text = h.screen(100, 30, &[]);
    assert!(text.contains("server not answering"), "{text}");
    assert!(!text.contains("synced"), "{text}");

    // Esc stops waiting: no sync in flight, the changes still pending.
    h.press(code(KeyCode::Esc)).await;
    assert!(!h.worker.is_busy());
    assert!(
        matches!(h.app.sync, super::worker::SyncState::Cancelled(n) if n > 0),
        "{:?}",
        h.app.sync
    );
    let text = h.screen(100, 30, &[]);
    assert!(
        !text.contains("syncing") && !text.contains("not answering") && !text.contains("synced"),
        "{text}"
    );
    assert!(text.contains("sync cancelled"), "{text}");
    // Everything still works after the cancel.
    h.press(key('c')).await;
    assert_eq!(h.last_copy(), "hunter2-secret");
    // A change from another process does not make it say "synced".
    let mut cli = other_writer(&h.dir).await;
    cli.add(login("From the CLI", "dave", "dave-pass"))
        .await
        .expect("cli add");
    cli.close().await;
    h.wait_until("the CLI's item", |a| {
        a.vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "From the CLI")
    })
    .await;
    assert!(
        matches!(h.app.sync, super::worker::SyncState::Cancelled(n) if n > 0),
        "{:?}",
        h.app.sync
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_reached_says_offline_never_synced() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    // Nothing listens on this port any more: connections are refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    point_at(&h.dir, &closed).await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.wait_until("the failed sync", |a| {
        !matches!(a.sync, super::worker::SyncState::Syncing)
    })
    .await;
    assert!(
        matches!(h.app.sync, super::worker::SyncState::Offline(_)),
        "{:?}",
        h.app.sync
    );
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("offline") && !text.contains("synced"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_background_sync_the_details_and_copy_show_the_other_devices_change() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    let secret_key = register(&h, &server.url).await;
    let mut phone = crate::engine::remote::login(
        &h._tmp.path().join("phone"),
        &server.url,
        "tui@example.org",
        SecretString::from(PASSWORD.to_owned()),
        &secret_key,
        false,
        "phone",
    )
    .await
    .expect("second device");

    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.wait_until("the first sync", |a| {
        a.sync == super::worker::SyncState::Synced
    })
    .await;
    // GitHub selected, its password revealed.
    h.press(key('r')).await;
    assert_eq!(h.detail_field(label::USERNAME).as_deref(), Some("alice"));
    assert!(
        h.screen(100, 30, &["hunter2-secret"])
            .contains("hunter2-secret")
    );

    // The phone changes the password and the username, and syncs.
    phone
        .sync(&Default::default())
        .await
        .expect("phone's first sync");
    let id = phone.resolve("GitHub", false).await.expect("github").id;
    phone
        .update(
            id,
            &set_fields(&[
                (label::USERNAME, "alice-renamed", FieldKind::Text),
                (label::PASSWORD, "new-Phone-Pass-9", FieldKind::Secret),
            ]),
        )
        .await
        .expect("edit on the phone");
    phone.sync(&Default::default()).await.expect("phone sync");
    phone.close().await;

    // The server's event starts a sync here; the details follow it.
    h.wait_until("the new username in the details", |a| {
        a.vault()
            .detail
            .as_ref()
            .and_then(|d| d.field(label::USERNAME))
            .is_some_and(|f| f.value.expose() == "alice-renamed")
    })
    .await;
    let text = h.screen(100, 30, &["new-Phone-Pass-9"]);
    assert!(
        text.contains("alice-renamed") && text.contains("new-Phone-Pass-9"),
        "the revealed field shows the new value:\n{text}"
    );
    assert!(!text.contains("hunter2-secret"), "{text}");
    h.press(key('c')).await;
    assert_eq!(h.last_copy(), "new-Phone-Pass-9");
    h.wait_until("synced", |a| a.sync == super::worker::SyncState::Synced)
        .await;
}

#[tokio::test]
async fn a_change_by_another_process_appears_without_locking() {
    let mut h = Harness::unlocked().await;
    assert_eq!(h.detail_field(label::USERNAME).as_deref(), Some("alice"));
    h.press(key('H')).await;
    assert!(matches!(h.app.popups.last(), Some(Popup::History(_))));

    // `openk edit` and `openk add` in another terminal.
    let mut cli = other_writer(&h.dir).await;
    let id = cli.resolve("GitHub", false).await.expect("github").id;
    cli.update(
        id,
        &set_fields(&[
            (label::USERNAME, "alice-cli", FieldKind::Text),
            (label::PASSWORD, "cli-Pass-3", FieldKind::Secret),
        ]),
    )
    .await
    .expect("cli edit");
    cli.add(login("Added by the CLI", "carol", "carol-pass"))
        .await
        .expect("cli add");
    cli.close().await;

    h.wait_until("the CLI's changes", |a| {
        a.vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "Added by the CLI")
            && a.vault()
                .detail
                .as_ref()
                .and_then(|d| d.field(label::USERNAME))
                .is_some_and(|f| f.value.expose() == "alice-cli")
    })
    .await;
    // The open history popup was re-read: it lists the new version.
    let Some(Popup::History(hist)) = h.app.popups.last() else {
        panic!("the history popup stays open");
    };
    assert_eq!(hist.versions.len(), 2, "{:?}", hist.versions);
    h.press(code(KeyCode::Esc)).await;
    h.press(key('c')).await;
    assert_eq!(h.last_copy(), "cli-Pass-3");
}

#[tokio::test]
async fn an_edit_saved_after_another_change_merges_and_flags_a_clash() {
    let mut h = Harness::unlocked().await;
    let mut cli = other_writer(&h.dir).await;
    let id = cli.resolve("GitHub", false).await.expect("github").id;

    // Opened on version 1; the CLI saves version 2 (username) meanwhile;
    // the form changes the name.
    h.press(key('e')).await;
    cli.update(
        id,
        &set_fields(&[(label::USERNAME, "alice-cli", FieldKind::Text)]),
    )
    .await
    .expect("cli edit");
    h.keys("Hub").await;
    h.press(ctrl('s')).await;
    let text = h.screen(100, 30, &[]);
    assert!(text.contains("merged with version 2"), "{text}");
    let item = cli.item(id).await.expect("item");
    assert_eq!(item.overview.name, "GitHubHub");
    assert_eq!(
        item.field(label::USERNAME).map(|f| f.value.expose()),
        Some("alice-cli"),
        "the other change is kept"
    );
    assert!(item.overview.conflict.is_none());

    // Both change the password: this edit is kept, the item is flagged and
    // the other password stays in history.
    h.wait_until("version 3 in the details", |a| {
        a.vault().detail.as_ref().is_some_and(|d| d.r.version == 3)
    })
    .await;
    h.press(key('e')).await;
    cli.update(
        id,
        &set_fields(&[(label::PASSWORD, "from-the-CLI-1", FieldKind::Secret)]),
    )
    .await
    .expect("cli edit");
    let Some(Popup::Form(form)) = h.app.popups.last() else {
        panic!("form");
    };
    let row = form
        .rows
        .iter()
        .position(|r| r.label == label::PASSWORD)
        .expect("password row");
    let sel = form.sel;
    for _ in sel..row {
        h.press(code(KeyCode::Down)).await;
    }
    h.keys("-tui").await;
    h.press(ctrl('s')).await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("password also changed elsewhere") && text.contains("version 4"),
        "{text}"
    );
    let item = cli.item(id).await.expect("item");
    assert_eq!(
        item.field(label::PASSWORD).map(|f| f.value.expose()),
        Some("hunter2-secret-tui")
    );
    let conflict = item.overview.conflict.clone().expect("flagged");
    assert_eq!(conflict.fields, vec!["password".to_owned()]);
    assert_eq!(conflict.other_version, 4);
    let other = cli.item_version(id, 4).await.expect("version 4");
    assert_eq!(
        other.field(label::PASSWORD).map(|f| f.value.expose()),
        Some("from-the-CLI-1"),
        "nothing lost"
    );
    cli.close().await;
}

#[tokio::test]
async fn a_name_another_item_has_in_any_case_is_a_field_error() {
    let mut h = Harness::unlocked().await;
    h.press(key('n')).await;
    h.press(code(KeyCode::Enter)).await; // login
    h.keys("GITHUB").await;
    h.press(code(KeyCode::Enter)).await;
    h.keys("someone").await;
    go_to_row(&mut h, "tags").await;
    h.press(ctrl('s')).await;
    let f = form(&h);
    assert_eq!(f.rows[f.sel].label, "name", "the cursor is on the name");
    assert!(
        f.error
            .as_deref()
            .is_some_and(|e| e.contains("already exists")),
        "{:?}",
        f.error
    );
    assert_eq!(row_value(&h, "username"), "someone");
    let text = h.screen(80, 24, &[]);
    assert!(text.contains("already exists"), "{text}");
}

#[test]
fn no_control_or_bidi_character_reaches_the_screen() {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    let mut buf = Buffer::empty(Rect::new(0, 0, 20, 1));
    buf.set_string(
        0,
        0,
        "a\u{202e}b\u{9b}c\u{2066}d",
        ratatui::style::Style::default(),
    );
    super::ui::scrub(&mut buf);
    let shown: String = buf.content.iter().map(|c| c.symbol()).collect();
    assert!(!shown.chars().any(crate::text::is_unsafe), "{shown:?}");
    assert!(shown.starts_with("abcd"), "{shown:?}");
}

// ------------------------------------------------------ vaults: move, copy

impl Harness {
    /// Unlocked, with a second vault "Team" holding one item ("Runbook").
    async fn with_team() -> (Self, uuid::Uuid) {
        let mut h = Self::new(true).await;
        let mut v = other_writer(&h.dir).await;
        let team = v.create_vault("Team").await.expect("create");
        let mut note = login("Runbook", "ops", "team-pass");
        note.tags = vec!["ops".into()];
        v.add_to(team, note).await.expect("add");
        v.close().await;
        h.keys(PASSWORD).await;
        h.press(code(KeyCode::Enter)).await;
        assert!(matches!(h.app.screen, Screen::Main), "unlocked");
        (h, team)
    }

    fn vault_of(&self, name: &str) -> Vec<uuid::Uuid> {
        self.app
            .vault()
            .entries
            .iter()
            .filter(|e| e.overview.name == name)
            .map(|e| e.r.vault_id)
            .collect()
    }
}

#[tokio::test]
async fn m_moves_the_selected_item_to_the_vault_picked() {
    let (mut h, team) = Harness::with_team().await;
    assert_eq!(
        h.app
            .vault()
            .detail
            .as_ref()
            .map(|d| d.overview.name.as_str()),
        Some("GitHub")
    );
    h.press(key('m')).await;
    let Some(Popup::VaultPick(p)) = h.app.popups.last() else {
        panic!("the picker is open: {:?}", h.app.popups)
    };
    // Its own vault is not offered for a move.
    let offered: Vec<&str> = p.choices.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(offered, ["Team"]);
    let text = h.screen(80, 24, &[]);
    insta::assert_snapshot!("vault_picker_move", text);
    assert_only_popup_area_changes(&mut h, 80, 24, "vault picker");
    h.press(code(KeyCode::Enter)).await;
    assert!(h.app.popups.is_empty());
    h.wait_until("the move is listed", |app| {
        app.vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "GitHub" && e.r.vault_id == team)
    })
    .await;
    assert_eq!(h.vault_of("GitHub"), [team], "moved, not copied");
    assert!(message(&h).contains("Moved GitHub"), "{}", message(&h));
    // The moved item stays selected, with its history.
    let detail = h.app.vault().detail.as_ref().expect("detail");
    assert_eq!(
        (detail.overview.name.as_str(), detail.r.vault_id),
        ("GitHub", team)
    );
    // Esc closes the picker without doing anything.
    h.press(key('m')).await;
    let Some(Popup::VaultPick(p)) = h.app.popups.last() else {
        panic!("the picker is open")
    };
    assert!(
        p.choices.iter().all(|c| c.id != Some(team)),
        "not its own vault"
    );
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.popups.is_empty());
    assert_eq!(h.vault_of("GitHub"), [team]);
}

#[tokio::test]
async fn capital_c_copies_into_a_vault_or_duplicates_in_its_own() {
    let (mut h, team) = Harness::with_team().await;
    let personal = h.vault_of("GitHub")[0];
    h.press(key('C')).await;
    let Some(Popup::VaultPick(p)) = h.app.popups.last() else {
        panic!("the picker is open")
    };
    let offered: Vec<&str> = p.choices.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(offered.len(), 2, "its own vault too, for a duplicate");
    assert_eq!(p.choices[0].id, Some(personal));
    // Its own vault: a duplicate named "GitHub (copy)".
    h.press(code(KeyCode::Enter)).await;
    h.wait_until("the duplicate", |app| {
        app.vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "GitHub (copy)")
    })
    .await;
    // Then into Team, under its own name; the original stays.
    h.app.with_vault(|v, app| {
        let id = v
            .entries
            .iter()
            .find(|e| e.overview.name == "GitHub")
            .map(|e| e.r.id)
            .expect("GitHub");
        v.jump_to(app, id);
    });
    h.pump().await;
    h.press(key('C')).await;
    h.press(key('j')).await;
    h.press(code(KeyCode::Enter)).await;
    h.wait_until("the copy in Team", |app| {
        app.vault()
            .entries
            .iter()
            .any(|e| e.overview.name == "GitHub" && e.r.vault_id == team)
    })
    .await;
    let mut vaults = h.vault_of("GitHub");
    vaults.sort();
    let mut want = vec![personal, team];
    want.sort();
    assert_eq!(vaults, want);
}

#[tokio::test]
async fn with_one_vault_m_says_there_is_nowhere_to_move() {
    let mut h = Harness::unlocked().await;
    h.press(key('m')).await;
    assert!(h.app.popups.is_empty());
    assert!(message(&h).contains("no other vault"), "{}", message(&h));
}

#[tokio::test]
async fn the_search_pane_filters_by_vault() {
    let (mut h, _team) = Harness::with_team().await;
    h.press(key('/')).await;
    h.keys("vault:team").await;
    let names: Vec<String> = h
        .app
        .search()
        .hits
        .iter()
        .filter_map(|id| h.app.entry(*id).map(|e| e.overview.name.clone()))
        .collect();
    assert_eq!(names, ["Runbook"]);
    h.press(ctrl('u')).await;
    h.keys("vault:nope").await;
    assert!(
        h.app
            .search()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no vault is named")),
        "{:?}",
        h.app.search().error
    );
    assert!(h.app.search().hits.is_empty());
}

// A named key is an item: listed with its type and version; its details
// show type, key id, versions (created, current, retired) and min version;
// its bytes are never on screen, revealed or not, and never copied.
#[tokio::test]
async fn named_keys_show_their_versions_and_never_their_bytes() {
    use crate::engine::named_keys::KeyType;
    use base64::Engine as _;
    let mut h = Harness::new(true).await;
    let (key_id, secrets) = {
        let mut s = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
            .await
            .expect("unlock");
        let info = s
            .create_named_key("Deploy signer", KeyType::Ed25519, None)
            .await
            .expect("create");
        for _ in 0..2 {
            s.rotate_named_key("Deploy signer", None)
                .await
                .expect("rotate");
        }
        s.retire_named_key_versions("Deploy signer", None, 2)
            .await
            .expect("retire");
        let k = s.use_named_key("Deploy signer", None).await.expect("key");
        let secrets: Vec<String> = k
            .export()
            .iter()
            .flat_map(|(_, b)| {
                [
                    base64::engine::general_purpose::STANDARD.encode(b),
                    data_encoding::HEXLOWER.encode(b),
                ]
            })
            .collect();
        s.close().await;
        (info.key_id.to_string(), secrets)
    };
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    // GitHub (a favourite) comes first, then the key.
    h.press(key('j')).await;
    let shown = |h: &mut Harness| {
        let text = h.screen(120, 40, &[]);
        for s in &secrets {
            assert!(!text.contains(&s[..16]), "key bytes on screen:\n{text}");
        }
        assert!(!text.contains("\"secret\""), "{text}");
        // The same width, so the layout shows as it is.
        text.replace(&key_id, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
    };
    let text = shown(&mut h);
    assert!(text.contains("Deploy signer"), "{text}");
    assert!(text.contains("min version  2"), "{text}");
    insta::assert_snapshot!("named_key_details", text);
    // To the key material field: revealing shows nothing, copying copies nothing.
    h.press(code(KeyCode::Right)).await;
    for _ in 0..4 {
        h.press(key('j')).await;
    }
    h.press(key('r')).await;
    h.press(key('y')).await;
    let text = shown(&mut h);
    assert!(text.contains("never shown"), "{text}");
    assert!(
        h.copies.lock().expect("copies").is_empty(),
        "nothing copied"
    );
    assert!(text.contains("never copied"), "{text}");
}

/// Every `YYYY-MM-DD hh:mm` on the screen as a fixed mask (the history's
/// times are the test's own clock).
fn mask_times(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let shape = "dddd-dd-dd dd:dd";
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let fits = i + shape.len() <= chars.len()
            && shape.chars().zip(&chars[i..]).all(|(s, c)| match s {
                'd' => c.is_ascii_digit(),
                s => s == *c,
            });
        if fits {
            out.push_str("YYYY-MM-DD hh:mm");
            i += shape.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_pane_shows_the_verified_security_history_and_a_tampered_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("server.db");
    let server =
        crate::engine::test_server::TestServer::start(&format!("sqlite://{}", db.display())).await;
    let mut h = Harness::new(true).await;
    let mut v = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    v.register(&server.url, "hist@example.org", "laptop")
        .await
        .expect("register");
    v.record_security(
        crate::engine::security::SecurityKind::KeyCreated,
        crate::engine::security::detail([("key", "deploy"), ("type", "ed25519")]),
    )
    .await;
    v.close().await;

    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(key('3')).await;
    h.press(key('H')).await;
    h.wait_until("the security history", |a| a.devices().history.is_some())
        .await;
    let text = mask_times(&h.screen(100, 30, &[]));
    assert!(
        text.contains("✓ Verified: 2 entries signed by this account's devices"),
        "{text}"
    );
    assert!(
        text.contains("device_added") && text.contains("key=deploy"),
        "{text}"
    );
    insta::assert_snapshot!("devices_security_history", text);

    // The server drops entry 1: the banner says so and names it.
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .busy_timeout(Duration::from_secs(10));
    let pool = sqlx::SqlitePool::connect_with(opts).await.expect("db");
    sqlx::query("DELETE FROM security_history WHERE seq = 1")
        .execute(&pool)
        .await
        .expect("delete");
    h.press(key('H')).await;
    assert!(h.screen(100, 30, &[]).contains("Devices"));
    h.press(key('H')).await;
    h.wait_until("the security history again", |a| {
        a.devices().history.is_some()
    })
    .await;
    let text = mask_times(&h.screen(100, 30, &[]));
    assert!(text.contains("✗ TAMPERED at entry 1"), "{text}");
    insta::assert_snapshot!("devices_security_history_tampered", text);
    drop(server);
}

/// The ids of the jobs the app has asked for and not sent yet.
fn queued_jobs(h: &Harness) -> Vec<&'static str> {
    h.app
        .outbox
        .iter()
        .filter_map(|r| match r {
            Request::Job(j) => Some(j.what),
            _ => None,
        })
        .collect()
}

fn tags_of(h: &Harness, name: &str) -> Vec<String> {
    h.app
        .vault()
        .entries
        .iter()
        .find(|e| e.overview.name == name)
        .map(|e| e.overview.tags.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn multi_select_tags_moves_and_trashes_in_one_bulk_call() {
    let mut h = Harness::unlocked().await;
    // `space` selects the row and moves down: GitHub, then GitLab.
    h.press(key(' ')).await;
    h.press(key(' ')).await;
    assert_eq!(h.app.vault().marked.len(), 2);
    let screen = h.screen(80, 24, &[]);
    assert!(screen.contains("2 selected"), "{screen}");
    insta::assert_snapshot!("vault_multi_select", screen);

    // T: tags for both, confirmed naming the count; one engine bulk call.
    h.press(key('T')).await;
    h.keys("audit").await;
    h.press(code(KeyCode::Enter)).await;
    let screen = h.screen(80, 24, &[]);
    assert!(screen.contains("2 selected item(s)"), "{screen}");
    insta::assert_snapshot!("bulk_confirm_tags", screen);
    h.app.handle_event(&Event::Key(key('y')));
    assert_eq!(queued_jobs(&h), vec!["bulk"]);
    h.pump().await;
    assert!(tags_of(&h, "GitHub").contains(&"audit".to_owned()));
    assert!(tags_of(&h, "GitLab").contains(&"audit".to_owned()));
    assert!(!tags_of(&h, "Stripe").contains(&"audit".to_owned()));
    assert!(h.app.vault().marked.is_empty(), "cleared once saved");

    // V selects a range from the anchor; Esc clears it.
    h.press(code(KeyCode::Home)).await;
    h.press(key('V')).await;
    h.press(key('j')).await;
    h.press(key('j')).await;
    h.press(key('V')).await;
    assert_eq!(h.app.vault().marked.len(), 3);
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.vault().marked.is_empty());

    // d with a selection: both to the trash in one bulk call.
    h.press(code(KeyCode::Home)).await;
    h.press(key(' ')).await;
    h.press(key(' ')).await;
    h.press(key('d')).await;
    assert!(
        h.screen(80, 24, &[])
            .contains("Move to the trash 2 selected item(s)")
    );
    h.app.handle_event(&Event::Key(key('y')));
    assert_eq!(queued_jobs(&h), vec!["bulk"]);
    h.pump().await;
    assert_eq!(h.app.vault().shown.len(), 3);

    // m with a selection: a folder (the first choice), then its name.
    h.press(code(KeyCode::Home)).await;
    h.press(key(' ')).await;
    h.press(key(' ')).await;
    h.press(key('m')).await;
    assert!(matches!(h.app.popups.last(), Some(Popup::VaultPick(_))));
    h.press(code(KeyCode::Enter)).await;
    h.keys("Moved").await;
    h.press(code(KeyCode::Enter)).await;
    h.app.handle_event(&Event::Key(key('y')));
    assert_eq!(queued_jobs(&h), vec!["bulk"]);
    h.pump().await;
    let in_folder = h
        .app
        .vault()
        .entries
        .iter()
        .filter(|e| e.overview.folder.as_deref() == Some("Moved"))
        .count();
    assert_eq!(in_folder, 2);
}
