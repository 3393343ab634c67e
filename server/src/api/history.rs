//! The account's security history (issue 13): every security event of the
//! account (a device added or revoked, a password, Secret Key or key
//! change, a member added or removed, ...) is an entry its device signs
//! with the account's identity key, naming the entry before it by hash.
//! The server stores the signed bytes and hands them back in order; it
//! cannot sign, so it cannot forge an entry, and the clients check the
//! chain, so it cannot reorder, alter or drop one without being caught.
//!
//! # The entry format (shared with the client)
//! ```text
//! entry  = version (1 byte, 1) || seq (u64 BE) || prev (32 bytes)
//!          || at (i64 BE, unix seconds) || device_id (16 bytes)
//!          || kind length (u16 BE) || kind (UTF-8)
//!          || detail length (u32 BE) || detail (a JSON object, UTF-8)
//! record = entry || signature (64 bytes)
//! signature = Ed25519(identity key, "openk/v1/security-history\0" || entry)
//! hash   = SHA-256(record)   (what the next entry names as prev)
//! ```
//! The server reads only `version`, `seq` and `prev` and checks that the
//! lengths add up; it never checks the signature (the clients do).

use axum::Json;
use axum::extract::State;
use sha2::{Digest, Sha256};

use super::extract::{ApiJson, ApiQuery};
use super::types::{AppendHistoryRequest, AppendHistoryResponse, B64, HistoryPage, HistoryQuery};
use super::validate;
use super::vaults::Budgeted;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now_millis};
use crate::store::HistoryAppend;

/// The format version this server stores.
pub const FORMAT: u8 = 1;
/// Bytes before the kind: version, seq, prev, at, device id, kind length.
pub const HEADER_LEN: usize = 1 + 8 + 32 + 8 + 16 + 2;
/// An Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// The longest kind name.
pub const MAX_KIND: usize = 64;
/// The longest detail (JSON).
pub const MAX_DETAIL: usize = 2048;
/// The largest record: header, kind, detail (with its length) and signature.
pub const MAX_RECORD: usize = HEADER_LEN + MAX_KIND + 4 + MAX_DETAIL + SIGNATURE_LEN;
/// The smallest record: an empty kind and detail.
pub const MIN_RECORD: usize = HEADER_LEN + 4 + SIGNATURE_LEN;
/// The most entries an account's history holds.
pub const MAX_ENTRIES: i64 = 100_000;
/// Entries per page of `GET /v1/account/history` (at most about 300 KiB
/// of base64: within what a client reads of an account route's answer).
pub const PAGE: u32 = 100;

/// The parts of a record the server reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHead {
    pub seq: u64,
    pub prev: [u8; 32],
}

/// A record's parts, split by the format (nothing checked but the layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordParts<'a> {
    pub seq: u64,
    pub prev: [u8; 32],
    pub at: i64,
    pub device_id: [u8; 16],
    pub kind: &'a [u8],
    pub detail: &'a [u8],
    /// What is signed (after the context): the record without its signature.
    pub entry: &'a [u8],
    pub signature: &'a [u8],
}

/// Splits a record by the format: its version, and lengths that add up to
/// the record's within the bounds.
///
/// # Errors
/// Why the bytes are not a record (for a message).
pub fn split(record: &[u8]) -> Result<RecordParts<'_>, &'static str> {
    if record.len() < MIN_RECORD || record.len() > MAX_RECORD {
        return Err("its length is out of bounds");
    }
    if record[0] != FORMAT {
        return Err("its format version is unknown");
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&record[i..i + 8]);
        b
    };
    let seq = u64::from_be_bytes(u64_at(1));
    let mut prev = [0u8; 32];
    prev.copy_from_slice(&record[9..41]);
    let at = i64::from_be_bytes(u64_at(41));
    let mut device_id = [0u8; 16];
    device_id.copy_from_slice(&record[49..65]);
    let kind_len = usize::from(u16::from_be_bytes([record[65], record[66]]));
    if kind_len > MAX_KIND {
        return Err("its kind is too long");
    }
    let kind_end = HEADER_LEN + kind_len;
    if record.len() < kind_end + 4 + SIGNATURE_LEN {
        return Err("its lengths do not add up");
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(&record[kind_end..kind_end + 4]);
    let detail_len = usize::try_from(u32::from_be_bytes(l)).unwrap_or(usize::MAX);
    if detail_len > MAX_DETAIL {
        return Err("its detail is too long");
    }
    let detail_start = kind_end + 4;
    if record.len() != detail_start + detail_len + SIGNATURE_LEN {
        return Err("its lengths do not add up");
    }
    let entry_end = detail_start + detail_len;
    Ok(RecordParts {
        seq,
        prev,
        at,
        device_id,
        kind: &record[HEADER_LEN..kind_end],
        detail: &record[detail_start..entry_end],
        entry: &record[..entry_end],
        signature: &record[entry_end..],
    })
}

/// What the next record names as `prev`: SHA-256 over the whole record.
#[must_use]
pub fn record_hash(record: &[u8]) -> [u8; 32] {
    Sha256::digest(record).into()
}

