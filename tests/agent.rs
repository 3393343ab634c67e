//! The agent (`openk unlock` / `openk lock`): commands without a password
//! while it runs, the idle timeout, its socket's permissions, one agent per
//! vault, and what happens to a stale, killed or wrong agent.
//!
//! Each test gives its commands a private `XDG_RUNTIME_DIR` inside its temp
//! dir (so sockets never land in the real one) and locks its agents when it
//! ends, even on failure; `--idle-timeout 120` is the backstop.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{PASSWORD, TestCommand, TestEnv, mode};

/// The private runtime dir of `env` (created 0700).
fn run_dir(env: &TestEnv) -> PathBuf {
    let dir = env.root().join("run");
    if !dir.exists() {
        std::fs::create_dir(&dir).expect("create the runtime dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    dir
}

/// `openk ARGS` for `env` with its runtime dir (and `OPENK_PASSWORD`).
fn cmd(env: &TestEnv, args: &[&str]) -> TestCommand {
    env.cmd(args).env("XDG_RUNTIME_DIR", run_dir(env))
}

/// `openk ARGS` without any password: works only through the agent.
fn nopw(env: &TestEnv, args: &[&str]) -> TestCommand {
    cmd(env, args).env_remove("OPENK_PASSWORD")
}

/// Starts the agent of `env` and returns a guard that locks it.
fn unlock<'a>(env: &'a TestEnv, extra: &[&str]) -> Locker<'a> {
    cmd(env, &["unlock", "--idle-timeout", "120"])
        .args(extra)
        .ok()
        .stdout_has("Unlocked.");
    Locker(env)
}

/// Locks the agent of a test's vault when the test ends.
struct Locker<'a>(&'a TestEnv);

impl Drop for Locker<'_> {
    fn drop(&mut self) {
        let _ = cmd(self.0, &["lock"]).output();
    }
}

/// The agent sockets in `run`.
fn sockets(run: &Path) -> Vec<PathBuf> {
    let dir = run.join("openk");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    out.sort();
    out
}

/// `openk status --json`'s `agent` value.
fn agent_status(env: &TestEnv) -> serde_json::Value {
    cmd(env, &["--json", "status"]).json()["agent"].clone()
}

fn assert_locked(env: &TestEnv) {
    nopw(env, &["ls"])
        .code(3)
        .stderr_has("no terminal to ask for the master password");
}

/// Waits (up to `limit`) until `cond` holds.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

// unlock, then ls/show/add/get with no password at all; lock → the password is needed again, and the items are there.
#[test]
fn commands_run_without_a_password_while_the_agent_runs() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "Mail", "--password", "mail-pw-1"]);
    assert_locked(&env);
    let locker = unlock(&env, &[]);
    nopw(&env, &["ls"]).ok().stdout_has("Mail");
    nopw(&env, &["show", "Mail"]).ok().stdout_has("Mail");
    nopw(
        &env,
        &["add", "note", "--name", "Diary", "--notes", "dear diary"],
    )
    .ok();
    assert_eq!(nopw(&env, &["get", "Diary"]).stdout(), "dear diary\n");
    // A second unlock finds the running agent.
    nopw(&env, &["unlock"]).ok().stdout_has("Already unlocked.");
    let st = agent_status(&env);
    assert!(st["pid"].as_u64().is_some(), "{st}");
    assert!(st["locks_at"].as_str().is_some(), "{st}");

    let lock = cmd(&env, &["--json", "lock"]).json();
    assert_eq!(lock["locked"], true, "{lock}");
    assert_locked(&env);
    assert!(
        sockets(&run_dir(&env)).is_empty(),
        "lock removes the socket"
    );
    assert_eq!(env.ls_names(&[]), ["Diary", "Mail"]);
    assert_eq!(agent_status(&env), serde_json::Value::Null);
    // Nothing left to lock.
    cmd(&env, &["lock"]).ok().stdout_has("nothing to lock");
    assert_eq!(cmd(&env, &["--json", "lock"]).json()["locked"], false);
    drop(locker);
}

