//! How the benchmarks run: the vaults' password, the sizes named on the
//! command line and where results are written. Included with `#[path]` by
//! each bench.

// Each bench is its own crate and uses only part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use openk::engine::SecretString;

/// The benchmark vaults' password.
pub const PASSWORD: &str = "correct horse battery staple";

pub fn password() -> SecretString {
    SecretString::from(PASSWORD.to_owned())
}

/// The vault sizes a run measures when none is named.
pub const DEFAULT_SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The vault sizes named in `args` (other words are ignored, with a note),
/// or [`DEFAULT_SIZES`].
pub fn sizes(args: &[String]) -> Vec<usize> {
    let sizes: Vec<usize> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| {
            let n = parse_size(a);
            if n.is_none() {
                eprintln!("ignoring argument {a:?} (not a size)");
            }
            n
        })
        .collect();
    if sizes.is_empty() {
        DEFAULT_SIZES.to_vec()
    } else {
        sizes
    }
}

/// `1000`, `10_000`, `10k`, `1m`.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase().replace('_', "");
    let (digits, mul) = match s.strip_suffix('k') {
        Some(d) => (d.to_owned(), 1_000),
        None => match s.strip_suffix('m') {
            Some(d) => (d.to_owned(), 1_000_000),
            None => (s, 1),
        },
    };
    digits
        .parse::<usize>()
        .ok()
        .map(|n| n * mul)
        .filter(|&n| n > 0)
}

/// The target directory of the running bench executable `exe`.
pub fn target_dir(exe: &Path) -> PathBuf {
    // <target>/release/deps/<bench>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
            Path::to_path_buf,
        )
}
