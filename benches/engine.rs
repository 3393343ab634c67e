//! Engine benchmark: bulk add, open, `ls`, search (fresh and as-you-type),
//! `show`, recording a use and `ls` by use, peak memory and KDF cost, for vaults of 1k, 10k and 100k items,
//! measured through the engine API only.
//!
//! ```text
//! cargo bench --bench engine               # 1000 10000 100000
//! cargo bench --bench engine -- 1000 20k   # other sizes
//! ```
//!
//! Each size runs in two child processes (this binary re-executed), so that
//! `VmHWM` (a process-wide high-water mark) belongs to one phase of one size:
//! `--child-populate DIR N` creates the vault and adds N items, then
//! `--child-measure DIR N` unlocks it and measures open, ls, search and show.
//! Each child prints one `BENCH_JSON {...}` line; the parent prints a table
//! and writes the same figures to `<target>/bench-engine.json`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use openk::engine::search::Query;
use openk::engine::{ItemDraft, ListOrder, Session};
use openk::engine::{KdfParams, kdf};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};
use uuid::Uuid;

#[path = "common/logins.rs"]
mod logins;
use logins::{FOLDERS, TAGS, login_draft, pick};
#[path = "common/harness.rs"]
mod harness;
use harness::{parse_size, password, sizes, target_dir};
#[path = "common/stats.rs"]
mod stats;
use stats::{TINY_KDF, loadavg, ms, num, percentile, verdict};

/// Results a front end asks for per query (a screenful and then some).
const LIMIT: usize = 100;

/// Drafts per `add_many` call.
const BATCH: usize = 5_000;
const LS_RUNS: usize = 9;
const FRESH_QUERIES: usize = 300;
const TYPING_SESSIONS: usize = 50;
const SHOW_SAMPLES: usize = 300;
const KDF_DEFAULT_RUNS: usize = 3;
const KDF_FLOOR_RUNS: usize = 5;

/// Budgets (DESIGN: at 100k items).
const BUDGET_SEARCH_P99_MS: f64 = 10.0;
const BUDGET_OPEN_MS: f64 = 1000.0;
const BUDGET_RSS_MB: f64 = 200.0;
const BUDGET_SIZE: usize = 100_000;

const JSON_PREFIX: &str = "BENCH_JSON ";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(mode @ ("--child-populate" | "--child-measure")) => {
            let dir = PathBuf::from(args.get(1).expect("child: vault dir argument"));
            let n: usize = args
                .get(2)
                .and_then(|s| parse_size(s))
                .expect("child: size argument");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let out = if mode == "--child-populate" {
                rt.block_on(populate(&dir, n))
            } else {
                rt.block_on(measure(&dir, n))
            };
            println!("{JSON_PREFIX}{out}");
        }
        _ => parent(&args),
    }
}

/// `KdfParams`' Display rounds to MiB; the benchmark vault uses KiB.
fn kdf_desc(k: &KdfParams) -> String {
    format!(
        "Argon2id m={} KiB, t={}, p={}",
        k.memory_kib, k.iterations, k.parallelism
    )
}

/// A line of /proc/self/status (`VmHWM`, `VmRSS`), in MiB (reported as MB).
fn proc_status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn stats(samples_ms: &[f64]) -> Json {
    let mut v = samples_ms.to_vec();
    v.sort_by(f64::total_cmp);
    json!({
        "n": v.len(),
        "p50_ms": percentile(&v, 50.0),
        "p90_ms": percentile(&v, 90.0),
        "p99_ms": percentile(&v, 99.0),
        "max_ms": v.last().copied().unwrap_or(f64::NAN),
        "sum_ms": v.iter().sum::<f64>(),
    })
}

// ---------------------------------------------------------------------------
// Generated logins

// ---------------------------------------------------------------------------
// Wall clock and CPU time
//
// The machine may be busy with other work, which inflates wall-clock
// latencies. Besides wall time, every measurement records the CPU time of
// the whole process (all threads: tokio, rayon, the SQLite worker) and the
// time its threads spent runnable but waiting for a CPU, both from
// /proc/self/task/*/schedstat (nanoseconds).

