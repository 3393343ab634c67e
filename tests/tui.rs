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
        let socket = format!("openk-tui-test-{}", std::process::id());
        let t = Self { socket };
        let env = format!(
            "env -i PATH=/usr/bin:/bin HOME={root} XDG_DATA_HOME={root}/.local/share \
             XDG_STATE_HOME={root}/.local/state XDG_CONFIG_HOME={root}/.config \
             OPENK_CONFIG=/dev/null TERM=xterm-256color OPENK_VAULT={vault}",
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