// With a KDF that takes a while, a command through the agent is much faster than one with the password.
#[test]
fn commands_through_the_agent_skip_the_kdf() {
    let env = TestEnv::new();
    env.cmd([
        "init",
        "--kdf-memory-mib",
        "128",
        "--kdf-iterations",
        "4",
        "--kdf-parallelism",
        "1",
        "--kit",
    ])
    .arg(env.kit_path())
    .ok();
    let time = |c: TestCommand| {
        let start = Instant::now();
        c.ok();
        start.elapsed()
    };
    let with_password = time(cmd(&env, &["ls"]));
    let _locker = unlock(&env, &[]);
    let through_agent = (0..3)
        .map(|_| time(nopw(&env, &["ls"])))
        .min()
        .expect("three runs");
    eprintln!("ls with the password: {with_password:?}; through the agent: {through_agent:?}");
    assert!(
        through_agent < with_password,
        "the agent path ({through_agent:?}) should skip the KDF ({with_password:?})"
    );
}

// A wrong password: exit 3 from `openk unlock`, no agent, no socket.
#[test]
fn a_wrong_password_starts_no_agent() {
    let env = TestEnv::init();
    let _locker = Locker(&env);
    cmd(&env, &["unlock"])
        .env("OPENK_PASSWORD", "not the password")
        .code(3)
        .stderr_has("wrong master password");
    assert!(sockets(&run_dir(&env)).is_empty());
    assert_locked(&env);
    assert_eq!(agent_status(&env), serde_json::Value::Null);
    // No vault at all: exit 4, as for every command.
    let empty = TestEnv::new();
    cmd(&empty, &["unlock"]).code(4);
}

// --idle-timeout 1 locks the agent a second after its last use; the config key does the same.
#[test]
fn the_agent_locks_itself_when_idle() {
    let env = TestEnv::init();
    let _locker = Locker(&env);
    cmd(&env, &["unlock", "--idle-timeout", "1"]).ok();
    nopw(&env, &["ls"]).ok();
    assert!(
        eventually(Duration::from_secs(10), || sockets(&run_dir(&env))
            .is_empty()),
        "the agent did not lock itself"
    );
    assert_locked(&env);

    // `[agent] idle_timeout_secs` from the config file.
    let config = env.root().join("config.toml");
    std::fs::write(&config, "[agent]\nidle_timeout_secs = 1\n").expect("write config");
    cmd(&env, &["unlock"])
        .env("OPENK_CONFIG", &config)
        .ok()
        .stdout_has("Unlocked.");
    assert!(
        eventually(Duration::from_secs(10), || sockets(&run_dir(&env))
            .is_empty()),
        "the configured timeout did not lock the agent"
    );
    assert_locked(&env);
}

// The socket is 0600 in a 0700 directory, named by a hash (not the vault path).
#[test]
fn the_socket_is_private() {
    let env = TestEnv::init();
    let _locker = unlock(&env, &[]);
    let run = run_dir(&env);
    let socks = sockets(&run);
    assert_eq!(socks.len(), 1, "{socks:?}");
    let sock = &socks[0];
    let meta = std::fs::symlink_metadata(sock).expect("stat the socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(sock), 0o600, "socket mode");
    assert_eq!(mode(&run.join("openk")), 0o700, "socket dir mode");
    let name = sock
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("openk-agent-") && !name.contains("vault"),
        "{name}"
    );
}

