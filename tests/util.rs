//! The harness for end-to-end tests (in the style of ripgrep's `tests/util.rs`):
//! every test gets a private temporary directory used as HOME and as the vault
//! directory, runs the real `openk` binary in it with a clean environment, and
//! gets a readable panic (command, exit code, stdout, stderr) when a command
//! does not end the way the test expected.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openk_server::Settings;
use serde_json::Value as Json;

/// The PostgreSQL drop guard the server's tests use too.
#[path = "../server/tests/common/pg.rs"]
mod pg;
pub use pg::PgDatabase;

/// The master password every test vault starts with.
pub const PASSWORD: &str = "test-master-pw-Q7zX9k";

/// The cheapest KDF parameters that are not below the floor. Tests never use
/// the 256 MiB default.
pub const KDF_FLOOR: [&str; 6] = [
    "--kdf-memory-mib",
    "19",
    "--kdf-iterations",
    "2",
    "--kdf-parallelism",
    "1",
];

/// No command of the suite may take longer than this.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A TCP port that was free a moment ago (for servers the test starts).
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Path of the `openk` binary cargo built for this test run.
#[must_use]
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_openk"))
}

/// A temporary HOME with a vault directory in it.
pub struct TestEnv {
    tmp: tempfile::TempDir,
    password: String,
    secret_key: Option<String>,
    account_id: Option<String>,
}

impl TestEnv {
    /// A fresh directory without a vault.
    #[must_use]
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("openk-it-")
            .tempdir()
            .expect("create a temporary directory");
        Self {
            tmp,
            password: PASSWORD.to_owned(),
            secret_key: None,
            account_id: None,
        }
    }

    /// A fresh directory with an initialised vault (floor KDF parameters and
    /// the kit written to `<tmp>/kit.txt`).
    #[must_use]
    pub fn init() -> Self {
        let mut env = Self::new();
        let kit = env.kit_path();
        let out = env
            .cmd(["--json", "init"])
            .args(KDF_FLOOR)
            .arg("--kit")
            .arg(&kit)
            .json();
        env.secret_key = Some(
            out["secret_key"]
                .as_str()
                .expect("init --json has secret_key")
                .to_owned(),
        );
        env.account_id = Some(
            out["account_id"]
                .as_str()
                .expect("init --json has account_id")
                .to_owned(),
        );
        env
    }

    /// The temporary directory (HOME).
    #[must_use]
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// The data directory (`OPENK_HOME` of every command).
    #[must_use]
    pub fn vault(&self) -> PathBuf {
        self.root().join("vault")
    }

    /// Where [`TestEnv::init`] writes the Emergency Kit.
    #[must_use]
    pub fn kit_path(&self) -> PathBuf {
        self.root().join("kit.txt")
    }

    /// The vault database file.
    #[must_use]
    pub fn db(&self) -> PathBuf {
        self.vault().join("vault.db")
    }

    /// The master password commands get through `OPENK_PASSWORD`.
    #[must_use]
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Changes the password given to later commands (after `openk passwd`).
    pub fn set_password(&mut self, password: &str) {
        password.clone_into(&mut self.password);
    }

    /// The Secret Key printed by [`TestEnv::init`].
    #[must_use]
    pub fn secret_key(&self) -> &str {
        self.secret_key
            .as_deref()
            .expect("the vault was made by TestEnv::init")
    }

    /// The account id printed by [`TestEnv::init`].
    #[must_use]
    pub fn account_id(&self) -> &str {
        self.account_id
            .as_deref()
            .expect("the vault was made by TestEnv::init")
    }

    /// `openk ARGS` with a clean environment: no inherited `OPENK_*`
    /// variable, HOME and XDG dirs inside the temp dir, `OPENK_HOME` set to
    /// the data dir, `OPENK_PASSWORD` to the master password, stdin empty
    /// (not a terminal).
    pub fn cmd<I, S>(&self, args: I) -> TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bin());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("OPENK_") {
                cmd.env_remove(&key);
            }
        }
        let root = self.root();
        cmd.current_dir(root)
            .env("HOME", root)
            .env("XDG_DATA_HOME", root.join(".local/share"))
            .env("XDG_STATE_HOME", root.join(".local/state"))
            .env("XDG_CONFIG_HOME", root.join(".config"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env("OPENK_HOME", self.vault())
            .env("OPENK_PASSWORD", &self.password);
        TestCommand {
            cmd,
            stdin: None,
            args: Vec::new(),
            literal: false,
        }
        .args(args)
    }

    /// Runs `openk ARGS`, expects exit 0 and returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        self.cmd(args).stdout()
    }

    /// Runs `openk ARGS` with `--json`, expects exit 0 and parses stdout.
    pub fn json(&self, args: &[&str]) -> Json {
        self.cmd(["--json"]).args(args).json()
    }

    /// Runs `openk add ARGS` and returns the new item's id.
    pub fn add(&self, args: &[&str]) -> String {
        let item = self.cmd(["--json", "add"]).args(args).json();
        item["id"]
            .as_str()
            .expect("add --json has an id")
            .to_owned()
    }

    /// Names of the items `openk ls --json EXTRA` lists, in order.
    pub fn ls_names(&self, extra: &[&str]) -> Vec<String> {
        let out = self.cmd(["--json", "ls"]).args(extra).json();
        names(&out["items"])
    }

    /// Makes sure every committed change is in vault.db itself: a clean open
    /// and close of the vault checkpoints a WAL that an earlier command left
    /// behind (see `vault::writes_are_in_vault_db_when_the_command_exits`).
    pub fn settle(&self) {
        for _ in 0..5 {
            if !self.vault().join("vault.db-wal").exists() {
                return;
            }
            self.cmd(["ls"]).ok();
        }
        panic!("vault.db-wal is still there after 5 runs of `openk ls`");
    }

    /// Every file below the vault directory, recursively.
    #[must_use]
    pub fn vault_files(&self) -> Vec<PathBuf> {
        files_below(&self.vault())
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// Every file below `dir`, recursively, sorted.
#[must_use]
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `name` of each item in a JSON `items` array.
#[must_use]
pub fn names(items: &Json) -> Vec<String> {
    items
        .as_array()
        .expect("an items array")
        .iter()
        .map(|i| i["name"].as_str().expect("an item name").to_owned())
        .collect()
}

/// Flags whose value is a secret, which `openk` takes only as `-`, `@FILE`,
/// `env:NAME` or `prompt` (docs/cli.md, "Secrets on the command line").
const SECRET_FLAGS: [&str; 8] = [
    "--password",
    "--totp",
    "--number",
    "--cvv",
    "--pin",
    "--key",
    "--passphrase",
    "--secret-key",
];

/// Whether `value` already says where to read a secret from.
fn is_source(value: &str) -> bool {
    value == "-" || value == "prompt" || value.starts_with('@') || value.starts_with("env:")
}

/// The arguments as `openk` gets them: a literal secret after a secret flag
/// (`--password pw`, `--password=pw`, `--secret-field L=pw`) becomes
/// `env:OPENK_TEST_SECRET_<n>`, with that variable set to the value, so
/// that tests can write secrets plainly and still pass them the way users
/// must. Returns the arguments and the variables to set.
fn secret_args(args: &[OsString]) -> (Vec<OsString>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut envs = Vec::new();
    fn hide(value: &str, envs: &mut Vec<(String, String)>) -> String {
        if is_source(value) {
            return value.to_owned();
        }
        let name = format!("OPENK_TEST_SECRET_{}", envs.len());
        envs.push((name.clone(), value.to_owned()));
        format!("env:{name}")
    }
    // The flag whose value comes next, if any.
    let mut pending: Option<&str> = None;
    for arg in args {
        let Some(text) = arg.to_str() else {
            out.push(arg.clone());
            pending = None;
            continue;
        };
        if let Some(flag) = pending.take()
            && !text.starts_with("--")
        {
            let value = if flag == "--secret-field" {
                match text.split_once('=') {
                    Some((label, v)) => format!("{label}={}", hide(v, &mut envs)),
                    None => text.to_owned(),
                }
            } else {
                hide(text, &mut envs)
            };
            out.push(value.into());
            continue;
        }
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (text, None),
        };
        if SECRET_FLAGS.contains(&flag) || flag == "--secret-field" {
            match inline {
                None => pending = Some(flag),
                Some(v) if flag == "--secret-field" => {
                    let value = match v.split_once('=') {
                        Some((label, v)) => format!("{label}={}", hide(v, &mut envs)),
                        None => v.to_owned(),
                    };
                    out.push(format!("{flag}={value}").into());
                    continue;
                }
                Some(v) => {
                    out.push(format!("{flag}={}", hide(v, &mut envs)).into());
                    continue;
                }
            }
        }
        out.push(arg.clone());
    }
    (out, envs)
}

