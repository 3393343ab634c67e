//! `openk copy` and the clipboard helper, end to end.
//!
//! The display tests need an X server and `xclip` (`.ci/run` installs Xvfb
//! and xclip from Debian and exports DISPLAY); without them they print
//! `skipped: …` and pass. They share the one X clipboard, so they take
//! [`X_LOCK`] and run one at a time. The OSC 52 tests need `script` (a pty)
//! and `setsid` (no controlling terminal) from util-linux.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{self, TestEnv, have};

/// One display test at a time: the X clipboard is global.
static X_LOCK: Mutex<()> = Mutex::new(());

/// A secret no other process on the machine can hold by chance.
fn unique_secret(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("clip-{tag}-{}-{nanos}-Zq9", std::process::id())
}

/// The lock on the X clipboard, or None (and a `skipped:` line) when there
/// is no X server or no xclip.
fn x_display(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if std::env::var_os("DISPLAY").is_none_or(|d| d.is_empty()) {
        println!("skipped: {test}: DISPLAY is not set (.ci/run starts Xvfb)");
        return None;
    }
    if !have("xclip") {
        println!("skipped: {test}: xclip is not installed (.ci/run installs it)");
        return None;
    }
    let probe = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .stdin(Stdio::null())
        .output()
        .expect("run xclip -o");
    if String::from_utf8_lossy(&probe.stderr).contains("Can't open display") {
        println!("skipped: {test}: no X server answers on DISPLAY");
        return None;
    }
    Some(
        X_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// What the X clipboard holds now; None when it is empty (no owner, or no
/// text).
fn clipboard_text() -> Option<String> {
    let out = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .stdin(Stdio::null())
        .output()
        .expect("run xclip -o");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Another program takes the clipboard over (`xclip -i` forks and serves it
/// in the background until the next copy).
fn copy_with_xclip(text: &str) {
    let mut child = Command::new("xclip")
        .args(["-i", "-selection", "clipboard"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run xclip -i");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
        .expect("feed xclip");
    assert!(child.wait().expect("xclip -i").success(), "xclip -i failed");
}

/// Polls `f` every 50 ms until it is true or `limit` has passed.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of running (not zombie) display clipboard helpers of this test
/// binary's `openk` (the OSC 52 test's helper runs in parallel; it is not
/// one of them).
fn helpers() -> Vec<u32> {
    let bin = util::bin();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args
            .first()
            .is_some_and(|a| *a == bin.as_os_str().as_encoded_bytes());
        let hold =
            args.iter().any(|a| *a == b"__clipboard-hold") && args.iter().any(|a| *a == b"display");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(true);
        // Only helpers on our display: another test run may use another.
        let display = std::env::var("DISPLAY").unwrap_or_default();
        // (A helper is not dumpable: only root can read its environ; when
        // we cannot, count it.)
        let on_our_display = std::fs::read(entry.path().join("environ")).map_or(true, |env| {
            env.split(|b| *b == 0)
                .any(|v| v == format!("DISPLAY={display}").as_bytes())
        });
        if ours && hold && !zombie && on_our_display {
            pids.push(pid);
        }
    }
    pids
}

/// An `openk` command rebuilt to run under `wrapper` (e.g. `setsid -w`),
/// with the same environment, directory and arguments.
fn wrapped(env: &TestEnv, wrapper: &[&str], args: &[&str]) -> Command {
    let inner = env.cmd(args).into_command();
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..])
        .arg(util::bin())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn vault_with_login(secret: &str) -> TestEnv {
    let env = TestEnv::init();
    env.cmd([
        "add",
        "login",
        "--name",
        "Mail",
        "--username",
        "me@example.com",
        "--password",
        "-",
        "--totp",
        "JBSWY3DPEHPK3PXP",
    ])
    .stdin(format!("{secret}\n"))
    .ok();
    env
}

// The copy outlives the CLI (the helper serves it), the CLI never prints the
// value, and after --clear-after the clipboard no longer holds it and the
// helper is gone.
#[test]
fn copy_outlives_the_cli_and_is_cleared_after_the_timeout() {
    let Some(_x) = x_display("copy_outlives_the_cli_and_is_cleared_after_the_timeout") else {
        return;
    };
    let secret = unique_secret("clear");
    let env = vault_with_login(&secret);
    let run = env.cmd(["copy", "Mail", "--clear-after", "2"]).ok();
    run.stdout_has("password")
        .stdout_has("Mail")
        .stdout_has("cleared in 2 s")
        .stdout_lacks(&secret)
        .stderr_lacks(&secret);
    // The CLI has exited; the value is still there to paste.
    assert_eq!(clipboard_text().as_deref(), Some(secret.as_str()));
    assert_eq!(
        clipboard_text().as_deref(),
        Some(secret.as_str()),
        "a second paste works too"
    );
    assert_eq!(helpers().len(), 1, "one helper holds the clipboard");
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || clipboard_text().as_deref()
            != Some(secret.as_str())),
        "the secret is still on the clipboard 10 s after a 2 s clear time"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "cleared too early ({:?})",
        started.elapsed()
    );
    assert_eq!(clipboard_text(), None, "cleared means empty");
    assert!(
        eventually(Duration::from_secs(5), || helpers().is_empty()),
        "the helper is still running after the clear: {:?}",
        helpers()
    );
}

// A value that another program replaced is not the helper's to clear; the
// helper notices the takeover and exits at once.
#[test]
fn a_value_replaced_by_another_program_is_not_cleared() {
    let Some(_x) = x_display("a_value_replaced_by_another_program_is_not_cleared") else {
        return;
    };
    let secret = unique_secret("replaced");
    let env = vault_with_login(&secret);
    env.cmd(["copy", "Mail", "--clear-after", "2"]).ok();
    assert_eq!(clipboard_text().as_deref(), Some(secret.as_str()));
    let mine = unique_secret("mine");
    copy_with_xclip(&mine);
    assert!(
        eventually(Duration::from_secs(5), || helpers().is_empty()),
        "the helper did not exit when another program took the clipboard"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        clipboard_text().as_deref(),
        Some(mine.as_str()),
        "the other program's value was cleared or changed"
    );
}

// The secret is in no process's argv or environment while the helper holds
// it (other users can read /proc/*/cmdline), and the helper gets no OPENK_*
// variable (no master password).
#[test]
fn no_secret_in_any_process_argv_or_environment() {
    let Some(_x) = x_display("no_secret_in_any_process_argv_or_environment") else {
        return;
    };
    let secret = unique_secret("argv");
    let env = vault_with_login(&secret);
    env.cmd(["copy", "Mail", "--clear-after", "30"]).ok();
    let helpers = helpers();
    assert_eq!(helpers.len(), 1, "one helper holds the clipboard");
    let mut seen = 0;
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        for file in ["cmdline", "environ"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(file)) {
                seen += 1;
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the secret is in {}/{file}",
                    entry.path().display()
                );
            }
        }
    }
    assert!(seen > 2, "could read no /proc/*/cmdline");
    // Unreadable (not root: the helper is not dumpable) is fine too.
    let environ = std::fs::read(format!("/proc/{}/environ", helpers[0])).unwrap_or_default();
    for var in environ.split(|b| *b == 0) {
        assert!(
            !var.starts_with(b"OPENK_"),
            "the helper has {}",
            String::from_utf8_lossy(var).split('=').next().unwrap_or("")
        );
    }
    // Its own session, adopted by init or a subreaper (not the CLI's child).
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", helpers[0])).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .expect("stat format")
        .1
        .split(' ')
        .collect();
    assert_eq!(
        fields[3],
        helpers[0].to_string(),
        "the helper leads its own session"
    );
    // End the helper the way a user would: copy something else.
    copy_with_xclip("done");
    assert!(eventually(Duration::from_secs(5), || self::helpers().is_empty()));
}

