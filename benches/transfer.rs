//! Moving in and out at scale (issue 14), through the real `openk` binary:
//! a KeePassXC XML export of 10 000 entries imported (budget < 10 s), a
//! CSV of 100 000 logins imported (budget < 60 s, peak RSS < 300 MB), and
//! an encrypted export of the 100 000-item vault (budget < 20 s).
//!
//! `cargo bench --bench transfer [-- XML_SIZE CSV_SIZE]` prints a table
//! and writes `target/bench-transfer.json`. Each command is one process
//! whose peak RSS is its `VmHWM`, read from /proc while it runs (every
//! 10 ms; the mark only rises, so the last reading is the peak but for
//! the last 10 ms). The vault uses the floor KDF: one unlock per command
//! (~0.1 s) is part of every figure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

#[path = "common/harness.rs"]
mod harness;
#[path = "common/stats.rs"]
mod stats;

use harness::{PASSWORD, parse_size, target_dir};
use stats::{loadavg, verdict};

const BUDGET_XML_10K_S: f64 = 10.0;
const BUDGET_CSV_100K_S: f64 = 60.0;
const BUDGET_CSV_RSS_MB: f64 = 300.0;
const BUDGET_EXPORT_100K_S: f64 = 20.0;

/// The archive passphrase the export uses.
const ARCHIVE_PASSPHRASE: &str = "bench archive passphrase";

struct Run {
    secs: f64,
    peak_mb: f64,
    stdout: String,
}