#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    run_ns: u64,
    wait_ns: u64,
}

/// The kernel brings a thread's runtime up to date at a context switch or a
/// tick (4 ms at HZ=250); yielding first makes the calling thread's figure
/// current. Other threads are normally asleep (and so current) between
/// measurements.
fn cpu_now() -> Cpu {
    std::thread::yield_now();
    let mut c = Cpu::default();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return c;
    };
    for task in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
            c.run_ns += it.next().unwrap_or(0);
            c.wait_ns += it.next().unwrap_or(0);
        }
    }
    c
}

/// One measurement: wall, CPU (all threads) and run-queue wait, in ms.
#[derive(Debug, Clone, Copy, Default)]
struct Meas {
    wall: f64,
    cpu: f64,
    wait: f64,
}

struct Probe {
    cpu: Cpu,
    t: Instant,
}

impl Probe {
    fn start() -> Self {
        let cpu = cpu_now();
        Self {
            cpu,
            t: Instant::now(),
        }
    }

    /// `overhead` is the CPU cost of reading the counters (see [`probe_overhead`]).
    fn stop(self, overhead: f64) -> Meas {
        let wall = ms(self.t.elapsed());
        let c = cpu_now();
        let ns = |a: u64, b: u64| a.saturating_sub(b) as f64 / 1e6;
        Meas {
            wall,
            cpu: (ns(c.run_ns, self.cpu.run_ns) - overhead).max(0.0),
            wait: ns(c.wait_ns, self.cpu.wait_ns),
        }
    }
}

/// Median CPU time that a probe with nothing inside it reports.
fn probe_overhead() -> f64 {
    let mut v: Vec<f64> = (0..31).map(|_| Probe::start().stop(0.0).cpu).collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

#[derive(Debug, Default)]
struct Series {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    wait: Vec<f64>,
}

impl Series {
    fn push(&mut self, m: Meas) {
        self.wall.push(m.wall);
        self.cpu.push(m.cpu);
        self.wait.push(m.wait);
    }

    fn json(&self) -> Json {
        json!({
            "wall": stats(&self.wall),
            "cpu": stats(&self.cpu),
            "wait": stats(&self.wait),
        })
    }
}

fn meas_json(m: Meas) -> Json {
    json!({ "wall_ms": m.wall, "cpu_ms": m.cpu, "wait_ms": m.wait })
}

// ---------------------------------------------------------------------------
// Child: create the vault and add N items

async fn populate(dir: &Path, n: usize) -> Json {
    let mut rng = StdRng::seed_from_u64(0x0BE7_0C40 ^ n as u64);
    let overhead = probe_overhead();
    let p = Probe::start();
    let mut vault = Session::init(dir, password(), TINY_KDF)
        .await
        .expect("Vault::init");
    let init = p.stop(overhead);
    let mut batches = Series::default();
    let mut done = 0;
    while done < n {
        let k = BATCH.min(n - done);
        let drafts: Vec<ItemDraft> = (0..k).map(|_| login_draft(&mut rng)).collect();
        let p = Probe::start();
        let items = vault.add_many(drafts).await.expect("Vault::add_many");
        let m = p.stop(overhead);
        assert_eq!(items.len(), k, "add_many returned every item");
        drop(items);
        batches.push(m);
        done += k;
        eprintln!(
            "  [{n}] added {done}/{n} ({:.0} items/s this batch)",
            k as f64 / m.wall * 1000.0
        );
    }
    let p = Probe::start();
    vault.close().await;
    let close = p.stop(overhead);
    let wall: f64 = batches.wall.iter().sum();
    let cpu: f64 = batches.cpu.iter().sum();
    let wait: f64 = batches.wait.iter().sum();
    json!({
        "size": n,
        "init": meas_json(init),
        "add_total": meas_json(Meas { wall, cpu, wait }),
        "add_items_per_s": n as f64 / wall * 1000.0,
        "add_items_per_cpu_s": n as f64 / cpu * 1000.0,
        "batch_size": BATCH,
        "batch_wall_ms": batches.wall,
        "close": meas_json(close),
        "populate_vmhwm_mb": proc_status_mb("VmHWM"),
        "loadavg": loadavg(),
    })
}

// ---------------------------------------------------------------------------
// Child: open the vault and measure ls, search and show

/// What the query generators need from the loaded entries (a small sample,
/// copied so the vault can be borrowed mutably again).
struct Picks {
    names: Vec<String>,
    subtitles: Vec<String>,
    ids: Vec<Uuid>,
}

fn substring(rng: &mut StdRng, s: &str, min: usize, max: usize) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < min {
        return None;
    }
    let len = rng.gen_range(min..=max.min(chars.len()));
    let start = rng.gen_range(0..=chars.len() - len);
    let sub: String = chars[start..start + len].iter().collect();
    let sub = sub.trim().to_lowercase();
    (sub.chars().count() >= 2).then_some(sub)
}

