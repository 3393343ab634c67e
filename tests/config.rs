//! The user config: one rule for every command (read once, up front; an
//! unknown key, a bad value or a missing `OPENK_CONFIG` file is exit 2
//! naming the key and the file), and `openk config`.

use std::path::Path;

use crate::util::{Run, TestEnv};

/// Commands that must all refuse a broken config the same way, before they
/// ask for a password or touch the vault.
const COMMANDS: [&[&str]; 12] = [
    &["ls"],
    &["add", "note", "--name", "New", "--notes", "x"],
    &["edit", "GitHub", "--username", "u"],
    &["unlock"],
    &["copy", "GitHub"],
    &["status"],
    &["sync"],
    &["show", "GitHub"],
    &["get", "GitHub"],
    &["kit"],
    &["init"],
    &["config"],
];

fn with_config(env: &TestEnv, config: &Path, args: &[&str]) -> Run {
    env.cmd(args)
        .env("OPENK_CONFIG", config)
        .env("XDG_RUNTIME_DIR", env.root())
        .code(2)
}

/// Every command gives exactly `expected` (exit 2) for this config text.
fn every_command_refuses(env: &TestEnv, text: &str, needles: &[&str]) {
    let config = env.root().join("openk.toml");
    std::fs::write(&config, text).expect("write config");
    let mut first: Option<String> = None;
    for args in COMMANDS {
        let run = with_config(env, &config, args);
        run.stderr_has(&config.display().to_string());
        for n in needles {
            run.stderr_has(n);
        }
        assert!(run.stdout.is_empty(), "{run}");
        match &first {
            None => first = Some(run.stderr.clone()),
            Some(f) => assert_eq!(&run.stderr, f, "{args:?} says something else"),
        }
    }
}

// The same broken config gives the same exit 2 and message for every
// command, and nothing happens: no item is added, no agent starts.
#[test]
fn one_config_rule_for_every_command() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "GitHub", "--password", "pw"]);
    every_command_refuses(
        &env,
        "autosync = false\n",
        &["unknown key `autosync`", "did you mean `auto_sync`?"],
    );
    every_command_refuses(
        &env,
        "[clipboard]\nclear_after = 3\n",
        &["`clipboard.clear_after`", "`clipboard.clear_after_secs`"],
    );
    every_command_refuses(
        &env,
        "auto_sync = \"no\"\n",
        &["`auto_sync` must be true or false"],
    );
    every_command_refuses(
        &env,
        "[agent]\nidle_timeout_secs = -5\n",
        &["`agent.idle_timeout_secs` must be 0 or more seconds"],
    );
    every_command_refuses(&env, "[tui]\ntheme = \"blue\"\n", &["`tui.theme`"]);
    every_command_refuses(&env, "auto_sync = maybe\n", &["line 1"]);
    assert_eq!(env.ls_names(&[]), ["GitHub"], "nothing was added");

    // A missing file named by OPENK_CONFIG is an error too ...
    let missing = env.root().join("nope.toml");
    for args in COMMANDS {
        with_config(&env, &missing, args)
            .stderr_has(&missing.display().to_string())
            .stderr_has("does not exist")
            .stderr_has("OPENK_CONFIG");
    }
    // ... while the default location may be absent (every other test) and
    // is held to the same rule when present.
    let default = env.root().join(".config/openk/config.toml");
    std::fs::create_dir_all(default.parent().expect("dir")).expect("mkdir");
    std::fs::write(&default, "autosync = false\n").expect("write");
    env.cmd(["ls"])
        .code(2)
        .stderr_has(&default.display().to_string())
        .stderr_has("`autosync`");
    std::fs::write(&default, "auto_sync = false\n").expect("write");
    env.run(&["ls"]);
    // `gen` needs no vault and no setting, and `lock` must always be able
    // to wipe the agent's keys: neither reads the config.
    for args in [&["gen"][..], &["lock"]] {
        env.cmd(args).env("OPENK_CONFIG", &missing).ok();
    }
}

// `openk config` prints every key with its value, its default and where
// the value came from; --json too.
#[test]
fn openk_config_shows_values_defaults_and_sources() {
    let env = TestEnv::new();
    let out = env.json(&["config"]);
    let default = env.root().join(".config/openk/config.toml");
    assert_eq!(out["file"]["path"], default.display().to_string().as_str());
    assert_eq!(out["file"]["from"], "default location");
    assert_eq!(out["file"]["exists"], false);
    assert_eq!(
        out["home"]["path"],
        env.vault().display().to_string().as_str()
    );
    assert_eq!(out["home"]["source"], "OPENK_HOME");
    let keys = out["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), openk::config::KEYS.len());
    for k in keys {
        assert_eq!(k["source"], "default", "{k}");
        assert_eq!(k["value"], k["default"], "{k}");
    }

    let config = env.root().join("my.toml");
    std::fs::write(
        &config,
        "auto_sync = false\n[clipboard]\nclear_after_secs = 7\n[tui]\ntheme = \"light\"\n",
    )
    .expect("write");
    let out = env
        .cmd(["--json", "config", "--home", "elsewhere"])
        .env("OPENK_CONFIG", &config)
        .json();
    assert_eq!(out["file"]["path"], config.display().to_string().as_str());
    assert_eq!(out["file"]["from"], "OPENK_CONFIG");
    assert_eq!(out["file"]["exists"], true);
    assert_eq!(out["home"]["source"], "--home");
    assert_eq!(
        out["home"]["path"],
        env.root().join("elsewhere").display().to_string().as_str()
    );
    let key = |name: &str| {
        out["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["key"] == name)
            .unwrap_or_else(|| panic!("no key {name}: {out}"))
            .clone()
    };
    let path = config.display().to_string();
    assert_eq!(key("auto_sync")["value"], false);
    assert_eq!(key("auto_sync")["default"], true);
    assert_eq!(key("auto_sync")["source"], path.as_str());
    assert_eq!(key("clipboard.clear_after_secs")["value"], 7);
    assert_eq!(key("clipboard.clear_after_secs")["default"], 30);
    assert_eq!(key("tui.theme")["value"], "light");
    assert_eq!(key("agent.idle_timeout_secs")["value"], 900);
    assert_eq!(key("agent.idle_timeout_secs")["source"], "default");
    assert!(key("tui.keymap")["value"].is_null());

    let text = env
        .cmd(["config"])
        .env("OPENK_CONFIG", &config)
        .env_remove("OPENK_HOME")
        .stdout();
    assert!(
        text.contains(&format!("config file: {path} (OPENK_CONFIG)")),
        "{text}"
    );
    assert!(text.contains("(default)"), "the vault line: {text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("clipboard.clear_after_secs"))
        .unwrap_or_else(|| panic!("no clipboard row: {text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols,
        ["clipboard.clear_after_secs", "7", "30", path.as_str()]
    );
    assert!(text.contains("KEY") && text.contains("SOURCE"), "{text}");
}
