//! Command-line surface: the generator, usage errors, help, and closed pipes.

use crate::util::{self, TestEnv};

/// Look-alike characters `--no-ambiguous` leaves out.
const AMBIGUOUS: &str = "0Oo1lI|`'\"";

// gen makes 20-character passwords by default; length, character classes and passphrases follow the flags; bad lengths are exit 2.
#[test]
fn gen_passwords_and_passphrases() {
    // No vault and no password are needed.
    let env = TestEnv::new();
    let generate = |args: &[&str]| {
        let out = env
            .cmd(["gen"])
            .args(args)
            .env_remove("OPENK_PASSWORD")
            .stdout();
        let value = out
            .strip_suffix('\n')
            .expect("one trailing newline")
            .to_owned();
        assert!(!value.contains('\n'), "{out:?}");
        value
    };
    let pw = generate(&[]);
    assert_eq!(pw.chars().count(), 20, "{pw:?}");
    assert!(pw.is_ascii() && !pw.contains(' '), "{pw:?}");
    assert_ne!(generate(&[]), pw, "two passwords differ");

    let pw = generate(&["--length", "32", "--no-symbols", "--no-digits"]);
    assert_eq!(pw.chars().count(), 32, "{pw:?}");
    assert!(pw.chars().all(|c| c.is_ascii_alphabetic()), "{pw:?}");
    let pw = generate(&["-l", "40", "--no-uppercase", "--no-symbols"]);
    assert!(
        pw.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{pw:?}"
    );

    for _ in 0..3 {
        let pw = generate(&["--no-ambiguous", "--length", "128"]);
        assert_eq!(pw.chars().count(), 128);
        assert!(!pw.chars().any(|c| AMBIGUOUS.contains(c)), "{pw:?}");
    }

    let phrase = generate(&["--words", "6"]);
    let words: Vec<&str> = phrase.split('-').collect();
    assert_eq!(words.len(), 6, "{phrase:?}");
    assert!(
        words
            .iter()
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())),
        "{phrase:?}"
    );
    let phrase = generate(&["--words", "4", "--separator", " ", "--capitalize"]);
    let words: Vec<&str> = phrase.split(' ').collect();
    assert_eq!(words.len(), 4, "{phrase:?}");
    assert!(
        words
            .iter()
            .all(|w| w.starts_with(|c: char| c.is_ascii_uppercase())),
        "{phrase:?}"
    );

    let json = env.cmd(["--json", "gen"]).json();
    assert_eq!(json["kind"], "password");
    assert_eq!(json["length"], 20);
    assert_eq!(json["value"].as_str().expect("value").chars().count(), 20);
    assert!(
        json["entropy_bits"].as_f64().expect("entropy_bits") > 0.0,
        "{json}"
    );
    let json = env.cmd(["--json", "gen", "--words", "5"]).json();
    assert_eq!(json["kind"], "passphrase");
    assert_eq!(json["words"], 5);
    assert!(
        json["entropy_bits"].as_f64().expect("entropy_bits") > 50.0,
        "{json}"
    );

    env.cmd(["gen", "--length", "2"])
        .code(2)
        .stderr_has("length");
    env.cmd(["gen", "--length", "100000"]).code(2);
    env.cmd(["gen", "--words", "0"]).code(2);
    env.cmd(["gen", "--words", "3", "--no-symbols"]).code(2);
    env.cmd(["gen", "--separator", "_"])
        .code(2)
        .stderr_has("--words");
    env.cmd(["gen", "--length", "abc"]).code(2);
}

// Usage errors exit 2 with clap's message; --help lists the exit codes; --version names the program.
#[test]
fn usage_errors_help_and_version() {
    let env = TestEnv::new();
    env.cmd(Vec::<&str>::new()).code(2).stderr_has("Usage");
    env.cmd(["frobnicate"]).code(2).stderr_has("frobnicate");
    env.cmd(["show"]).code(2).stderr_has("ITEM");
    env.cmd(["ls", "--bogus-flag"])
        .code(2)
        .stderr_has("--bogus-flag");
    env.cmd(["--help"])
        .ok()
        .stdout_has("Exit codes")
        .stdout_has("init");
    env.cmd(["add", "--help"]).ok().stdout_has("--secret-field");
    env.cmd(["--version"]).ok().stdout_has("openk");
}

// Output into a pipe that is already closed (`openk ls | head -0`) is not an error and never a panic.
#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    let env = TestEnv::init();
    for i in 0..5 {
        env.add(&[
            "login",
            "--name",
            &format!("Item {i}"),
            "--username",
            "u",
            "--password",
            "p",
        ]);
    }
    let commands: [&[&str]; 8] = [
        &["ls"],
        &["--json", "ls"],
        &["show", "Item 1", "--reveal"],
        &["get", "Item 1"],
        &["search", "item"],
        &["history", "Item 1"],
        &["kit"],
        &["gen", "--length", "256"],
    ];
    for args in commands {
        let cmd = env.cmd(args);
        let desc = cmd.describe();
        let mut child = cmd.into_command().spawn().expect("spawn openk");
        // Close the reading end before openk writes anything.
        drop(child.stdout.take());
        let run = util::wait(child, desc);
        run.assert_no_panic();
        assert_eq!(run.code, Some(0), "a closed pipe is success\n{run}");
        run.stderr_lacks("Broken pipe").stderr_lacks("error");
    }
    // The shell way: the reader goes away after one byte.
    if util::have("sh") {
        let script = format!(
            "'{}' ls | head -c1 >/dev/null; exit 0",
            util::bin().display()
        );
        let mut sh = std::process::Command::new("sh");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("OPENK_") {
                sh.env_remove(key);
            }
        }
        let out = sh
            .args(["-c", &script])
            .env("OPENK_HOME", env.vault())
            .env("OPENK_PASSWORD", env.password())
            .output()
            .expect("run sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