// FIELD works as for `get` (default password, username, the current TOTP
// code), --json says what was copied and never the value, and the default
// clear time comes from the config file; 0 means never.
#[test]
fn copy_picks_fields_like_get_and_takes_the_clear_time_from_the_config() {
    let Some(_x) = x_display("copy_picks_fields_like_get_and_takes_the_clear_time_from_the_config")
    else {
        return;
    };
    let secret = unique_secret("fields");
    let env = vault_with_login(&secret);
    let config = env.root().join(".config/openk/config.toml");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    std::fs::write(&config, "[clipboard]\nclear_after_secs = 7\n").expect("config");

    let run = env.cmd(["--json", "copy", "Mail"]).ok();
    run.stdout_lacks(&secret);
    let out = run.json();
    assert_eq!(out["field"], "password");
    assert_eq!(out["via"], "display");
    assert_eq!(out["clear_after_secs"], 7);
    assert!(out["id"].as_str().is_some_and(|id| id.len() == 36), "{out}");
    assert_eq!(clipboard_text().as_deref(), Some(secret.as_str()));

    let out = env.json(&["copy", "Mail", "username", "--clear-after", "0"]);
    assert_eq!(out["field"], "username");
    assert_eq!(out["clear_after_secs"], serde_json::Value::Null);
    assert_eq!(clipboard_text().as_deref(), Some("me@example.com"));
    assert!(
        eventually(Duration::from_secs(5), || helpers().len() == 1),
        "the password's helper saw the takeover and exited"
    );

    let before = env.json(&["totp", "Mail"])["code"].clone();
    env.json(&["copy", "Mail", "totp", "--clear-after", "3"]);
    let copied = clipboard_text().expect("a code on the clipboard");
    let after = env.json(&["totp", "Mail"])["code"].clone();
    assert!(
        copied == before || copied == after,
        "copied {copied:?}, codes {before} / {after}"
    );
    assert_eq!(copied.len(), 6);

    env.cmd(["copy", "Mail", "nope"])
        .code(4)
        .stderr_has("has no field");
    copy_with_xclip("done");
    assert!(eventually(Duration::from_secs(5), || helpers().is_empty()));
}

