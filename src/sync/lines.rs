//! The list of lines a device keeps of what the server holds of a vault
//! (one [`Line`] per item, as in the manifest): its stored encoding and
//! its digest.

use std::collections::HashMap;

use openk_server::api::types::Record;
use uuid::Uuid;

use super::manifest::{self, Line};

/// Bytes per line in `sync_state.lines`: id, version, tombstone flag, hash.
pub const LINE_BYTES: usize = 16 + 8 + 1 + 32;

#[must_use]
pub fn encode_lines(lines: &HashMap<Uuid, Line>) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() * LINE_BYTES);
    for l in lines.values() {
        out.extend_from_slice(l.item_id.as_bytes());
        out.extend_from_slice(&l.version.to_be_bytes());
        out.push(u8::from(l.deleted));
        out.extend_from_slice(&l.hash);
    }
    out
}

#[must_use]
pub fn decode_lines(blob: &[u8]) -> Option<HashMap<Uuid, Line>> {
    if !blob.len().is_multiple_of(LINE_BYTES) {
        return None;
    }
    let mut out = HashMap::with_capacity(blob.len() / LINE_BYTES);
    for c in blob.chunks_exact(LINE_BYTES) {
        let item_id = Uuid::from_slice(&c[..16]).ok()?;
        let version = u64::from_be_bytes(c[16..24].try_into().ok()?);
        let deleted = match c[24] {
            0 => false,
            1 => true,
            _ => return None,
        };
        let hash: [u8; 32] = c[25..].try_into().ok()?;
        out.insert(
            item_id,
            Line {
                item_id,
                version,
                deleted,
                hash,
            },
        );
    }
    Some(out)
}

#[must_use]
pub fn line_of_record(r: &Record) -> Line {
    Line {
        item_id: r.item_id,
        version: r.version,
        deleted: r.deleted,
        hash: if r.deleted {
            [0; 32]
        } else {
            manifest::record_hash(&r.wrapped_key.0, &r.overview.0, &r.details.0)
        },
    }
}

#[must_use]
pub fn digest_of(lines: &HashMap<Uuid, Line>) -> (u64, String) {
    let mut v: Vec<Line> = lines.values().copied().collect();
    (
        v.len() as u64,
        manifest::hex_lower(&manifest::digest(&mut v)),
    )
}