fn openk(home: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openk"));
    cmd.args(args)
        .env("HOME", home)
        .env("OPENK_HOME", home.join("vault"))
        .env("OPENK_PASSWORD", PASSWORD)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env_remove("OPENK_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("run openk");
    if let Some(text) = stdin {
        use std::io::Write as _;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    // Read stdout as it comes: a report larger than the pipe would block
    // the child otherwise.
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let secs = start.elapsed().as_secs_f64();
    let out = child.wait_with_output().expect("output");
    assert!(
        status.success(),
        "openk {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        secs,
        peak_mb: peak_kb as f64 / 1024.0,
        stdout: reader.join().unwrap_or_default(),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A KeePass 2 XML export as KeePassXC writes it: `n` entries in 20
/// groups, each with a custom attribute, and every tenth with a history
/// entry.
fn keepass_xml(n: usize) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<KeePassFile>\n\
         <Meta><Generator>KeePassXC</Generator><DatabaseName>bench</DatabaseName></Meta>\n\
         <Root><Group><UUID>AAAAAAAAAAAAAAAAAAAAAA==</UUID><Name>Root</Name>\n",
    );
    let entry = |out: &mut String, i: usize, version: usize| {
        let uuid = data_encoding::BASE64.encode(&(i as u128).to_be_bytes());
        let _ = write!(
            out,
            "<Entry><UUID>{uuid}</UUID><Tags>bench;group{g}</Tags>\
             <Times><CreationTime>2024-01-02T03:04:05Z</CreationTime>\
             <LastModificationTime>2024-0{m}-02T03:04:05Z</LastModificationTime>\
             <Expires>False</Expires></Times>\
             <String><Key>Title</Key><Value>service {i:06}</Value></String>\
             <String><Key>UserName</Key><Value>user{i}@example.org</Value></String>\
             <String><Key>Password</Key><Value ProtectInMemory=\"True\">{pw}</Value></String>\
             <String><Key>URL</Key><Value>https://service{i}.example.org/login</Value></String>\
             <String><Key>Notes</Key><Value>{notes}</Value></String>\
             <String><Key>PIN</Key><Value ProtectInMemory=\"True\">{pin:04}</Value></String>",
            g = i % 20,
            m = 1 + version,
            pw = xml_escape(&format!("pw<{i}>&{version}-{}", i * 7919)),
            notes = xml_escape(&format!("line one of {i}\nline two & more")),
            pin = i % 10_000,
        );
    };
    let mut current_group = usize::MAX;
    for i in 0..n {
        if i % (n / 20).max(1) == 0 {
            if current_group != usize::MAX {
                out.push_str("</Group>\n");
            }
            current_group = i;
            let uuid = data_encoding::BASE64.encode(&((1u128 << 100) + i as u128).to_be_bytes());
            let _ = writeln!(
                out,
                "<Group><UUID>{uuid}</UUID><Name>Group {}</Name>",
                i / (n / 20).max(1)
            );
        }
        entry(&mut out, i, 1);
        if i % 10 == 0 {
            out.push_str("<History>");
            entry(&mut out, i, 0);
            out.push_str("</Entry></History>");
        }
        out.push_str("</Entry>\n");
    }
    if current_group != usize::MAX {
        out.push_str("</Group>\n");
    }
    out.push_str("</Group></Root>\n</KeePassFile>\n");
    out
}

/// A Chrome password CSV of `n` logins.
fn chrome_csv(n: usize) -> String {
    let mut out = String::from("name,url,username,password,note\n");
    for i in 0..n {
        let _ = writeln!(
            out,
            "service{i}.example.org,https://service{i}.example.org/login,user{i}@example.org,\"pw,{i}\"\"-{}\",",
            i * 7919
        );
    }
    out
}

fn imported(run: &Run) -> u64 {
    serde_json::from_str::<serde_json::Value>(&run.stdout)
        .ok()
        .and_then(|v| v["imported"].as_array().map(|a| a.len() as u64))
        .unwrap_or(0)
}

fn init(home: &Path) {
    openk(
        home,
        &[
            "init",
            "--kdf-memory-mib",
            "19",
            "--kdf-iterations",
            "2",
            "--kdf-parallelism",
            "1",
            "--kit",
            &home.join("kit.txt").display().to_string(),
        ],
        None,
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let xml_n = args.first().and_then(|a| parse_size(a)).unwrap_or(10_000);
    let csv_n = args.get(1).and_then(|a| parse_size(a)).unwrap_or(100_000);
    let tmp = tempfile::tempdir().expect("tmp");

    // A CSV of csv_n logins into a new vault, then the vault exported.
    let csv_home = tmp.path().join("csv");
    std::fs::create_dir_all(&csv_home).expect("mkdir");
    init(&csv_home);
    let csv_path = csv_home.join("passwords.csv");
    std::fs::write(&csv_path, chrome_csv(csv_n)).expect("write csv");
    let csv = openk(
        &csv_home,
        &["--json", "import", &csv_path.display().to_string()],
        None,
    );
    assert_eq!(imported(&csv), csv_n as u64, "every CSV row imported");
    let archive: PathBuf = csv_home.join("vault.openk");
    let export = openk(
        &csv_home,
        &[
            "export",
            "--format",
            "openk",
            "--passphrase-stdin",
            &archive.display().to_string(),
        ],
        Some(&format!("{ARCHIVE_PASSPHRASE}\n")),
    );

    // A KeePassXC XML export of xml_n entries into another new vault.
    let xml_home = tmp.path().join("xml");
    std::fs::create_dir_all(&xml_home).expect("mkdir");
    init(&xml_home);
    let xml_path = xml_home.join("export.xml");
    std::fs::write(&xml_path, keepass_xml(xml_n)).expect("write xml");
    let xml = openk(
        &xml_home,
        &["--json", "import", &xml_path.display().to_string()],
        None,
    );
    assert_eq!(imported(&xml), xml_n as u64, "every XML entry imported");

    let scale = |budget: f64, n: usize, of: usize| budget * n as f64 / of as f64;
    let rows = [
        (
            format!("KeePassXC XML import, {xml_n} entries"),
            xml.secs,
            xml.peak_mb,
            scale(BUDGET_XML_10K_S, xml_n, 10_000),
            f64::NAN,
        ),
        (
            format!("Chrome CSV import, {csv_n} logins"),
            csv.secs,
            csv.peak_mb,
            scale(BUDGET_CSV_100K_S, csv_n, 100_000),
            BUDGET_CSV_RSS_MB,
        ),
        (
            format!("openk archive export, {csv_n} items"),
            export.secs,
            export.peak_mb,
            scale(BUDGET_EXPORT_100K_S, csv_n, 100_000),
            f64::NAN,
        ),
    ];
    println!(
        "{:<40} {:>9} {:>10} {:>10} {:>8}",
        "what", "seconds", "peak MB", "budget s", "verdict"
    );
    let mut results = Vec::new();
    for (what, secs, mb, budget, rss_budget) in &rows {
        let ok = secs < budget && (rss_budget.is_nan() || mb < rss_budget);
        println!(
            "{what:<40} {secs:>9.2} {mb:>10.1} {budget:>10.1} {:>8}",
            verdict(ok)
        );
        results.push(json!({
            "what": what, "seconds": secs, "peak_rss_mb": mb,
            "budget_seconds": budget,
            "budget_rss_mb": (!rss_budget.is_nan()).then_some(*rss_budget),
            "ok": ok,
        }));
    }
    println!("load average: {}", loadavg());
    let out = target_dir(Path::new(&std::env::args().next().unwrap_or_default()))
        .join("bench-transfer.json");
    let _ = std::fs::write(
        &out,
        serde_json::to_string_pretty(&json!({"load": loadavg(), "results": results}))
            .unwrap_or_default(),
    );
}
