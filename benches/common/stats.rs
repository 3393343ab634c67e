//! Measurement helpers shared by the benchmarks: the vaults' negligible KDF,
//! durations in ms, nearest-rank percentiles, the machine's load, and
//! reading results against budgets.
//! Included with `#[path]` by each bench.

// Each bench is its own crate and uses only part of this.
#![allow(dead_code)]

use std::time::Duration;

use openk::engine::KdfParams;
use serde_json::Value as Json;

/// The benchmark vaults' KDF: negligible, so no measurement includes it
/// (`open` and unlock measure the engine).
pub const TINY_KDF: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// A duration in (fractional) milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile `p` (0 to 100) of ascending samples; NaN when
/// there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 1-minute load average: other work on the machine skews latencies.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// The number at JSON pointer `path` of a result, NaN when there is none.
pub fn num(v: &Json, path: &str) -> f64 {
    v.pointer(path).and_then(Json::as_f64).unwrap_or(f64::NAN)
}

/// How a budget line reads: met or not.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}