// Without a usable XDG_RUNTIME_DIR the socket goes to a 0700 dir under the state dir.
#[test]
fn without_a_runtime_dir_the_socket_is_in_the_state_dir() {
    let env = TestEnv::init();
    let run = |args: &[&str]| env.cmd(args).env_remove("XDG_RUNTIME_DIR");
    run(&["unlock", "--idle-timeout", "120"]).ok();
    let dir = env.root().join(".local/state/openk/agent");
    let found = eventually(Duration::from_secs(1), || dir.exists());
    let result = std::panic::catch_unwind(|| {
        assert!(found, "no agent dir in the state dir");
        assert_eq!(mode(&dir), 0o700);
        run(&["ls"]).env_remove("OPENK_PASSWORD").ok();
    });
    run(&["lock"]).ok().stdout_has("Locked");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

// Two vaults, one runtime dir: two agents with their own sockets; locking one leaves the other.
#[test]
fn two_vaults_get_two_agents() {
    let a = TestEnv::init();
    let b = TestEnv::init();
    let shared = run_dir(&a);
    let in_shared = |env: &TestEnv, args: &[&str]| {
        env.cmd(args)
            .env("XDG_RUNTIME_DIR", &shared)
            .env_remove("OPENK_PASSWORD")
    };
    let _la = unlock(&a, &[]);
    in_shared(&b, &["unlock", "--idle-timeout", "120"])
        .env("OPENK_PASSWORD", b.password())
        .ok()
        .stdout_has("Unlocked.");
    let result = std::panic::catch_unwind(|| {
        assert_eq!(sockets(&shared).len(), 2);
        let pa = agent_status(&a)["pid"].as_u64().expect("agent a");
        let pb = in_shared(&b, &["--json", "status"]).json()["agent"]["pid"]
            .as_u64()
            .expect("agent b");
        assert_ne!(pa, pb);
        in_shared(&a, &["add", "note", "--name", "In A", "--notes", "a"]).ok();
        in_shared(&b, &["ls"]).ok().stdout_lacks("In A");
        in_shared(&a, &["lock"]).ok().stdout_has("Locked");
        in_shared(&a, &["ls"]).code(3);
        in_shared(&b, &["ls"]).ok();
    });
    let _ = in_shared(&b, &["lock"]).output();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

// passwd asks for the current password even with an agent, then locks the agent (its key no longer fits).
#[test]
fn passwd_locks_the_agent() {
    let mut env = TestEnv::init();
    let locker = unlock(&env, &[]);
    // The agent does not stand in for the current password.
    nopw(
        &env,
        &["--password-stdin", "passwd", "--new-password-stdin"],
    )
    .stdin("not the password\nwhatever\n")
    .code(3);
    nopw(&env, &["ls"]).ok();
    let new = "brand-new-master-pw-9Jx";
    nopw(
        &env,
        &["--password-stdin", "passwd", "--new-password-stdin"],
    )
    .stdin(format!("{PASSWORD}\n{new}\n"))
    .ok()
    .stderr_has("was locked");
    assert_locked(&env);
    assert!(sockets(&run_dir(&env)).is_empty());
    drop(locker);
    env.set_password(new);
    cmd(&env, &["ls"]).ok();
}

// A killed agent leaves its socket behind: the next command removes it and asks for the password; unlock works again.
#[test]
fn a_killed_agent_leaves_a_stale_socket_that_is_removed() {
    let env = TestEnv::init();
    let _locker = unlock(&env, &[]);
    let pid = agent_status(&env)["pid"].as_u64().expect("agent pid");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let run = run_dir(&env);
    assert_eq!(sockets(&run).len(), 1, "the socket outlives a killed agent");
    // Its listening socket closes as the process dies; from then on a
    // command asks for the password and removes the stale socket.
    assert!(
        eventually(Duration::from_secs(5), || {
            nopw(&env, &["ls"]).output().code == Some(3) && sockets(&run).is_empty()
        }),
        "the stale socket was not removed"
    );
    assert_locked(&env);
    let _again = unlock(&env, &[]);
    nopw(&env, &["ls"]).ok();
}

// An agent whose key does not open the vault (the vault was replaced under it) is ignored and locked; the password works.
#[test]
fn an_agent_with_the_wrong_key_is_not_trusted() {
    let env = TestEnv::init();
    let other = TestEnv::init();
    env.add(&["note", "--name", "Mine", "--notes", "x"]);
    let _locker = unlock(&env, &[]);
    other.settle();
    for f in ["vault.db-wal", "vault.db-shm"] {
        let _ = std::fs::remove_file(env.vault().join(f));
    }
    for f in ["vault.db", "secret.key"] {
        std::fs::copy(other.vault().join(f), env.vault().join(f)).expect("swap the vault");
    }
    nopw(&env, &["ls"])
        .code(3)
        .stderr_has("does not open this vault");
    assert!(
        sockets(&run_dir(&env)).is_empty(),
        "the wrong agent was locked"
    );
    // The password of the vault now in the directory opens it (test vaults share one password).
    let out = cmd(&env, &["ls"]).ok();
    out.stdout_lacks("Mine");
}

// A process of another uid that gets through to the socket (the 0700 directory is the first barrier; opened here on purpose) gets no answer, thanks to the SO_PEERCRED check; the agent keeps serving its user.
#[test]
fn another_user_gets_no_answer() {
    let (setpriv, python) = (Path::new("/usr/bin/setpriv"), Path::new("/usr/bin/python3"));
    if !rustix::process::geteuid().is_root() || !setpriv.exists() || !python.exists() {
        eprintln!("skipped: needs root, setpriv and python3 to act as another user");
        return;
    }
    let env = TestEnv::init();
    let _locker = unlock(&env, &[]);
    let run = run_dir(&env);
    let sock = sockets(&run).pop().expect("the agent socket");
    for dir in [env.root(), run.as_path(), run.join("openk").as_path()] {
        crate::util::chmod(dir, 0o711);
    }
    crate::util::chmod(&sock, 0o666);
    // Prints what the agent answered: nothing ("b''") or a closed connection.
    let script = "import socket, sys\n\
                  s = socket.socket(socket.AF_UNIX)\n\
                  s.connect(sys.argv[1])\n\
                  try:\n\
                  \x20   s.sendall(b'{\"v\":1,\"op\":\"keys\"}\\n')\n\
                  \x20   sys.stdout.write(repr(s.recv(4096)))\n\
                  except OSError:\n\
                  \x20   sys.stdout.write('closed')\n";
    let out = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(python)
        .args(["-c", script])
        .arg(&sock)
        .output()
        .expect("run python as uid 65534");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout == "b''" || stdout == "closed",
        "another uid must get nothing, got {stdout}"
    );
    crate::util::chmod(&sock, 0o600);
    nopw(&env, &["ls"]).ok();
}

// At trace level, neither the agent's log file nor the commands it serves show the master password or a secret.
#[test]
fn agent_logs_hold_no_secrets() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "Mail", "--password", "item-secret-Zq81"]);
    let _locker = Locker(&env);
    let mut stderr = cmd(&env, &["-vvv", "unlock", "--idle-timeout", "120"])
        .env("OPENK_LOG", "trace")
        .ok()
        .stderr;
    for args in [["-vvv", "ls"], ["-vvv", "show"], ["-vvv", "get"]] {
        let mut args = args.to_vec();
        if args[1] != "ls" {
            args.push("Mail");
        }
        stderr.push_str(&nopw(&env, &args).env("OPENK_LOG", "trace").ok().stderr);
    }
    cmd(&env, &["-vvv", "lock"]).ok();
    let logs = crate::util::files_below(&env.root().join(".local/state/openk"));
    assert!(!logs.is_empty(), "the agent wrote a log");
    let mut text = stderr;
    for f in logs {
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(f).expect("read log"),
        ));
    }
    assert!(text.contains("agent serving"), "{text}");
    for secret in [PASSWORD, "item-secret-Zq81", "password_key\":\""] {
        assert!(!text.contains(secret), "{secret:?} in the logs");
    }
}