// With neither a display nor a terminal (cron, CI, a pipe) there is nowhere
// to copy to: exit 1 and a message that says what to do, without the value.
#[test]
fn without_a_display_or_a_terminal_copy_fails_with_exit_1() {
    if !have("setsid") {
        println!("skipped: without_a_display_or_a_terminal_copy_fails_with_exit_1: no setsid");
        return;
    }
    let secret = unique_secret("nowhere");
    let env = vault_with_login(&secret);
    let mut cmd = wrapped(&env, &["setsid", "-w"], &["copy", "Mail"]);
    cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    let run = util::wait(
        cmd.spawn().expect("spawn setsid"),
        "setsid -w openk copy Mail".into(),
    );
    assert_eq!(run.code, Some(1), "{run}");
    run.stderr_has("no clipboard to copy to")
        .stderr_has("DISPLAY")
        .stderr_has("openk get")
        .stderr_lacks(&secret)
        .stdout_lacks(&secret);
}

// Without a display the copy goes to the terminal as OSC 52 (what reaches
// the user's local terminal over SSH), and the clear sequence follows at the
// clear time.
#[test]
fn without_a_display_copy_sends_osc52_to_the_terminal() {
    if !have("script") {
        println!(
            "skipped: without_a_display_copy_sends_osc52_to_the_terminal: no script (util-linux)"
        );
        return;
    }
    let secret = unique_secret("osc52");
    let env = vault_with_login(&secret);
    let inner = format!(
        "'{}' copy Mail --clear-after 1; sleep 2",
        util::bin().display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"]);
    let template = env.cmd(["copy"]).into_command();
    for (key, value) in template.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("SHELL", "/bin/sh")
        .current_dir(env.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let run = util::wait(
        cmd.spawn().expect("spawn script"),
        format!("script -c {inner}"),
    );
    assert_eq!(run.code, Some(0), "{run}");
    let copy = openk::clipboard::osc52_sequence(&secret);
    let clear = openk::clipboard::osc52_clear_sequence();
    let at = run
        .stdout
        .find(&copy)
        .unwrap_or_else(|| panic!("no OSC 52 sequence for the value\n{run}"));
    assert!(
        run.stdout[at + copy.len()..].contains(clear),
        "no clear sequence after the copy\n{run}"
    );
    assert!(run.stdout.contains("OSC 52"), "{run}");
    assert!(
        !run.stdout.contains(&secret),
        "the value in clear on the terminal"
    );
}
