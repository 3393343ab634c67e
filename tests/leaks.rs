//! Secrets never leak: nothing an item holds is readable in the files on
//! disk, and the most verbose logs never contain a secret.

use crate::util::{KDF_FLOOR, PASSWORD, TestEnv, files_below};

const TOTP_SEED: &str = "JBSWY3DPEHPK3PXP";

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads every file under the temp dir (vault.db, -wal, -shm, secret.key,
/// the kit, anything else) and fails if one holds a marker.
fn assert_nothing_readable(env: &TestEnv, markers: &[&str], step: &str) {
    let files = files_below(env.root());
    assert!(
        files.iter().any(|f| f.ends_with("vault.db")),
        "{step}: no vault.db in {files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).expect("read a vault file");
        for m in markers {
            assert!(
                !contains(&bytes, m),
                "after {step}: {} contains the plaintext {m:?}",
                file.display()
            );
        }
    }
}

// Names, usernames, URLs, tags, folders, notes, passwords and custom fields never appear in plaintext in any file, through add, edit, trash and restore.
#[test]
fn nothing_readable_on_disk() {
    let env = TestEnv::init();
    let mut markers = vec![
        PASSWORD,
        "ZqNameMarker",
        "ZqUserMarker",
        "zqurlmarker.example",
        "zqtagmarker",
        "ZqFolderMarker",
        "ZqNotesMarker",
        "ZqPassMarker",
        "ZqLabelMarker",
        "ZqFieldValueMarker",
        "ZqSecretLabelMarker",
        "ZqSecretValueMarker",
        TOTP_SEED,
        "4929123456789012",
        "ZqCvvMarker",
        "ZqHolderMarker",
        "zqemailmarker@example.com",
        "ZqCompanyMarker",
        "zq-api-key-marker",
        "ZqCustomNameMarker",
        "zqsshcomment",
    ];
    env.add(&[
        "login",
        "--name",
        "ZqNameMarker",
        "--username",
        "ZqUserMarker",
        "--password",
        "ZqPassMarker",
        "--url",
        "https://zqurlmarker.example/login",
        "--tag",
        "zqtagmarker",
        "--folder",
        "ZqFolderMarker",
        "--notes",
        "ZqNotesMarker line",
        "--field",
        "ZqLabelMarker=ZqFieldValueMarker",
        "--secret-field",
        "ZqSecretLabelMarker=ZqSecretValueMarker",
        "--totp",
        TOTP_SEED,
        "--favorite",
    ]);
    assert_nothing_readable(&env, &markers, "add login");
    env.add(&[
        "card",
        "--name",
        "Card",
        "--cardholder",
        "ZqHolderMarker",
        "--number",
        "4929123456789012",
        "--cvv",
        "ZqCvvMarker",
    ]);
    env.add(&[
        "identity",
        "--name",
        "Id",
        "--email",
        "zqemailmarker@example.com",
        "--company",
        "ZqCompanyMarker",
    ]);
    env.add(&["api-key", "--name", "Api", "--key", "zq-api-key-marker"]);
    env.add(&["custom", "--name", "ZqCustomNameMarker", "--field", "a=b"]);
    env.add(&[
        "ssh-key",
        "--name",
        "Ssh",
        "--generate",
        "--comment",
        "zqsshcomment",
    ]);
    assert_nothing_readable(&env, &markers, "add of every kind");

    env.run(&[
        "edit",
        "ZqNameMarker",
        "--name",
        "ZqRenamedMarker",
        "--username",
        "ZqUser2Marker",
        "--password",
        "ZqPass2Marker",
        "--tag",
        "zqtag2marker",
        "--folder",
        "ZqFolder2Marker",
    ]);
    markers.extend([
        "ZqRenamedMarker",
        "ZqUser2Marker",
        "ZqPass2Marker",
        "zqtag2marker",
        "ZqFolder2Marker",
    ]);
    assert_nothing_readable(&env, &markers, "edit");
    env.run(&["rm", "ZqRenamedMarker"]);
    assert_nothing_readable(&env, &markers, "rm");
    env.run(&["restore", "ZqRenamedMarker"]);
    env.run(&["rm", "Card"]);
    assert_nothing_readable(&env, &markers, "restore");
    env.run(&["purge", "Card", "--yes"]);
    assert_nothing_readable(&env, &markers, "purge");
    // The markers really are in the vault (the test is not vacuous).
    assert_eq!(env.run(&["get", "ZqRenamedMarker"]), "ZqPass2Marker\n");
    assert_eq!(
        env.run(&["get", "ZqRenamedMarker", "ZqSecretLabelMarker"]),
        "ZqSecretValueMarker\n"
    );
}

/// Collects the stderr of commands run with `-vvv` and `OPENK_LOG=trace`.
struct Verbose<'a> {
    env: &'a TestEnv,
    /// (command, exit code, stderr) of every command run.
    stderr: Vec<(String, Option<i32>, String)>,
}