/// One `openk` invocation being prepared.
pub struct TestCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    /// The arguments as the test wrote them (see [`secret_args`]).
    args: Vec<OsString>,
    /// Pass literal secrets as they are (to test that `openk` refuses them).
    literal: bool,
}

impl TestCommand {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Gives secret flags their values literally, as written, instead of
    /// through `env:` (for tests of the refusal).
    #[must_use]
    pub fn literal_secrets(mut self) -> Self {
        self.literal = true;
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Runs the command in `dir` instead of the temporary HOME.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Feeds these bytes on standard input (a pipe, not a terminal).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    fn final_args(&self) -> (Vec<OsString>, Vec<(String, String)>) {
        if self.literal {
            (self.args.clone(), Vec::new())
        } else {
            secret_args(&self.args)
        }
    }

    /// The command with its final arguments and environment.
    fn finish(mut self) -> (Command, Option<Vec<u8>>) {
        let (args, envs) = self.final_args();
        for (key, value) in envs {
            self.cmd.env(key, value);
        }
        self.cmd.args(args);
        (self.cmd, self.stdin)
    }

    /// The command line, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        let (args, envs) = self.final_args();
        let mut s = String::new();
        for (key, value) in &envs {
            s.push_str(&format!("{key}={value:?} "));
        }
        s.push_str(&describe_with(&self.cmd, &args));
        s
    }

