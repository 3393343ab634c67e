//! Size and shape checks for request bodies. The server never parses
//! ciphertext; it only bounds it.

use crate::api::types::{B64, DeviceInfo, KdfParams};
use crate::error::{ApiError, ApiResult};

pub const MAX_EMAIL: usize = crate::email::MAX_EMAIL;
pub const MAX_NAME: usize = 100;
pub const MAX_WRAPPED_KEY: usize = 512;
pub const MAX_BLOB: usize = 1024 * 1024;
pub const MAX_MANIFEST: usize = 64 * 1024;
pub const MAX_BATCH: usize = 1000;

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::Validation(msg.into())
}

/// Normalises and checks an email address by the one rule
/// ([`crate::email`]); the refusal says which character is wrong.
pub fn email(raw: &str) -> ApiResult<String> {
    crate::email::normalize(raw).map_err(|e| invalid(e.to_string()))
}

pub fn device(d: &DeviceInfo) -> ApiResult<()> {
    name(&d.name, "device name")?;
    if let Some(p) = &d.platform {
        name(p, "platform")?;
    }
    Ok(())
}

pub fn name(n: &str, what: &str) -> ApiResult<()> {
    let n = n.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must be 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(())
}

pub fn exact(b: &B64, len: usize, what: &str) -> ApiResult<()> {
    if b.0.len() == len {
        Ok(())
    } else {
        Err(invalid(format!("{what} must be {len} bytes")))
    }
}

pub fn bounded(b: &B64, min: usize, max: usize, what: &str) -> ApiResult<()> {
    if (min..=max).contains(&b.0.len()) {
        Ok(())
    } else {
        Err(invalid(format!("{what} must be {min} to {max} bytes")))
    }
}

/// KDF parameters a client could use (the client applies its own floor).
pub fn kdf(k: &KdfParams) -> ApiResult<()> {
    let ok = (1..=16).contains(&k.parallelism)
        && (1..=100).contains(&k.iterations)
        && (8 * k.parallelism..=4 * 1024 * 1024).contains(&k.memory_kib);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "kdf parameters out of range (memory 8×p KiB..4 GiB, iterations 1..100, parallelism 1..16)",
        ))
    }
}