impl Verbose<'_> {
    fn cmd(&self, args: &[&str]) -> crate::util::TestCommand {
        self.env.cmd(["-vvv"]).args(args).env("OPENK_LOG", "trace")
    }

    fn keep(&mut self, run: crate::util::Run) -> String {
        self.stderr
            .push((run.desc.clone(), run.code, run.stderr.clone()));
        run.stdout
    }

    /// Runs a command that must succeed; returns stdout.
    fn ok(&mut self, args: &[&str]) -> String {
        let run = self.cmd(args).ok();
        self.keep(run)
    }
}

// With -vvv and OPENK_LOG=trace, no command writes a secret (master passwords, item secrets, TOTP seed, Secret Key) to stderr, while it does log.
#[test]
fn verbose_logs_never_contain_secrets() {
    let mut env = TestEnv::new();
    let new_master = "new master pw Vq8Leak";
    let wrong_master = "wrong master pw Vq8Leak";
    let mut secrets: Vec<String> = [
        PASSWORD,
        new_master,
        wrong_master,
        "VqLoginPassword1",
        "VqLoginPassword2",
        "VqStdinPassword",
        "VqRecoveryCode1",
        "VqRecoveryCode2",
        "VqNotesSecret",
        "VqNoteBody",
        "5105105105105100",
        "VqCvv",
        "VqPin",
        "VqApiKeySecret",
        "VqTokenSecret",
        TOTP_SEED,
    ]
    .map(str::to_owned)
    .to_vec();

    let mut v = Verbose {
        env: &env,
        stderr: Vec::new(),
    };
    let init = v
        .cmd(&["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(env.kit_path())
        .ok();
    let secret_key = init
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Secret Key:"))
        .expect("init prints the Secret Key")
        .trim()
        .to_owned();
    v.keep(init);

    v.ok(&[
        "add",
        "login",
        "--name",
        "VqItemName",
        "--username",
        "VqUserName",
        "--password",
        "VqLoginPassword1",
        "--totp",
        TOTP_SEED,
        "--secret-field",
        "Recovery=VqRecoveryCode1",
        "--notes",
        "VqNotesSecret",
        "--url",
        "https://vqurl.example",
        "--tag",
        "vqtag",
        "--folder",
        "VqFolder",
    ]);
    let run = v
        .cmd(&["add", "login", "--name", "FromStdin", "--password", "-"])
        .stdin("VqStdinPassword\n")
        .ok();
    v.keep(run);
    v.ok(&["add", "login", "--name", "Gen", "--generate"]);
    v.ok(&[
        "add",
        "card",
        "--name",
        "Card",
        "--number",
        "5105105105105100",
        "--cvv",
        "VqCvv",
        "--pin",
        "VqPin",
    ]);
    v.ok(&["add", "note", "--name", "Note", "--notes", "VqNoteBody"]);
    v.ok(&[
        "add",
        "identity",
        "--name",
        "Me",
        "--full-name",
        "Jane",
        "--email",
        "j@example.com",
    ]);
    v.ok(&["add", "api-key", "--name", "Api", "--key", "VqApiKeySecret"]);
    v.ok(&["add", "ssh-key", "--name", "Ssh", "--generate"]);
    v.ok(&[
        "add",
        "custom",
        "--name",
        "Custom",
        "--secret-field",
        "Token=VqTokenSecret",
    ]);

    v.ok(&["ls"]);
    v.ok(&["--json", "ls"]);
    v.ok(&["ls", "--kind", "login"]);
    for item in ["VqItemName", "Card", "Note", "Api", "Ssh", "Custom", "Gen"] {
        v.ok(&["show", item]);
    }
    v.ok(&["--json", "show", "VqItemName"]);
    // get prints secrets on stdout (that is its job); only stderr is checked.
    v.ok(&["get", "VqItemName"]);
    v.ok(&["get", "VqItemName", "totp"]);
    v.ok(&["get", "Card", "cvv"]);
    v.ok(&["--json", "get", "Api"]);
    let generated = v.ok(&["get", "Gen"]);
    secrets.push(generated.trim_end().to_owned());
    let private = v.ok(&["get", "Ssh", "private key"]);
    let body = private
        .lines()
        .nth(2)
        .expect("a private key body line")
        .to_owned();
    secrets.push(body);

    v.ok(&[
        "edit",
        "VqItemName",
        "--password",
        "VqLoginPassword2",
        "--secret-field",
        "Recovery=VqRecoveryCode2",
    ]);
    v.ok(&["show", "VqItemName", "--version", "1"]);
    v.ok(&["history", "VqItemName"]);
    v.ok(&["--json", "history", "VqItemName"]);
    v.ok(&["search", "vqusern"]);
    v.ok(&["search", "kind:login", "tag:vqtag"]);
    v.ok(&["totp", "VqItemName"]);
    v.ok(&["rm", "VqItemName"]);
    v.ok(&["ls", "--trash"]);
    v.ok(&["restore", "VqItemName"]);
    let pw = v.ok(&["gen"]);
    secrets.push(pw.trim_end().to_owned());
    let phrase = v.ok(&["gen", "--words", "5"]);
    secrets.push(phrase.trim_end().to_owned());
    v.ok(&["kit"]);
    v.ok(&["--json", "kit"]);
    let run = v.cmd(&["ls"]).env("OPENK_PASSWORD", wrong_master).code(3);
    v.keep(run);
    let run = v.cmd(&["get", "Nobody"]).code(4);
    v.keep(run);
    let run = v
        .cmd(&["--password-stdin", "passwd", "--new-password-stdin"])
        .env_remove("OPENK_PASSWORD")
        .stdin(format!("{PASSWORD}\n{new_master}\n"))
        .ok();
    v.keep(run);
    let collected = std::mem::take(&mut v.stderr);
    env.set_password(new_master);
    let mut v = Verbose {
        env: &env,
        stderr: collected,
    };
    v.ok(&["ls"]);
    v.ok(&["purge", "Card", "--yes"]);

    let compact_key: String = secret_key.chars().filter(|c| *c != '-').collect();
    secrets.push(secret_key);
    secrets.push(compact_key);

    for (desc, _, stderr) in &v.stderr {
        for secret in &secrets {
            assert!(
                !stderr.contains(secret.as_str()),
                "the log of `{desc}` contains the secret {secret:?}:\n{stderr}"
            );
        }
    }
    // Logs name ids and kinds, never an item's name, username, URL, tag or
    // folder. (Error messages may name items, so only successful runs count.)
    let metadata = [
        "VqItemName",
        "VqUserName",
        "vqurl.example",
        "vqtag",
        "VqFolder",
    ];
    for (desc, code, stderr) in &v.stderr {
        for m in metadata.iter().filter(|_| *code == Some(0)) {
            assert!(
                !stderr.contains(m),
                "the log of `{desc}` contains the item metadata {m:?}:\n{stderr}"
            );
        }
    }
    let logged = v
        .stderr
        .iter()
        .filter(|(_, _, e)| !e.trim().is_empty())
        .count();
    assert!(
        logged * 2 >= v.stderr.len(),
        "only {logged} of {} commands logged anything: is -vvv working?",
        v.stderr.len()
    );
    let all: String = v.stderr.iter().map(|(_, _, e)| e.as_str()).collect();
    assert!(
        all.contains("TRACE") || all.contains("DEBUG"),
        "no debug or trace lines:\n{all}"
    );
}
