//! What the CLI prints: strings from the vault never reach stdout as raw
//! control characters; tables line up by display width; names are unique
//! whatever their letter case.

use crate::util::TestEnv;

/// An item name with a screen clear, a C1 CSI and a bidi override; notes
/// with an OSC 52 clipboard write.
const EVIL_NAME: &str = "evil\u{1b}[2J\u{9b}31m\u{202e}gpj.exe";
const EVIL_NOTES: &str = "line one\n\u{1b}]52;c;aGVsbG8=\u{7}line two\r overwritten";

fn raw_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

// ls, search, show --reveal, history and error messages print vault strings through crate::text; --json and `get` to a pipe keep the exact value.
#[test]
fn control_characters_never_reach_stdout_raw() {
    let env = TestEnv::init();
    let id = env.add(&[
        "login",
        "--name",
        EVIL_NAME,
        "--username",
        "u\u{1b}[1mser",
        "--password",
        "pw\u{1b}]52;c;eA==\u{7}",
        "--tag",
        "t\u{9b}ag",
        "--folder",
        "f\u{1b}c",
        "--notes",
        EVIL_NOTES,
    ]);
    for args in [
        vec!["ls"],
        vec!["search", "evil"],
        vec!["show", id.as_str(), "--reveal"],
        vec!["history", id.as_str()],
        vec!["totp", id.as_str()],
    ] {
        let run = env.cmd(&args).output();
        for out in [&run.stdout, &run.stderr] {
            assert!(raw_controls(out).is_empty(), "{args:?}: {out:?}");
        }
    }
    let shown = env.run(&["show", &id, "--reveal"]);
    assert!(
        shown.contains("line one") && shown.contains("line two"),
        "{shown}"
    );
    assert!(
        shown.contains('\u{fffd}'),
        "what was stripped is marked: {shown}"
    );
    // JSON is exact (serde escapes the controls).
    let item = env.json(&["show", &id, "--reveal"]);
    assert_eq!(item["name"], EVIL_NAME);
    // `get` to a pipe gives scripts the exact value.
    let got = env.cmd(["get", &id, "notes"]).stdout();
    assert_eq!(got, format!("{EVIL_NOTES}\n"));
}

// Emoji and ZWJ sequences take two columns: the table pads by display width, so every column starts at the same place.
#[test]
fn wide_characters_keep_the_table_aligned() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "👩‍💻 dev box", "--username", "alice"]);
    env.add(&["login", "--name", "日本語のサイト", "--username", "bob"]);
    env.add(&["login", "--name", "plain", "--username", "carol"]);
    let out = env.run(&["ls"]);
    let columns: Vec<usize> = out
        .lines()
        .map(|l| {
            let at = l.find("login").or_else(|| l.find("KIND")).expect(l);
            unicode_width::UnicodeWidthStr::width(&l[..at])
        })
        .collect();
    assert_eq!(columns.len(), 4, "{out}");
    assert!(
        columns.windows(2).all(|w| w[0] == w[1]),
        "{columns:?}\n{out}"
    );
}

// A name that differs from a live item's only by case is refused (exit 2) on add and on rename; the item's own case can change; a trashed item's name is free.
#[test]
fn names_that_differ_only_by_case_are_refused() {
    let env = TestEnv::init();
    let id = env.add(&["login", "--name", "GitHub", "--username", "me"]);
    let other = env.add(&["note", "--name", "Other", "--notes", "x"]);
    env.cmd(["add", "login", "--name", "github"])
        .code(2)
        .stderr_has("already exists")
        .stderr_has(&id);
    env.cmd(["add", "note", "--name", "GitHub", "--notes", "y"])
        .code(2);
    env.cmd(["edit", &other, "--name", "GITHUB"])
        .code(2)
        .stderr_has("already exists");
    assert_eq!(env.ls_names(&[]).len(), 2, "nothing was added or renamed");
    env.cmd(["edit", &id, "--name", "Github"]).ok();
    env.cmd(["show", "github"]).ok().stdout_has(&id);
    env.cmd(["rm", &id]).ok();
    env.add(&["login", "--name", "GitHub"]);
}
