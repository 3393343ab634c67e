//! The Argon2id cost parameters: stored in the vault header, bound into the
//! wrapped account key's associated data, offered by servers. Plain data
//! and its limits, shared by the store and `crypto` (which derives with
//! them) without either naming the other.

use serde::{Deserialize, Serialize};

/// Argon2id cost parameters, stored in the vault header and bound into the
/// wrapped account key's associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// 256 MiB, 3 passes, 4 lanes: about half a second on the reference machine.
    pub const DEFAULT: Self = Self {
        memory_kib: 256 * 1024,
        iterations: 3,
        parallelism: 4,
    };
    /// The recommended floor (OWASP's Argon2id minimum): 19 MiB, 2 passes.
    pub const FLOOR: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    /// Above this the parameters are refused outright.
    pub const CEILING: Self = Self {
        memory_kib: 4 * 1024 * 1024,
        iterations: 100,
        parallelism: 16,
    };

    /// The lower ceiling for parameters a server offers (prelogin, a
    /// password change adopted from another device): a hostile server must
    /// not make the client derive for minutes or exhaust its memory. Local
    /// `--kdf-*` options keep [`Self::CEILING`].
    pub const SERVER_CEILING: Self = Self {
        memory_kib: 1024 * 1024,
        iterations: 20,
        parallelism: 8,
    };
    /// The budget on memory × iterations for offered parameters, in
    /// KiB·iterations: 4 GiB·iterations (1 GiB × 4, 256 MiB × 16; the
    /// default uses 768 MiB·iterations).
    pub const SERVER_BUDGET_KIB_ITERATIONS: u64 = 4 * 1024 * 1024 * 1024 / 1024;

    /// Checks parameters a server offers against [`Self::SERVER_CEILING`]
    /// and [`Self::SERVER_BUDGET_KIB_ITERATIONS`], before anything is derived.
    ///
    /// # Errors
    /// A message naming the offending value and the limit.
    pub fn check_offered(&self) -> Result<(), String> {
        let c = Self::SERVER_CEILING;
        if self.memory_kib > c.memory_kib {
            return Err(format!(
                "memory {} MiB is above the {} MiB a server may ask for",
                self.memory_kib / 1024,
                c.memory_kib / 1024
            ));
        }
        if self.iterations > c.iterations {
            return Err(format!(
                "{} iterations is above the {} a server may ask for",
                self.iterations, c.iterations
            ));
        }
        if self.parallelism > c.parallelism {
            return Err(format!(
                "{} lanes is above the {} a server may ask for",
                self.parallelism, c.parallelism
            ));
        }
        let cost = u64::from(self.memory_kib) * u64::from(self.iterations);
        if cost > Self::SERVER_BUDGET_KIB_ITERATIONS {
            return Err(format!(
                "memory × iterations ({} MiB × {}) is above the 4 GiB·iterations a server may ask for",
                self.memory_kib / 1024,
                self.iterations
            ));
        }
        self.check_limits()
            .map_err(|m| format!("invalid key derivation parameters: {m}"))
    }

    /// Builds parameters from the CLI's units (MiB).
    #[must_use]
    pub fn from_mib(memory_mib: u32, iterations: u32, parallelism: u32) -> Self {
        Self {
            memory_kib: memory_mib.saturating_mul(1024),
            iterations,
            parallelism,
        }
    }

    /// True when the parameters are below the recommended floor.
    #[must_use]
    pub fn is_below_floor(&self) -> bool {
        self.memory_kib < Self::FLOOR.memory_kib || self.iterations < Self::FLOOR.iterations
    }

    /// Checks the hard limits: above the ceiling, or impossible for Argon2.
    ///
    /// # Errors
    /// A message naming the offending value and the allowed range.
    pub fn check_limits(&self) -> Result<(), String> {
        let c = Self::CEILING;
        if self.parallelism == 0 || self.parallelism > c.parallelism {
            return Err(format!(
                "parallelism {} is outside 1..={}",
                self.parallelism, c.parallelism
            ));
        }
        if self.iterations == 0 || self.iterations > c.iterations {
            return Err(format!(
                "iterations {} is outside 1..={}",
                self.iterations, c.iterations
            ));
        }
        let min_kib = 8 * self.parallelism;
        if self.memory_kib < min_kib || self.memory_kib > c.memory_kib {
            return Err(format!(
                "memory {} KiB is outside {}..={} KiB",
                self.memory_kib, min_kib, c.memory_kib
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for KdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Argon2id {} MiB, {} iterations, {} lanes",
            self.memory_kib / 1024,
            self.iterations,
            self.parallelism
        )
    }
}