/// Random 2–6 char substrings of names and usernames; about one in five
/// carries filters (or is filters only). Each comes with its category.
fn fresh_queries(rng: &mut StdRng, s: &Picks) -> Vec<(&'static str, String, Query)> {
    let mut out = Vec::with_capacity(FRESH_QUERIES);
    while out.len() < FRESH_QUERIES {
        let source = if rng.gen_bool(0.6) || s.subtitles.is_empty() {
            s.names.choose(rng)
        } else {
            s.subtitles.choose(rng)
        };
        let Some(text) = source.and_then(|src| substring(rng, src, 2, 6)) else {
            continue;
        };
        let (category, text) = match rng.gen_range(0..10) {
            0 => (
                "text+filters",
                format!("{text} kind:login tag:{}", pick(rng, TAGS)),
            ),
            1 => (
                "text+filters",
                format!("{text} folder:{}", pick(rng, FOLDERS)),
            ),
            2 if rng.gen_bool(0.5) => (
                "filters only",
                format!("kind:login tag:{}", pick(rng, TAGS)),
            ),
            _ => ("text", text),
        };
        let q = Query::parse(&text).expect("generated query parses");
        out.push((category, text, q));
    }
    out
}

/// What a user types, one char at a time: the start of a name or username,
/// sometimes after a filter that stays fixed while typing.
fn typing_sessions(rng: &mut StdRng, s: &Picks) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(TYPING_SESSIONS);
    while out.len() < TYPING_SESSIONS {
        let src = if rng.gen_bool(0.7) || s.subtitles.is_empty() {
            s.names.choose(rng)
        } else {
            s.subtitles.choose(rng)
        };
        let Some(src) = src else { break };
        let len = rng.gen_range(5..=12).min(src.chars().count());
        let typed: String = src.to_lowercase().chars().take(len).collect();
        let prefix = if rng.gen_bool(0.2) {
            format!("tag:{} ", pick(rng, TAGS))
        } else {
            String::new()
        };
        out.push((prefix, typed.trim_end().to_owned()));
    }
    out
}

/// The slowest sample of a series: time, query, hits.
#[derive(Debug, Default)]
struct Slowest {
    m: Meas,
    query: String,
    hits: usize,
}

impl Slowest {
    fn offer(&mut self, m: Meas, query: &str, hits: usize) {
        if m.wall > self.m.wall {
            *self = Self {
                m,
                query: query.to_owned(),
                hits,
            };
        }
    }

    fn json(&self) -> Json {
        json!({
            "wall_ms": self.m.wall,
            "cpu_ms": self.m.cpu,
            "wait_ms": self.m.wait,
            "query": self.query,
            "hits": self.hits,
        })
    }
}