/// Appends an entry to the account's security history. It must name the
/// head: `seq` one above the newest entry's and `prev` its hash (zeros and
/// 1 for the first); otherwise another device appended first and the answer
/// is 409 `conflict` (read the new entries, sign again on top of them).
#[utoipa::path(post, path = "/v1/account/history", tag = "history", security(("bearer" = [])),
    request_body = AppendHistoryRequest,
    responses((status = 200, body = AppendHistoryResponse),
        (status = 401, body = super::types::Problem),
        (status = 409, body = super::types::Problem, description = "`conflict`: the entry does not name the head (another device appended first)"),
        (status = 422, body = super::types::Problem, description = "`validation_failed`: not an entry of this format, or the history holds 100000 entries"),
        (status = 429, body = super::types::Problem, description = "`request_budget`: this session's requests per minute are spent (`Retry-After`)")))]
pub async fn append(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiJson(req): ApiJson<AppendHistoryRequest>,
) -> ApiResult<Json<AppendHistoryResponse>> {
    validate::bounded(&req.entry, MIN_RECORD, MAX_RECORD, "history entry")?;
    let parts = split(&req.entry.0)
        .map_err(|why| ApiError::Validation(format!("the history entry is malformed: {why}")))?;
    let seq = i64::try_from(parts.seq)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| ApiError::Validation("a history entry's seq starts at 1".into()))?;
    let hash = record_hash(&req.entry.0);
    match state
        .store
        .append_history(
            who.account_id,
            seq,
            &parts.prev,
            &hash,
            &req.entry.0,
            MAX_ENTRIES,
            now_millis(),
        )
        .await?
    {
        HistoryAppend::Stored => Ok(Json(AppendHistoryResponse { seq })),
        HistoryAppend::Stale { head } => Err(ApiError::Conflict(format!(
            "the security history's head is entry {head}; read it and sign the entry anew"
        ))),
        HistoryAppend::Full { max } => Err(ApiError::Validation(format!(
            "the security history holds {max} entries, the most this server keeps"
        ))),
    }
}

/// The account's security history after entry `after`, in order, at most
/// 100 entries a page, with the number of the newest entry.
#[utoipa::path(get, path = "/v1/account/history", tag = "history", security(("bearer" = [])),
    params(HistoryQuery),
    responses((status = 200, body = HistoryPage),
        (status = 400, body = super::types::Problem, description = "`bad_request`: after is negative"),
        (status = 401, body = super::types::Problem),
        (status = 429, body = super::types::Problem, description = "`request_budget`: this session's requests per minute are spent (`Retry-After`)")))]
pub async fn index(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    if q.after < 0 {
        return Err(ApiError::BadRequest("after must be 0 or more".into()));
    }
    let rows = state.store.history(who.account_id, q.after, PAGE).await?;
    // Read after the rows: never below the last of them.
    let head = state.store.history_head(who.account_id).await?;
    let has_more = rows.last().is_some_and(|(seq, _)| *seq < head);
    Ok(Json(HistoryPage {
        entries: rows.into_iter().map(|(_, e)| B64(e)).collect(),
        head,
        has_more,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &[u8], detail: &[u8]) -> Vec<u8> {
        let mut r = vec![FORMAT];
        r.extend_from_slice(&7u64.to_be_bytes());
        r.extend_from_slice(&[9u8; 32]);
        r.extend_from_slice(&1_700_000_000i64.to_be_bytes());
        r.extend_from_slice(&[3u8; 16]);
        r.extend_from_slice(&u16::try_from(kind.len()).expect("short").to_be_bytes());
        r.extend_from_slice(kind);
        r.extend_from_slice(&u32::try_from(detail.len()).expect("short").to_be_bytes());
        r.extend_from_slice(detail);
        r.extend_from_slice(&[5u8; SIGNATURE_LEN]);
        r
    }

    #[test]
    fn a_record_splits_into_its_parts_and_nothing_else_does() {
        let r = record(b"device_added", br#"{"name":"laptop"}"#);
        let p = split(&r).expect("splits");
        assert_eq!(p.seq, 7);
        assert_eq!(p.prev, [9u8; 32]);
        assert_eq!(p.at, 1_700_000_000);
        assert_eq!(p.device_id, [3u8; 16]);
        assert_eq!(p.kind, b"device_added");
        assert_eq!(p.detail, br#"{"name":"laptop"}"#);
        assert_eq!(p.signature, &[5u8; SIGNATURE_LEN]);
        assert_eq!(p.entry.len() + SIGNATURE_LEN, r.len());
        // One byte more or less, another version, lengths that lie: refused.
        let mut longer = r.clone();
        longer.push(0);
        assert!(split(&longer).is_err());
        assert!(split(&r[..r.len() - 1]).is_err());
        let mut v2 = r.clone();
        v2[0] = 2;
        assert!(split(&v2).is_err());
        let mut lying = r.clone();
        lying[66] = 200;
        assert!(split(&lying).is_err());
        assert!(split(&[]).is_err());
        assert!(split(&record(&[b'k'; MAX_KIND + 1], b"{}")).is_err());
        assert!(split(&record(b"k", &vec![b' '; MAX_DETAIL + 1])).is_err());
        assert!(split(&record(&[b'k'; MAX_KIND], &vec![b' '; MAX_DETAIL])).is_ok());
    }
}
