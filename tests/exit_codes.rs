//! Every exit code and typical cause in docs/errors.md, end to end. Rows
//! tested elsewhere are named here with their test; the rest are below.
//!
//! | Code | Cause | Test |
//! |---|---|---|
//! | 0 | ok | everywhere |
//! | 1 | damaged item / vault.db | damage.rs |
//! | 1 | init on an existing vault | vault.rs `init_refuses_existing_vault` and below |
//! | 1 | change to a read-only vault | files.rs |
//! | 2 | config unknown key, missing `OPENK_CONFIG` | config.rs |
//! | 2 | bad KDF values | vault.rs and below |
//! | 2 | purge without --yes | items.rs `trash_restore_and_purge` |
//! | 2 | a name another item has (any case) | output.rs |
//! | 2 | a bad keymap file | below |
//! | 2 | a new master password zxcvbn rates under 10^8 guesses | below |
//! | 3 | wrong password | vault.rs, sync.rs |
//! | 3 | no password source, empty password | below |
//! | 4 | not found | items.rs |
//! | 5 | ambiguous | items.rs `item_resolution` |
//! | 6 | conflict | engine tests (a race between two processes) |
//! | 7 | unreachable, not answering | sync.rs, server.rs, network.rs |
//! | 8 | tls | server.rs |

use crate::util::{KDF_FLOOR, TestEnv};

// init without a password source (no terminal, no OPENK_PASSWORD, no --password-stdin) is exit 3, as is an empty password from either source.
#[test]
fn init_without_a_password_is_locked() {
    let env = TestEnv::new();
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .env_remove("OPENK_PASSWORD")
        .code(3)
        .stderr_has("OPENK_PASSWORD");
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .env("OPENK_PASSWORD", "")
        .code(3)
        .stderr_has("empty");
    env.cmd(["--password-stdin", "init"])
        .args(KDF_FLOOR)
        .env_remove("OPENK_PASSWORD")
        .stdin("\n")
        .code(3);
    assert!(!env.db().exists(), "no vault was made");
}

// An empty OPENK_PASSWORD says it is empty, at once (no key derivation), instead of "wrong master password".
#[test]
fn an_empty_password_is_named_before_the_kdf() {
    let env = TestEnv::init();
    let started = std::time::Instant::now();
    env.cmd(["ls"])
        .env("OPENK_PASSWORD", "")
        .code(3)
        .stderr_has("OPENK_PASSWORD is set but empty")
        .stderr_lacks("wrong");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

// A keymap file that does not parse: exit 2 and a lowercase "error:" naming the file, before the terminal is touched.
#[test]
fn a_bad_keymap_is_a_usage_error() {
    let env = TestEnv::init();
    let keymap = env.root().join("bad-keymap.toml");
    std::fs::write(&keymap, "no_such_action = [\"q\"]\n").expect("write keymap");
    let config = env.root().join("config.toml");
    std::fs::write(
        &config,
        format!("[tui]\nkeymap = {:?}\n", keymap.display().to_string()),
    )
    .expect("write config");
    let run = env.cmd(["tui"]).env("OPENK_CONFIG", &config).code(2);
    run.stderr_has("error: ").stderr_has("bad-keymap.toml");
    assert!(!run.stderr.contains("Error:"), "{run}");
}

// init on an existing vault is exit 1 and changes nothing; KDF values over the ceiling are exit 2.
#[test]
fn init_refusals() {
    let env = TestEnv::init();
    let before = std::fs::read(env.db()).expect("read db");
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .code(1)
        .stderr_has("already exists");
    assert_eq!(std::fs::read(env.db()).expect("read db"), before);
    let fresh = TestEnv::new();
    fresh.cmd(["init", "--kdf-memory-mib", "999999"]).code(2);
    fresh.cmd(["init", "--kdf-iterations", "0"]).code(2);
}

// A new master password that zxcvbn rates under 10^8 guesses is refused (exit 2, nothing made) unless --weak-password; init and passwd alike.
#[test]
fn a_guessable_master_password_is_refused_unless_insisted() {
    let mut env = TestEnv::new();
    for weak in ["a", "password1", "qwerty123"] {
        env.cmd(["init"])
            .args(KDF_FLOOR)
            .env("OPENK_PASSWORD", weak)
            .code(2)
            .stderr_has("too easy to guess")
            .stderr_has("--weak-password");
        assert!(!env.db().exists(), "no vault was made for {weak:?}");
    }
    env.cmd(["init", "--weak-password"])
        .args(KDF_FLOOR)
        .env("OPENK_PASSWORD", "password1")
        .code(0)
        .stderr_has("easy to guess");
    env.set_password("password1");
    env.cmd(["passwd", "--new-password-stdin"])
        .stdin("letmein\n")
        .code(2)
        .stderr_has("too easy to guess")
        .stderr_lacks("letmein");
    env.cmd(["ls"]).code(0);
    env.cmd(["passwd", "--new-password-stdin", "--weak-password"])
        .stdin("letmein\n")
        .code(0);
}