async fn measure(dir: &Path, n: usize) -> Json {
    let mut rng = StdRng::seed_from_u64(0x05EA_2C40 ^ n as u64);
    let overhead = probe_overhead();
    let rss_before = proc_status_mb("VmRSS");

    // Open: unlock (tiny KDF) to the first `entries()` result.
    let p = Probe::start();
    let t0 = Instant::now();
    let mut vault = Session::unlock(dir, password(), None)
        .await
        .expect("Vault::unlock");
    let unlock = ms(t0.elapsed());
    let (picks, open) = {
        let (entries, damaged) = vault.entries().await.expect("Vault::entries");
        let open = p.stop(overhead);
        assert!(damaged.is_empty(), "no damaged items: {damaged:?}");
        assert_eq!(entries.len(), n, "every item loaded");
        let at: Vec<usize> = (0..SHOW_SAMPLES.max(FRESH_QUERIES + TYPING_SESSIONS))
            .map(|_| rng.gen_range(0..entries.len()))
            .collect();
        let picks = Picks {
            names: at
                .iter()
                .map(|&i| entries[i].overview.name.clone())
                .collect(),
            subtitles: at
                .iter()
                .filter_map(|&i| entries[i].overview.subtitle.clone())
                .collect(),
            ids: at.iter().map(|&i| entries[i].r.id).collect(),
        };
        (picks, open)
    };
    let rss_open = proc_status_mb("VmRSS");
    eprintln!(
        "  [{n}] opened in {:.1} ms (CPU {:.1} ms, waiting for a CPU {:.1} ms)",
        open.wall, open.cpu, open.wait
    );

    let fresh = fresh_queries(&mut rng, &picks);
    let typing = typing_sessions(&mut rng, &picks);
    // A filter-only query with no text: the next query cannot narrow from it.
    let reset = Query {
        trash: true,
        ..Query::default()
    };

    // First search after open: includes building the search index.
    let p = Probe::start();
    let first_hits = vault
        .search(&fresh[0].2, LIMIT)
        .await
        .expect("Vault::search")
        .total;
    let first_search = p.stop(overhead);
    let rss_index = proc_status_mb("VmRSS");

    // ls
    let mut ls = Series::default();
    let mut listed = 0;
    for _ in 0..LS_RUNS {
        let p = Probe::start();
        let (rows, _) = vault.list(&Query::default()).await.expect("Vault::list");
        listed = black_box(rows.len());
        ls.push(p.stop(overhead));
    }

    // Fresh queries, each after an unrelated one so nothing is narrowed.
    let mut fresh_s = Series::default();
    let mut by_category: Vec<(&str, Series, usize)> = ["text", "text+filters", "filters only"]
        .into_iter()
        .map(|c| (c, Series::default(), 0))
        .collect();
    let mut fresh_hits = 0usize;
    let mut slowest_fresh = Slowest::default();
    for (category, text, q) in &fresh {
        vault
            .search(&reset, LIMIT)
            .await
            .expect("Vault::search (reset)");
        let p = Probe::start();
        let hits = vault.search(q, LIMIT).await.expect("Vault::search").total;
        let m = p.stop(overhead);
        fresh_hits += hits;
        fresh_s.push(m);
        if let Some((_, series, h)) = by_category.iter_mut().find(|(c, _, _)| c == category) {
            series.push(m);
            *h += hits;
        }
        slowest_fresh.offer(m, text, hits);
    }
    let categories: serde_json::Map<String, Json> = by_category
        .iter()
        .map(|(c, series, hits)| {
            (
                (*c).to_owned(),
                json!({
                    "series": series.json(),
                    "mean_hits": *hits as f64 / series.wall.len().max(1) as f64,
                }),
            )
        })
        .collect();

    // Typing: one query per keystroke, extending the previous one.
    let mut keys = Series::default();
    let mut first_keys = Series::default();
    let mut later_keys = Series::default();
    let mut slowest_key = Slowest::default();
    for (prefix, word) in &typing {
        vault
            .search(&reset, LIMIT)
            .await
            .expect("Vault::search (reset)");
        let mut typed = prefix.clone();
        for (k, c) in word.chars().enumerate() {
            typed.push(c);
            let q = Query::parse(&typed).expect("typed query parses");
            let p = Probe::start();
            let hits = vault.search(&q, LIMIT).await.expect("Vault::search").total;
            let m = p.stop(overhead);
            keys.push(m);
            if k == 0 {
                first_keys.push(m);
            } else {
                later_keys.push(m);
            }
            slowest_key.offer(m, &typed, hits);
        }
    }

    // show: details decrypted.
    let mut show = Series::default();
    for id in picks.ids.iter().take(SHOW_SAMPLES) {
        let p = Probe::start();
        let item = vault.item(*id).await.expect("Vault::item");
        let m = p.stop(overhead);
        black_box(item.details.fields.len());
        drop(item);
        show.push(m);
    }

    // Usage: recording a use (`get`, `copy`), reading every count, and
    // `ls --sort used`.
    let mut record = Series::default();
    for id in picks.ids.iter().take(SHOW_SAMPLES) {
        let p = Probe::start();
        vault.record_use(*id).await;
        record.push(p.stop(overhead));
    }
    let p = Probe::start();
    let used = black_box(vault.usage().await.expect("Vault::usage").len());
    let usage_read = p.stop(overhead);
    let mut ls_used = Series::default();
    for _ in 0..3 {
        let p = Probe::start();
        let (rows, _) = vault
            .list_by(&Query::default(), ListOrder::Used)
            .await
            .expect("Vault::list_by");
        black_box(rows.len());
        ls_used.push(p.stop(overhead));
    }

    let hwm = proc_status_mb("VmHWM");
    let rss_end = proc_status_mb("VmRSS");
    vault.close().await;
    json!({
        "size": n,
        "probe_overhead_cpu_ms": overhead,
        "unlock_wall_ms": unlock,
        "open": meas_json(open),
        "load_wall_ms": open.wall - unlock,
        "first_search": meas_json(first_search),
        "first_search_hits": first_hits,
        "ls": { "runs": LS_RUNS, "listed": listed, "series": ls.json() },
        "search_fresh": {
            "series": fresh_s.json(),
            "mean_hits": fresh_hits as f64 / fresh.len().max(1) as f64,
            "slowest": slowest_fresh.json(),
            "by_category": categories,
        },
        "search_typing": {
            "sessions": typing.len(),
            "series": keys.json(),
            "first_keystroke": first_keys.json(),
            "later_keystrokes": later_keys.json(),
            "slowest": slowest_key.json(),
        },
        "show": show.json(),
        "record_use": record.json(),
        "usage_read": meas_json(usage_read),
        "usage_items": used,
        "ls_by_use": ls_used.json(),
        "rss_before_open_mb": rss_before,
        "rss_after_open_mb": rss_open,
        "rss_after_index_mb": rss_index,
        "rss_end_mb": rss_end,
        "vmhwm_mb": hwm,
        "loadavg": loadavg(),
    })
}