/// Every place in the memory of process `pid` where one of `needles` occurs:
/// `(needle index, address, mapping)`. Reads `/proc/PID/mem` over the
/// writable ranges of `/proc/PID/maps`. `None` when this process may not
/// read that memory: the agent is not dumpable, so only a process with
/// `CAP_SYS_PTRACE` (root here) can.
fn memory_hits(pid: u32, needles: &[Vec<u8>]) -> Option<Vec<(usize, u64, String)>> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut hits = Vec::new();
    let mut readable = 0u64;
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = parts.nth(3).unwrap_or("").to_owned();
        // A copy made at run time is in writable memory; the read-only
        // mappings are the binary's and libraries' code and constants.
        if !perms.starts_with("rw") || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let start = u64::from_str_radix(start, 16).expect("maps start");
        let end = u64::from_str_radix(end, 16).expect("maps end");
        let mut buf = vec![0u8; usize::try_from(end - start).expect("range size")];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        readable += end - start;
        for (i, needle) in needles.iter().enumerate() {
            let mut from = 0;
            while let Some(at) = buf[from..].iter().position(|&b| b == needle[0]) {
                let at = from + at;
                if buf[at..].starts_with(needle) {
                    hits.push((i, start + at as u64, name.clone()));
                }
                from = at + 1;
            }
        }
    }
    assert!(readable > 0, "read nothing of the agent's memory");
    Some(hits)
}

/// The password as UTF-8, UTF-16LE, UTF-16BE and JSON-escaped, plus
/// `fragment` (a run of it no encoding changes) to catch partial copies.
fn encodings(password: &str, fragment: &str) -> Vec<Vec<u8>> {
    let utf16: Vec<u16> = password.encode_utf16().collect();
    let json = serde_json::to_string(password).expect("json");
    vec![
        password.as_bytes().to_vec(),
        utf16.iter().flat_map(|u| u.to_le_bytes()).collect(),
        utf16.iter().flat_map(|u| u.to_be_bytes()).collect(),
        json.trim_matches('"').as_bytes().to_vec(),
        fragment.as_bytes().to_vec(),
    ]
}

