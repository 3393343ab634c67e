//! The TUI in a real terminal: the `openk` binary runs in a detached tmux
//! session (100×30) on a test vault; the test types the password, searches,
//! copies (no display here, so the copy goes out as OSC 52), reads the
//! screen with `capture-pane`, and checks that no secret is on screen unless
//! revealed, that `q` exits 0 and that the terminal is restored (alternate
//! screen left, the shell's output visible again). Skipped, with a reason
//! printed, when tmux is not installed (`.ci/run` installs it).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{TestEnv, bin};

const SECRET: &str = "tui-Secret-Value-42";
const OTHER_SECRET: &str = "other-Secret-Value-7";

/// One private tmux server (its own socket) running one session.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn start(root: &Path, vault: &Path, command: &str) -> Self {
        // One tmux server per test: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let socket = format!("openk-tui-test-{}-{n}", std::process::id());
        let t = Self { socket };
        let env = format!(
            "env -i PATH=/usr/bin:/bin HOME={root} XDG_DATA_HOME={root}/.local/share \
             XDG_STATE_HOME={root}/.local/state XDG_CONFIG_HOME={root}/.config \
             OPENK_CONFIG=/dev/null TERM=xterm-256color OPENK_HOME={vault}",
            root = root.display(),
            vault = vault.display()
        );
        let shell = format!("{env} {command}; echo EXIT=$?; sleep 60");
        let out = t.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "-s",
            "tui",
            &shell,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    fn type_text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "tui", "-l", text])
                .status
                .success()
        );
    }

    /// Waits until the screen shows `text`; panics with the screen if not.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alternate_on(&self) -> String {
        let out = self.run(&["display-message", "-p", "-t", "tui", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn tui_in_a_real_terminal_unlocks_searches_copies_and_restores_the_terminal() {
    if !Tmux::available() {
        eprintln!("skipping tui_in_a_real_terminal…: tmux is not installed (.ci/run installs it)");
        return;
    }
    let env = TestEnv::init();
    env.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "alice",
        "--password",
        SECRET,
        "--url",
        "https://github.com",
    ]);
    env.add(&[
        "login",
        "--name",
        "Gmail",
        "--username",
        "bob",
        "--password",
        OTHER_SECRET,
    ]);
    let t = Tmux::start(env.root(), &env.vault(), &bin().display().to_string());

    // The unlock screen, with the password masked as it is typed.
    t.wait_for("OpenK is locked");
    assert_eq!(t.alternate_on(), "1", "the TUI uses the alternate screen");
    t.type_text(env.password());
    let screen = t.wait_for("•••••");
    assert!(
        !screen.contains(env.password()),
        "password echoed:\n{screen}"
    );
    t.keys(&["Enter"]);
    let screen = t.wait_for("Unlocked");
    assert!(
        screen.contains("GitHub") && screen.contains("Gmail"),
        "{screen}"
    );
    assert!(
        !screen.contains(SECRET) && !screen.contains(OTHER_SECRET),
        "{screen}"
    );

    // Search, jump to the item, copy its password.
    t.keys(&["/"]);
    t.type_text("gith");
    t.wait_for("1 of 1 matches");
    t.keys(&["Enter"]);
    t.wait_for("https://github.com");
    t.keys(&["c"]);
    let screen = t.wait_for("Copied the password of GitHub");
    assert!(screen.contains("clip "), "clipboard countdown:\n{screen}");
    assert!(
        !screen.contains(SECRET) && !screen.contains(OTHER_SECRET),
        "{screen}"
    );

    // Revealed, the password shows; hidden again, it is gone.
    t.keys(&["r"]);
    t.wait_for(SECRET);
    t.keys(&["r"]);
    let start = Instant::now();
    while t.screen().contains(SECRET) {
        assert!(start.elapsed() < Duration::from_secs(10), "still revealed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // q quits with status 0 and gives the terminal back.
    let quit_at = Instant::now();
    t.keys(&["q"]);
    let screen = t.wait_for("EXIT=0");
    assert!(
        quit_at.elapsed() < Duration::from_millis(1500),
        "quitting took {:?}",
        quit_at.elapsed()
    );
    assert_eq!(t.alternate_on(), "0", "alternate screen left");
    assert!(
        !screen.contains("Filters") && !screen.contains(SECRET),
        "{screen}"
    );
}

#[test]
fn openk_without_a_subcommand_and_without_a_terminal_prints_help_and_exits_2() {
    let env = TestEnv::init();
    let out = env.cmd(Vec::<&str>::new()).code(2);
    assert!(out.stderr.contains("Usage"), "{}", out.desc);
    assert!(out.stderr.contains("tui"), "{}", out.desc);
}

/// `openk serve` on a port, until dropped.
struct Serve(std::process::Child);

impl Serve {
    fn start(port: u16, dir: &Path) -> Self {
        let child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                &format!("sqlite://{}", dir.join("server.db").display()),
                "--auth-rate-limit",
                "100000",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn openk serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openk serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tui_against_a_server_that_never_answers_unlocks_at_once_and_esc_cancels_the_sync() {
    if !Tmux::available() {
        eprintln!("skipping tui_against_a_server…: tmux is not installed (.ci/run installs it)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let port = crate::util::free_port();
    let env = TestEnv::init();
    env.add(&["login", "--name", "GitHub", "--password", SECRET]);
    {
        let _server = Serve::start(port, tmp.path());
        env.cmd([
            "register",
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--email",
            "silent@example.org",
            "--device-name",
            "desk",
        ])
        .ok();
    }
    // The same address now accepts connections and never answers.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind the port");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });

    let t = Tmux::start(env.root(), &env.vault(), &bin().display().to_string());
    t.wait_for("OpenK is locked");
    t.type_text(env.password());
    t.wait_for("•••••");
    let unlock_at = Instant::now();
    t.keys(&["Enter"]);
    let screen = t.wait_for("GitHub");
    assert!(
        unlock_at.elapsed() < Duration::from_secs(2),
        "the vault pane took {:?}:\n{screen}",
        unlock_at.elapsed()
    );
    let screen = t.wait_for("syncing…");
    assert!(!screen.contains("synced"), "{screen}");

    // Esc stops waiting for the server; the status bar stops saying syncing.
    t.keys(&["Escape"]);
    let screen = t.wait_for("sync cancelled");
    assert!(
        !screen.contains("syncing") && !screen.contains("synced"),
        "{screen}"
    );

    // The TUI still answers; a new sync hangs again, and Ctrl-C still
    // quits at once.
    t.keys(&["c"]);
    t.wait_for("Copied the password of GitHub");
    t.keys(&["S"]);
    t.wait_for("syncing…");
    let quit_at = Instant::now();
    t.keys(&["C-c"]);
    t.wait_for("EXIT=0");
    assert!(
        quit_at.elapsed() < Duration::from_millis(1500),
        "quitting took {:?}",
        quit_at.elapsed()
    );
}

#[test]
fn tui_shows_a_cli_change_made_while_it_is_open() {
    if !Tmux::available() {
        eprintln!("skipping tui_shows_a_cli_change…: tmux is not installed (.ci/run installs it)");
        return;
    }
    let env = TestEnv::init();
    env.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "alice",
        "--password",
        SECRET,
    ]);
    let t = Tmux::start(env.root(), &env.vault(), &bin().display().to_string());
    t.wait_for("OpenK is locked");
    t.type_text(env.password());
    t.wait_for("•••••");
    t.keys(&["Enter"]);
    t.wait_for("alice");
    // `openk edit` and `openk add` in another terminal, while the TUI is open.
    env.cmd(["edit", "GitHub", "--username", "alice-from-cli"])
        .ok();
    env.add(&[
        "login",
        "--name",
        "Added-by-CLI",
        "--password",
        OTHER_SECRET,
    ]);
    t.wait_for("alice-from-cli");
    t.wait_for("Added-by-CLI");
    let quit_at = Instant::now();
    t.keys(&["q"]);
    t.wait_for("EXIT=0");
    assert!(
        quit_at.elapsed() < Duration::from_millis(1500),
        "quitting took {:?}",
        quit_at.elapsed()
    );
}

/// The share pane against a real server: an invitation another account
/// sent (with this account's fingerprint) is accepted, its items arrive,
/// and a share link to an item is made, copied and listed.
#[test]
fn tui_share_pane_accepts_an_invitation_and_makes_a_link() {
    if !Tmux::available() {
        eprintln!("skipping tui_share_pane…: tmux is not installed (.ci/run installs it)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let server = crate::sync::Serve::start(tmp.path());
    let me = crate::sync::registered(&server, "me@example.org");
    me.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "alice",
        "--password",
        SECRET,
    ]);
    let ana = crate::sync::registered(&server, "ana@example.org");
    ana.run(&["vault", "create", "Team"]);
    ana.add(&[
        "note",
        "--name",
        "Runbook",
        "--vault",
        "Team",
        "--notes",
        "restart it",
    ]);
    ana.run(&["sync"]);
    let fp = me.json(&["status"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    ana.run(&[
        "vault",
        "invite",
        "Team",
        "me@example.org",
        "--role",
        "editor",
        "--fingerprint",
        &fp,
    ]);

    let t = Tmux::start(me.root(), &me.vault(), &bin().display().to_string());
    t.wait_for("OpenK is locked");
    t.type_text(me.password());
    t.wait_for("•••••");
    t.keys(&["Enter"]);
    t.wait_for("alice");

    // The invitation, accepted after a question.
    t.keys(&["4"]);
    t.wait_for("Invitations (1)");
    t.keys(&["j"]);
    t.wait_for("a accepts");
    t.keys(&["a"]);
    t.wait_for("Accept the invitation?");
    t.keys(&["y"]);
    t.wait_for("Joined \"Team\"");
    t.wait_for("editor · ana@example.org");
    t.keys(&["1"]);
    t.wait_for("Runbook");

    // A link to GitHub, made from the vault pane and listed in the share pane.
    t.keys(&["Home"]);
    t.wait_for("alice");
    t.keys(&["p"]);
    t.wait_for("A link to \"GitHub\"");
    t.keys(&["Enter"]);
    let screen = t.wait_for("Share link for GitHub copied");
    assert!(!screen.contains(SECRET), "{screen}");
    t.keys(&["4"]);
    t.wait_for("Share links (1)");
    let links = me.json(&["share", "ls"]);
    assert_eq!(links[0]["item"], "GitHub", "{links}");

    t.keys(&["q"]);
    t.wait_for("EXIT=0");
    assert_eq!(t.alternate_on(), "0", "alternate screen left");
}