// ---------------------------------------------------------------------------
// Parent: run the children, time the KDF, report

fn run_child(exe: &Path, mode: &str, dir: &Path, n: usize) -> Json {
    let out = Command::new(exe)
        .arg(mode)
        .arg(dir)
        .arg(n.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the benchmark child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {mode} {n} failed ({}):\n{stdout}",
        out.status
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(JSON_PREFIX))
        .map(|j| serde_json::from_str(j).expect("child JSON parses"))
        .expect("child printed its JSON line")
}

fn kdf_timing(params: KdfParams, runs: usize) -> Json {
    let pw = password();
    let salt = [7u8; kdf::SALT_LEN];
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let key = kdf::password_key(&pw, &salt, &params).expect("password_key");
        times.push(t.elapsed());
        drop(black_box(key));
    }
    let mut v: Vec<f64> = times.into_iter().map(ms).collect();
    v.sort_by(f64::total_cmp);
    json!({
        "params": kdf_desc(&params),
        "memory_kib": params.memory_kib,
        "iterations": params.iterations,
        "parallelism": params.parallelism,
        "runs_ms": v,
        "median_ms": percentile(&v, 50.0),
    })
}

fn parent(args: &[String]) {
    let sizes = sizes(args);
    let exe = std::env::current_exe().expect("current_exe");
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    eprintln!("OpenK engine benchmark: sizes {sizes:?}, {cpus} CPUs");

    let mut rows = Vec::new();
    for &n in &sizes {
        let tmp = tempfile::Builder::new()
            .prefix("openk-bench-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().join("vault");
        eprintln!("[{n}] populating");
        let pop = run_child(&exe, "--child-populate", &dir, n);
        let db_bytes: u64 = ["vault.db", "vault.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum();
        eprintln!("[{n}] measuring");
        let meas = run_child(&exe, "--child-measure", &dir, n);
        rows.push(json!({
            "size": n,
            "db_mb": db_bytes as f64 / 1_048_576.0,
            "populate": pop,
            "measure": meas,
        }));
    }

    eprintln!("KDF: {KDF_FLOOR_RUNS} x {}", kdf_desc(&KdfParams::FLOOR));
    let kdf_floor = kdf_timing(KdfParams::FLOOR, KDF_FLOOR_RUNS);
    eprintln!(
        "KDF: {KDF_DEFAULT_RUNS} x {}",
        kdf_desc(&KdfParams::DEFAULT)
    );
    let kdf_default = kdf_timing(KdfParams::DEFAULT, KDF_DEFAULT_RUNS);

    // Budgets, per size (they are set for 100k; smaller sizes show the trend).
    // Judged on wall time; CPU time (all threads) is shown beside it because
    // a busy machine inflates wall time but not CPU time.
    let mut budgets = Vec::new();
    for r in &rows {
        let n = r["size"].as_u64().unwrap_or(0);
        let checks = [
            (
                "search fresh p99 < 10 ms",
                num(r, "/measure/search_fresh/series/wall/p99_ms"),
                num(r, "/measure/search_fresh/series/cpu/p99_ms"),
                BUDGET_SEARCH_P99_MS,
            ),
            (
                "search typing p99 < 10 ms",
                num(r, "/measure/search_typing/series/wall/p99_ms"),
                num(r, "/measure/search_typing/series/cpu/p99_ms"),
                BUDGET_SEARCH_P99_MS,
            ),
            (
                "open < 1 s",
                num(r, "/measure/open/wall_ms"),
                num(r, "/measure/open/cpu_ms"),
                BUDGET_OPEN_MS,
            ),
            (
                "peak RSS (VmHWM) < 200 MB",
                num(r, "/measure/vmhwm_mb"),
                f64::NAN,
                BUDGET_RSS_MB,
            ),
        ];
        for (what, value, cpu, limit) in checks {
            budgets.push(json!({
                "size": n,
                "budget": what,
                "value": value,
                "cpu_ms": cpu,
                "limit": limit,
                "pass": value < limit,
                "pass_by_cpu": cpu < limit,
                "binding": n as usize >= BUDGET_SIZE,
            }));
        }
    }

    let report = render(&rows, &budgets, &kdf_default, &kdf_floor, cpus);
    println!("{report}");

    let json = json!({
        "benchmark": "openk engine",
        "cpus": cpus,
        "vault_kdf": kdf_desc(&TINY_KDF),
        "batch_size": BATCH,
        "fresh_queries": FRESH_QUERIES,
        "typing_sessions": TYPING_SESSIONS,
        "show_samples": SHOW_SAMPLES,
        "sizes": rows,
        "budgets": budgets,
        "kdf": { "default": kdf_default, "floor": kdf_floor },
    });
    let path = target_dir(&exe).join("bench-engine.json");
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("serialise report"),
    ) {
        Ok(()) => println!("JSON written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

fn pair(r: &Json, path: &str) -> String {
    format!(
        "{:.2}/{:.2}",
        num(r, &format!("{path}/p50_ms")),
        num(r, &format!("{path}/p99_ms"))
    )
}

fn render(
    rows: &[Json],
    budgets: &[Json],
    kdf_default: &Json,
    kdf_floor: &Json,
    cpus: usize,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nOpenK engine benchmark ({cpus} CPUs; vault KDF {}; add batches of {BATCH}; \
         {FRESH_QUERIES} fresh queries, {TYPING_SESSIONS} typing sessions, {SHOW_SAMPLES} shows)",
        kdf_desc(&TINY_KDF)
    );
    let header = |s: &mut String, title: &str, add: &str| {
        let _ = writeln!(s, "\n{title}");
        let _ = writeln!(
            s,
            "{:>7} {:>11} {:>8} {:>7} {:>8} {:>13} {:>13} {:>11} {:>9} {:>8} {:>7} {:>7} {:>6}",
            "size",
            add,
            "open ms",
            "ls ms",
            "1st srch",
            "fresh p50/99",
            "typing p50/99",
            "show p50/99",
            "RSS open",
            "VmHWM",
            "add HWM",
            "db MB",
            "load",
        );
        let _ = writeln!(s, "{}", "-".repeat(131));
    };
    for (title, add, kind) in [
        ("Wall clock (ms; MB)", "add item/s", "wall"),
        (
            "CPU time, all threads (ms; the same work on a busy machine costs the same CPU)",
            "item/CPU-s",
            "cpu",
        ),
    ] {
        header(&mut s, title, add);
        for r in rows {
            let m = |p: &str| format!("/measure{p}");
            let (add_rate, open, first) = if kind == "wall" {
                (
                    "/populate/add_items_per_s",
                    "/open/wall_ms",
                    "/first_search/wall_ms",
                )
            } else {
                (
                    "/populate/add_items_per_cpu_s",
                    "/open/cpu_ms",
                    "/first_search/cpu_ms",
                )
            };
            let _ = writeln!(
                s,
                "{:>7} {:>11.0} {:>8.1} {:>7.2} {:>8.2} {:>13} {:>13} {:>11} {:>9.1} {:>8.1} {:>7.1} {:>7.1} {:>6}",
                r["size"].as_u64().unwrap_or(0),
                num(r, add_rate),
                num(r, &m(open)),
                num(r, &m(&format!("/ls/series/{kind}/p50_ms"))),
                num(r, &m(first)),
                pair(r, &m(&format!("/search_fresh/series/{kind}"))),
                pair(r, &m(&format!("/search_typing/series/{kind}"))),
                pair(r, &m(&format!("/show/{kind}"))),
                num(r, "/measure/rss_after_open_mb"),
                num(r, "/measure/vmhwm_mb"),
                num(r, "/populate/populate_vmhwm_mb"),
                num(r, "/db_mb"),
                r["measure"]["loadavg"].as_str().unwrap_or("?"),
            );
        }
    }
    let _ = writeln!(
        s,
        "\n  open = Session::unlock .. first entries() (warm page cache); ls = median of {LS_RUNS}; \
         1st srch = first search after open,\n  which builds the search index; RSS open = VmRSS \
         right after open; VmHWM = peak of the measuring process;\n  add HWM = peak of the \
         populating process; load = 1-min load average during the run."
    );
    let _ = writeln!(s, "\nDetail");
    for r in rows {
        let m = |p: &str| num(r, &format!("/measure{p}"));
        let _ = writeln!(
            s,
            "  {:>7}: unlock {:.1} ms + load {:.1} ms (waiting for a CPU during open: {:.0} ms); \
             RSS before/open/index/end {:.1}/{:.1}/{:.1}/{:.1} MB",
            r["size"].as_u64().unwrap_or(0),
            m("/unlock_wall_ms"),
            m("/load_wall_ms"),
            m("/open/wait_ms"),
            m("/rss_before_open_mb"),
            m("/rss_after_open_mb"),
            m("/rss_after_index_mb"),
            m("/rss_end_mb"),
        );
        let _ = writeln!(
            s,
            "           fresh: mean hits {:.0}, slowest {:.2} ms (CPU {:.2}) for {} ({} hits)",
            m("/search_fresh/mean_hits"),
            m("/search_fresh/slowest/wall_ms"),
            m("/search_fresh/slowest/cpu_ms"),
            r["measure"]["search_fresh"]["slowest"]["query"],
            r["measure"]["search_fresh"]["slowest"]["hits"],
        );
        for c in ["text", "text+filters", "filters only"] {
            let base = format!("/measure/search_fresh/by_category/{c}");
            let _ = writeln!(
                s,
                "             {c:<13} n={:<4} p50/p99 {} ms (CPU {}), mean hits {:.0}",
                num(r, &format!("{base}/series/wall/n")),
                pair(r, &format!("{base}/series/wall")),
                pair(r, &format!("{base}/series/cpu")),
                num(r, &format!("{base}/mean_hits")),
            );
        }
        let _ = writeln!(
            s,
            "           typing: first key p50/p99 {} ms (CPU {}), later keys {} ms (CPU {}), \
             slowest {:.2} ms (CPU {:.2}) for {} ({} hits)",
            pair(r, "/measure/search_typing/first_keystroke/wall"),
            pair(r, "/measure/search_typing/first_keystroke/cpu"),
            pair(r, "/measure/search_typing/later_keystrokes/wall"),
            pair(r, "/measure/search_typing/later_keystrokes/cpu"),
            m("/search_typing/slowest/wall_ms"),
            m("/search_typing/slowest/cpu_ms"),
            r["measure"]["search_typing"]["slowest"]["query"],
            r["measure"]["search_typing"]["slowest"]["hits"],
        );
        let _ = writeln!(
            s,
            "           usage: record a use p50/p99 {} ms (CPU {}); read {:.0} items' counts {:.2} ms; \
             ls by use p50 {:.2} ms",
            pair(r, "/measure/record_use/wall"),
            pair(r, "/measure/record_use/cpu"),
            m("/usage_items"),
            m("/usage_read/wall_ms"),
            m("/ls_by_use/wall/p50_ms"),
        );
    }

    let _ = writeln!(
        s,
        "\nBudgets (set for {BUDGET_SIZE} items; smaller sizes shown for the trend). \
         Verdict on wall time; CPU time beside it."
    );
    for b in budgets {
        let binding = b["binding"].as_bool().unwrap_or(false);
        let cpu = b["cpu_ms"].as_f64().unwrap_or(f64::NAN);
        let by_cpu = if cpu.is_nan() {
            String::new()
        } else {
            format!(
                "   CPU {cpu:>9.2} {}",
                verdict(b["pass_by_cpu"].as_bool().unwrap_or(false))
            )
        };
        let _ = writeln!(
            s,
            "  {:>7}  {:<27} {:>9.2} {}{}{}",
            b["size"].as_u64().unwrap_or(0),
            b["budget"].as_str().unwrap_or(""),
            b["value"].as_f64().unwrap_or(f64::NAN),
            verdict(b["pass"].as_bool().unwrap_or(false)),
            by_cpu,
            if binding { "" } else { "   (trend)" },
        );
    }

    let _ = writeln!(
        s,
        "\nKDF (crypto::kdf::password_key, wall ms, median; not part of open above)"
    );
    for (name, k) in [("DEFAULT", kdf_default), ("FLOOR", kdf_floor)] {
        let _ = writeln!(
            s,
            "  {name:<8} {:<36} {:>8.1} ms   runs {}",
            k["params"].as_str().unwrap_or(""),
            num(k, "/median_ms"),
            k["runs_ms"],
        );
    }
    s
}
