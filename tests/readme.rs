//! The README's quick start, run line by line on a fresh vault exactly as
//! written, with only what a script needs instead of a terminal: the
//! password from `OPENK_PASSWORD`, the floor KDF for `init` (speed),
//! `--new-password-stdin` for `passwd`, and the TOTP secret `--totp` would
//! ask for on a terminal from a variable. Secret flags are passed exactly
//! as written (not through the harness's `env:` rewriting), so a literal
//! secret in the README fails here as it would for a user. A line this test does not know
//! runs unchanged and must succeed, so a new README line is tested too.

use std::os::unix::fs::PermissionsExt;

use crate::util::{KDF_FLOOR, TestEnv};

/// The commands of the first ```sh block after `## Quick start`: comments
/// stripped, `\` continuations joined, `a && b` split.
fn quick_start() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let block = &readme[start..];
    let block = &block[block.find("```sh\n").expect("a sh block") + 6..];
    let block = &block[..block.find("```").expect("the end of the block")];
    let mut lines: Vec<String> = Vec::new();
    let mut pending = String::new();
    for raw in block.lines() {
        let code = strip_comment(raw);
        if let Some(head) = code.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(&code);
        if !pending.trim().is_empty() {
            lines.push(std::mem::take(&mut pending));
        }
        pending.clear();
    }
    lines
        .iter()
        .flat_map(|l| l.split("&&").map(words).collect::<Vec<_>>())
        .collect()
}

/// The line without a `# comment` (a `#` outside quotes after a space).
fn strip_comment(line: &str) -> String {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return line[..i].to_owned(),
            _ => {}
        }
        prev = c;
    }
    line.to_owned()
}

/// Shell words: blanks split, quotes group.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let mut env = TestEnv::new();
    let run_dir = env.root().join("run");
    std::fs::create_dir(&run_dir).expect("mkdir");
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let commands = quick_start();
    assert!(commands.len() >= 15, "the quick start: {commands:?}");
    let mut unlocked = false;
    for command in &commands {
        assert_eq!(command[0], "openk", "{command:?}");
        let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
        let mut cmd = env
            .cmd(&args)
            .literal_secrets()
            .env("XDG_RUNTIME_DIR", &run_dir);
        if args.last() == Some(&"--totp") {
            // What the user would paste at the prompt.
            cmd = cmd
                .arg("env:OPENK_README_TOTP")
                .env("OPENK_README_TOTP", "JBSWY3DPEHPK3PXP");
        }
        match args.as_slice() {
            ["init", ..] => cmd = cmd.args(KDF_FLOOR),
            ["passwd", ..] => {
                cmd = cmd
                    .arg("--new-password-stdin")
                    .stdin("the-new-quick-start-pw-Lk8q\n");
            }
            a if a.contains(&"-") => cmd = cmd.stdin("bank-password-from-stdin\n"),
            _ => {}
        }
        let run = cmd.output();
        match args.as_slice() {
            // The clipboard may be missing here (no display, no terminal);
            // everything up to it worked.
            ["copy", ..] => assert!(
                run.code == Some(0) || run.stderr.contains("no clipboard to copy to"),
                "{run}"
            ),
            _ => assert_eq!(run.code, Some(0), "{command:?} failed\n{run}"),
        }
        match args.as_slice() {
            ["init", ..] => {
                let kit = std::fs::read_dir(env.root())
                    .expect("home")
                    .flatten()
                    .any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("openk-emergency-kit-")
                    });
                assert!(kit, "init writes ~/openk-emergency-kit-….txt");
            }
            ["totp", ..] => {
                run.stdout_has("s left");
            }
            ["get", "GitHub"] => assert_eq!(run.stdout.trim().chars().count(), 20, "{run}"),
            ["show", "GitHub"] => {
                run.stdout_has("octocat").stdout_has("totp");
            }
            ["search", ..] => {
                run.stdout_has("GitHub").stdout_lacks("Wi-Fi");
            }
            ["passwd"] => env.set_password("the-new-quick-start-pw-Lk8q"),
            ["unlock"] => unlocked = true,
            ["lock"] => unlocked = false,
            _ => {}
        }
    }
    if unlocked {
        let _ = env.cmd(["lock"]).env("XDG_RUNTIME_DIR", &run_dir).output();
    }
    assert_eq!(
        env.ls_names(&[]),
        ["app-data", "Bank", "deploy", "GitHub", "Wi-Fi"],
        "every item of the quick start"
    );
    assert_eq!(env.run(&["get", "Bank"]).trim(), "bank-password-from-stdin");
}