// The agent holds the password key, never the password: after unlock and after three served commands, no copy of the master password (UTF-8 or UTF-16) is left anywhere in its memory. Needs CAP_SYS_PTRACE (root), since the agent is not dumpable; skipped otherwise.
#[test]
fn the_agent_keeps_no_copy_of_the_password() {
    let mut env = TestEnv::init();
    // A password with characters JSON escapes, to catch copies a decoder's
    // scratch buffer leaves behind.
    let password = "Zq\"mem\\scan-Pw-41xQ\u{e9}";
    let mut passwd = env.cmd(["passwd", "--new-password-stdin"]);
    passwd = passwd.stdin(format!("{password}\n"));
    passwd.ok();
    env.set_password(password);
    env.add(&["login", "--name", "Mail", "--password", "mail-pw-1"]);
    let _locker = unlock(&env, &[]);
    let pid = u32::try_from(agent_status(&env)["pid"].as_u64().expect("agent pid")).expect("pid");
    let needles = encodings(password, "scan-Pw-41xQ");
    // A control the scan must find (the agent keeps its vault's path), so
    // that a scan that reads nothing cannot pass.
    let control = std::fs::canonicalize(env.vault()).expect("vault dir");
    let control = control.to_str().expect("utf-8 path").as_bytes().to_vec();
    let scan = |step: &str| {
        let mut all = needles.clone();
        all.push(control.clone());
        let hits = memory_hits(pid, &all)?;
        let (found, hits): (Vec<_>, Vec<_>) = hits.into_iter().partition(|h| h.0 == needles.len());
        assert!(
            !found.is_empty(),
            "{step}: the scan did not even find the vault path"
        );
        assert!(
            hits.is_empty(),
            "{step}: the password is in the agent's memory at {hits:?}"
        );
        Some(())
    };
    if scan("after unlock").is_none() {
        eprintln!("skipped: cannot read the agent's memory (needs CAP_SYS_PTRACE, e.g. root)");
        return;
    }
    nopw(&env, &["ls"]).ok().stdout_has("Mail");
    nopw(&env, &["show", "Mail"]).ok();
    assert_eq!(nopw(&env, &["get", "Mail"]).stdout(), "mail-pw-1\n");
    scan("after three commands").expect("readable as before");
}

/// One line to the agent's key protocol and its answer.
fn key_request(
    stream: &mut std::os::unix::net::UnixStream,
    reader: &mut std::io::BufReader<std::os::unix::net::UnixStream>,
    line: &str,
) -> serde_json::Value {
    use std::io::{BufRead, Write};
    stream
        .write_all(format!("{line}\n").as_bytes())
        .expect("send a request");
    let mut answer = String::new();
    reader.read_line(&mut answer).expect("read the answer");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("answer {answer:?}: {e}"))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("a base64 string"))
        .expect("base64")
}