    /// The underlying command (stdin null, output piped), for tests that
    /// manage the process themselves.
    #[must_use]
    pub fn into_command(self) -> Command {
        let (mut cmd, _) = self.finish();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the command to the end, whatever its exit code. Panics on a
    /// timeout, or when the process panicked.
    pub fn output(self) -> Run {
        let desc = self.describe();
        let (mut cmd, stdin) = self.finish();
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // The process may exit without reading everything; that is fine.
            let _ = pipe.write_all(&data);
        }
        let run = wait(child, desc);
        run.assert_no_panic();
        run
    }

    /// Runs the command and expects exit code 0.
    pub fn ok(self) -> Run {
        self.code(0)
    }

    /// Runs the command and expects exactly this exit code.
    pub fn code(self, code: i32) -> Run {
        let run = self.output();
        if run.code != Some(code) {
            panic!("expected exit code {code}\n{run}");
        }
        run
    }

    /// Runs the command and expects a non-zero exit code.
    pub fn fails(self) -> Run {
        let run = self.output();
        if run.code == Some(0) || run.code.is_none() {
            panic!("expected a failure exit code\n{run}");
        }
        run
    }

    /// Runs the command, expects exit 0 and returns stdout.
    pub fn stdout(self) -> String {
        self.ok().stdout
    }

    /// Runs the command, expects exit 0 and parses stdout as JSON.
    pub fn json(self) -> Json {
        self.ok().json()
    }
}

fn describe_with(cmd: &Command, args: &[OsString]) -> String {
    let mut s = String::new();
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        if key.starts_with("OPENK_") {
            match value {
                Some(v) => s.push_str(&format!("{key}={:?} ", v.to_string_lossy())),
                None => s.push_str(&format!("-u {key} ")),
            }
        }
    }
    s.push_str("openk");
    for arg in args {
        s.push(' ');
        s.push_str(&shell_quote(arg));
    }
    s
}

fn shell_quote(arg: &OsStr) -> String {
    let text = arg.to_string_lossy();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c))
    {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Waits for a spawned command (stdout and stderr piped), killing it after
/// the suite's timeout.
pub fn wait(mut child: Child, desc: String) -> Run {
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for openk") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed openk");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    let run = Run {
        desc,
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !timed_out,
        "did not finish within {TIMEOUT:?} (killed)\n{run}"
    );
    run
}

/// A finished command.
pub struct Run {
    pub desc: String,
    /// None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Parses stdout as JSON.
    #[must_use]
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }

    /// Asserts that stdout contains `needle`.
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts that stdout does not contain `needle`.
    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}\n{self}"
        );
        self
    }

    /// Asserts that stderr contains `needle`.
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    /// Asserts that stderr does not contain `needle`.
    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}\n{self}"
        );
        self
    }

    /// No Rust panic message, whatever the exit code.
    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "the process panicked\n{self}"
        );
        // Exit code 101 is what a Rust panic in main exits with.
        assert_ne!(self.code, Some(101), "the process panicked\n{self}");
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.desc,
            self.code
                .map_or_else(|| "killed by a signal".to_owned(), |c| c.to_string()),
            self.stdout,
            self.stderr
        )
    }
}

/// The Unix permission bits of a path.
#[must_use]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Sets the Unix permission bits of a path.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Whether `program` can be found on PATH.
#[must_use]
pub fn have(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Runs an external program and expects success; returns stdout.
pub fn external<S: AsRef<OsStr> + fmt::Debug>(program: &str, args: &[S]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {:?} failed: {}\n{}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shortest prefix (4+ characters) of `id` that none of `others` shares.
#[must_use]
pub fn unique_prefix(id: &str, others: &[&str]) -> String {
    let common = others
        .iter()
        .filter(|o| **o != id)
        .map(|o| {
            id.bytes()
                .zip(o.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0);
    id[..(common + 1).max(4)].to_owned()
}

/// The name and bytes of every file directly in `dir`, sorted by name.
#[must_use]
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("read a file");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Fails, saying which file differs and where, unless both snapshots match.
pub fn assert_same_files(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)]) {
    let names = |s: &[(String, Vec<u8>)]| {
        s.iter()
            .map(|(n, b)| format!("{n} ({} bytes)", b.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(before), names(after), "the files changed");
    for ((name, a), (_, b)) in before.iter().zip(after) {
        if a != b {
            let at = a.iter().zip(b).position(|(x, y)| x != y);
            panic!("{name} changed (first difference at byte {at:?})");
        }
    }
}

/// A server on 127.0.0.1:<random port>, in this process (its own runtime
/// on a thread), stopped on drop.
pub struct LocalServer {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LocalServer {
    pub fn start() -> Self {
        Self::with(Settings::for_tests())
    }

    pub fn with(settings: Settings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let state = openk_server::build_state(settings)
                    .await
                    .expect("server state");
                openk_server::serve_listener(state, listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            });
        });
        Self {
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A server on an SQLite file (so a test can look into the database).
    pub fn sqlite(db: &Path) -> Self {
        Self::with(Settings {
            database: format!("sqlite://{}", db.display()),
            ..Settings::for_tests()
        })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