// The key protocol: with [agent.keys] allowing some keys and operations, a
// program encrypts, decrypts, signs and verifies over one connection; a key
// or an operation the config does not allow is refused; a malformed line
// gets an error answer and the connection stays usable; the CLI and the
// agent read each other's envelopes; a rotation by another process is seen.
#[test]
fn the_key_protocol_does_what_the_config_allows_and_nothing_else() {
    let env = TestEnv::init();
    env.run(&["key", "create", "app", "--type", "xchacha20"]);
    env.run(&["key", "create", "signer", "--type", "ed25519"]);
    env.run(&["key", "create", "hidden", "--type", "aes256-gcm"]);
    let config = env.root().join("config.toml");
    std::fs::write(
        &config,
        "[agent.keys]\napp = [\"encrypt\", \"decrypt\"]\nsigner = { ops = [\"sign\", \"verify\", \"public\"] }\n",
    )
    .expect("write the config");
    let with_config = |args: &[&str]| cmd(&env, args).env("OPENK_CONFIG", &config);
    with_config(&["unlock", "--idle-timeout", "120"])
        .ok()
        .stdout_has("Unlocked.");
    let _locker = Locker(&env);
    let socket = sockets(&run_dir(&env)).pop().expect("the agent's socket");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
    let mut ask = |line: &str| key_request(&mut stream, &mut reader, line);

    let enc = ask(&format!(
        r#"{{"id":1,"op":"encrypt","key":"app","data_b64":"{}"}}"#,
        b64(b"hello agent")
    ));
    assert_eq!(enc["ok"], true, "{enc}");
    assert_eq!(
        (enc["id"].as_i64(), enc["version"].as_i64()),
        (Some(1), Some(1))
    );
    let envelope = unb64(&enc["data_b64"]);
    assert_eq!(&envelope[..4], b"OKE1");
    let dec = ask(&format!(
        r#"{{"op":"decrypt","key":"app","data_b64":"{}"}}"#,
        b64(&envelope)
    ));
    assert_eq!(unb64(&dec["data_b64"]), b"hello agent", "{dec}");

    // Not permitted: another operation, a key not named, a missing key.
    for line in [
        format!(r#"{{"op":"sign","key":"app","data_b64":"{}"}}"#, b64(b"x")),
        format!(
            r#"{{"op":"encrypt","key":"hidden","data_b64":"{}"}}"#,
            b64(b"x")
        ),
        r#"{"op":"derive","key":"signer","context":"c"}"#.to_owned(),
        format!(
            r#"{{"op":"encrypt","key":"nothing","data_b64":"{}"}}"#,
            b64(b"x")
        ),
    ] {
        let r = ask(&line);
        assert_eq!(r["ok"], false, "{line}: {r}");
        assert_eq!(r["code"], "not_permitted", "{line}: {r}");
        assert!(r.get("data_b64").is_none(), "{r}");
    }
    // Malformed lines: an error answer each, and the connection goes on.
    for line in [
        "this is not json",
        r#"{"op":"encrypt"}"#,
        r#"{"op":"export","key":"app"}"#,
        r#"{"id":"x","op":"decrypt","key":"app","data_b64":"***"}"#,
    ] {
        let r = ask(line);
        assert_eq!(r["ok"], false, "{line}: {r}");
        assert_eq!(r["code"], "bad_request", "{line}: {r}");
    }
    // A tampered envelope is refused.
    let mut bad = envelope.clone();
    bad[30] ^= 1;
    let r = ask(&format!(
        r#"{{"op":"decrypt","key":"app","data_b64":"{}"}}"#,
        b64(&bad)
    ));
    assert_eq!(r["code"], "refused", "{r}");

    // Sign and verify; the public key.
    let sig = ask(&format!(
        r#"{{"op":"sign","key":"signer","data_b64":"{}"}}"#,
        b64(b"msg")
    ));
    assert_eq!(sig["ok"], true, "{sig}");
    let ok = ask(&format!(
        r#"{{"op":"verify","key":"signer","data_b64":"{}","signature_b64":"{}"}}"#,
        b64(b"msg"),
        sig["signature_b64"].as_str().expect("signature")
    ));
    assert_eq!(ok["valid"], true, "{ok}");
    let no = ask(&format!(
        r#"{{"op":"verify","key":"signer","data_b64":"{}","signature_b64":"{}"}}"#,
        b64(b"msg2"),
        sig["signature_b64"].as_str().expect("signature")
    ));
    assert_eq!(
        (no["ok"].as_bool(), no["code"].as_str()),
        (Some(false), Some("refused"))
    );
    let pk = ask(r#"{"op":"public","key":"signer"}"#);
    assert_eq!(unb64(&pk["public_key_b64"]).len(), 32, "{pk}");

    // While this connection is open, the agent serves the CLI too; the CLI
    // decrypts the agent's envelope and rotates the key.
    let plain = nopw(&env, &["key", "decrypt", "app"])
        .stdin(b64(&envelope).into_bytes())
        .stdout();
    assert_eq!(plain, "hello agent");
    nopw(&env, &["key", "rotate", "app"]).ok();
    let enc2 = ask(&format!(
        r#"{{"op":"encrypt","key":"app","data_b64":"{}"}}"#,
        b64(b"two")
    ));
    assert_eq!(enc2["version"], 2, "{enc2}");
    let dec1 = ask(&format!(
        r#"{{"op":"decrypt","key":"app","data_b64":"{}"}}"#,
        b64(&envelope)
    ));
    assert_eq!(unb64(&dec1["data_b64"]), b"hello agent", "{dec1}");
}

// Without [agent.keys], the agent performs no key operation at all.
#[test]
fn without_agent_keys_in_the_config_nothing_is_permitted() {
    let env = TestEnv::init();
    env.run(&["key", "create", "app", "--type", "xchacha20"]);
    let _locker = unlock(&env, &[]);
    let socket = sockets(&run_dir(&env)).pop().expect("the agent's socket");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
    for op in ["encrypt", "decrypt", "info", "public", "derive"] {
        let r = key_request(
            &mut stream,
            &mut reader,
            &format!(r#"{{"op":"{op}","key":"app","data_b64":"","context":"c"}}"#),
        );
        assert_eq!(r["code"], "not_permitted", "{op}: {r}");
    }
}
