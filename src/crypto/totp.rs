//! One-time passwords: RFC 4226 HOTP and RFC 6238 TOTP.
//!
//! This module owns the TOTP secret type ([`Totp`]), its parsing from a bare
//! base32 secret or an `otpauth://totp/...` key URI, its canonical URI form
//! (the form that is stored in the vault), and code generation. Secrets are
//! kept in zeroizing buffers, are redacted from `Debug`, and never appear in
//! error messages.

use std::fmt::{self, Write as _};
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::{BASE32_NOPAD, DecodeKind, Encoding, Specification};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Default number of digits in a code.
pub const DEFAULT_DIGITS: u32 = 6;
/// Default time step in seconds.
pub const DEFAULT_PERIOD: u64 = 30;
/// Accepted range for the number of digits.
pub const DIGITS_RANGE: std::ops::RangeInclusive<u32> = 6..=10;
/// Accepted range for the time step in seconds.
pub const PERIOD_RANGE: std::ops::RangeInclusive<u64> = 1..=3600;

/// Longest user-supplied (non-secret) value echoed back in an error message.
const MAX_ECHO: usize = 32;

/// HMAC hash function used to compute codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA-1, the default and by far the most common.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in `otpauth://` URIs (`SHA1`, `SHA256`, `SHA512`).
    pub fn uri_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses a URI algorithm name, case-insensitively; `SHA-256` style
    /// spellings are accepted too.
    fn from_uri_name(name: &str) -> Option<Self> {
        let norm: String = name
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        match norm.as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri_name())
    }
}

/// Why a TOTP secret or URI was refused. Messages never contain the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The secret is empty (or only spaces, dashes and padding).
    #[error("totp secret is empty: expected a base32 secret such as JBSWY3DPEHPK3PXP")]
    EmptySecret,
    /// The secret contains a character outside the base32 alphabet.
    #[error(
        "totp secret is not valid base32: expected letters A-Z and digits 2-7 (case, spaces, dashes and '=' padding are ignored)"
    )]
    InvalidBase32,
    /// The secret has a number of base32 characters that cannot encode whole bytes.
    #[error(
        "totp secret has an invalid base32 length: expected a length that encodes whole bytes (a multiple of 8 characters, or 2, 4, 5 or 7 more)"
    )]
    InvalidBase32Length,
    /// The URI has no `secret` parameter.
    #[error("otpauth uri has no secret parameter: expected otpauth://totp/LABEL?secret=BASE32")]
    MissingSecret,
    /// The URI is an `otpauth://hotp/` (counter-based) URI.
    #[error("counter-based otpauth://hotp uris are not supported: expected an otpauth://totp uri")]
    HotpUnsupported,
    /// The URI has an OTP type other than `totp` or `hotp`.
    #[error("unsupported otp type {0:?}: expected otpauth://totp")]
    UnsupportedType(String),
    /// The URI is malformed.
    #[error("invalid otpauth uri: {0}")]
    InvalidUri(&'static str),
    /// The `algorithm` parameter is not one of the supported hashes.
    #[error("unsupported totp algorithm {0:?}: expected SHA1, SHA256 or SHA512")]
    UnsupportedAlgorithm(String),
    /// The `digits` parameter is not a number in [`DIGITS_RANGE`].
    #[error("invalid totp digits {0:?}: expected a whole number from 6 to 10")]
    InvalidDigits(String),
    /// The `period` parameter is not a number in [`PERIOD_RANGE`].
    #[error("invalid totp period {0:?}: expected a whole number of seconds from 1 to 3600")]
    InvalidPeriod(String),
    /// A parameter appears more than once in the URI.
    #[error("otpauth uri has more than one {0} parameter: expected each parameter at most once")]
    DuplicateParameter(&'static str),
}

/// A TOTP credential: shared secret plus code parameters.
///
/// Fields other than the secret are public; `code_at`/`now` never panic even
/// if they are set outside the ranges that [`Totp::parse`] enforces (a period
/// of 0 is treated as 1).
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    secret: Zeroizing<Vec<u8>>,
    /// HMAC hash function.
    pub algorithm: Algorithm,
    /// Number of decimal digits in a code (6..=10).
    pub digits: u32,
    /// Time step in seconds (1..=3600).
    pub period: u64,
    /// Service that issued the secret, e.g. `ACME Co`.
    pub issuer: Option<String>,
    /// Account name at the issuer, e.g. `alice@example.com`.
    pub account: Option<String>,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .finish()
    }
}

impl Totp {
    /// Builds a credential from raw secret bytes with default parameters
    /// (SHA1, 6 digits, 30 s).
    ///
    /// # Errors
    /// [`TotpError::EmptySecret`] when `secret` is empty.
    pub fn new(secret: Vec<u8>) -> Result<Self, TotpError> {
        let secret = Zeroizing::new(secret);
        if secret.is_empty() {
            return Err(TotpError::EmptySecret);
        }
        Ok(Self {
            secret,
            algorithm: Algorithm::Sha1,
            digits: DEFAULT_DIGITS,
            period: DEFAULT_PERIOD,
            issuer: None,
            account: None,
        })
    }

    /// Parses either a bare base32 secret (case-insensitive; spaces, dashes
    /// and `=` padding ignored) or an `otpauth://totp/LABEL?secret=...` key
    /// URI with optional `issuer`, `algorithm`, `digits` and `period`
    /// parameters. The label may be `Issuer:account` and percent-encoded; an
    /// `issuer` parameter takes precedence over the label prefix. Unknown
    /// parameters (e.g. `image`) are ignored.
    ///
    /// # Errors
    /// A [`TotpError`] naming what is wrong and what is expected: empty or
    /// non-base32 secret, missing secret, `hotp` or other non-`totp` URI,
    /// unsupported algorithm, digits outside 6..=10, period outside 1..=3600,
    /// a repeated parameter, or a label that is not UTF-8.
    pub fn parse(input: &str) -> Result<Self, TotpError> {
        let input = input.trim();
        match strip_prefix_ignore_case(input, "otpauth://") {
            Some(rest) => parse_uri(rest),
            None => Self::new(decode_base32(input.as_bytes())?.to_vec()),
        }
    }

    /// The canonical `otpauth://totp/` URI, with every parameter explicit.
    /// This is the storage form; [`Totp::parse`] reads it back unchanged.
    pub fn to_uri(&self) -> String {
        let mut uri = String::from("otpauth://totp/");
        match (&self.issuer, &self.account) {
            (Some(issuer), account) => {
                uri.push_str(&percent_encode(issuer));
                uri.push(':');
                uri.push_str(&percent_encode(account.as_deref().unwrap_or("")));
            }
            (None, Some(account)) => {
                // An encoded ':' in the account would otherwise be read back
                // as an issuer separator; an empty issuer prefix prevents it.
                if account.contains(':') {
                    uri.push(':');
                }
                uri.push_str(&percent_encode(account));
            }
            (None, None) => {}
        }
        uri.push_str("?secret=");
        uri.push_str(&self.secret_base32());
        if let Some(issuer) = &self.issuer {
            uri.push_str("&issuer=");
            uri.push_str(&percent_encode(issuer));
        }
        uri.push_str("&algorithm=");
        uri.push_str(self.algorithm.uri_name());
        let _ = write!(uri, "&digits={}&period={}", self.digits, self.period);
        uri
    }

    /// The secret as unpadded upper-case base32.
    pub fn secret_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE32_NOPAD.encode(&self.secret))
    }

    /// The raw secret bytes.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The code for the time step containing `unix_seconds`, zero-padded to
    /// `digits`.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        let counter = unix_seconds / self.period.max(1);
        let code = hotp(&self.secret, counter, self.digits, self.algorithm);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// The current code and the number of seconds it stays valid (1..=period).
    /// A system clock set before 1970 is treated as the epoch.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn now(&self) -> (String, u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let period = self.period.max(1);
        (self.code_at(now), period - now % period)
    }
}

/// RFC 4226 HOTP value for `counter`: HMAC of the big-endian counter, dynamic
/// truncation to 31 bits, reduced modulo `10^digits` (no reduction once
/// `10^digits` exceeds 31 bits, i.e. for 10 or more digits).
pub fn hotp(secret: &[u8], counter: u64, digits: u32, alg: Algorithm) -> u32 {
    let msg = counter.to_be_bytes();
    let mac = match alg {
        Algorithm::Sha1 => hmac_digest::<Hmac<sha1::Sha1>>(secret, &msg),
        Algorithm::Sha256 => hmac_digest::<Hmac<sha2::Sha256>>(secret, &msg),
        Algorithm::Sha512 => hmac_digest::<Hmac<sha2::Sha512>>(secret, &msg),
    };
    // HMAC accepts keys of any length, so `hmac_digest` never returns None;
    // the fallback only exists to avoid a panic path.
    let Some(mac) = mac else { return 0 };
    let Some(&last) = mac.last() else { return 0 };
    let offset = usize::from(last & 0x0f);
    let Some(window) = mac.get(offset..offset + 4) else {
        return 0;
    };
    let binary = u32::from_be_bytes([window[0] & 0x7f, window[1], window[2], window[3]]);
    match 10u32.checked_pow(digits) {
        Some(modulus) => binary % modulus,
        None => binary,
    }
}

fn hmac_digest<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
    mac.update(msg);
    Some(mac.finalize().into_bytes().to_vec())
}

fn parse_uri(rest: &str) -> Result<Totp, TotpError> {
    // A fragment carries nothing for us; a secret never contains '#'.
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (kind, raw_label) = path.split_once('/').unwrap_or((path, ""));
    if kind.eq_ignore_ascii_case("hotp") {
        return Err(TotpError::HotpUnsupported);
    }
    if !kind.eq_ignore_ascii_case("totp") {
        return Err(TotpError::UnsupportedType(truncate_echo(kind)));
    }

    let (label_issuer, account) = parse_label(raw_label)?;

    let mut secret: Option<Zeroizing<Vec<u8>>> = None;
    let mut issuer: Option<String> = None;
    let mut algorithm: Option<Algorithm> = None;
    let mut digits: Option<u32> = None;
    let mut period: Option<u64> = None;

    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = String::from_utf8_lossy(&percent_decode(raw_key, true)).to_ascii_lowercase();
        match key.as_str() {
            "secret" => {
                if secret.is_some() {
                    return Err(TotpError::DuplicateParameter("secret"));
                }
                let value = Zeroizing::new(percent_decode(raw_value, true));
                secret = Some(decode_base32(&value)?);
            }
            "issuer" => {
                if issuer.is_some() {
                    return Err(TotpError::DuplicateParameter("issuer"));
                }
                issuer = Some(decode_text(raw_value, true, "issuer is not valid utf-8")?);
            }
            "algorithm" => {
                if algorithm.is_some() {
                    return Err(TotpError::DuplicateParameter("algorithm"));
                }
                let value = decode_text(raw_value, true, "algorithm is not valid utf-8")?;
                algorithm = Some(
                    Algorithm::from_uri_name(value.trim())
                        .ok_or_else(|| TotpError::UnsupportedAlgorithm(truncate_echo(&value)))?,
                );
            }
            "digits" => {
                if digits.is_some() {
                    return Err(TotpError::DuplicateParameter("digits"));
                }
                let value = decode_text(raw_value, true, "digits is not valid utf-8")?;
                digits = Some(
                    value
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|d| DIGITS_RANGE.contains(d))
                        .ok_or_else(|| TotpError::InvalidDigits(truncate_echo(&value)))?,
                );
            }
            "period" => {
                if period.is_some() {
                    return Err(TotpError::DuplicateParameter("period"));
                }
                let value = decode_text(raw_value, true, "period is not valid utf-8")?;
                period = Some(
                    value
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|p| PERIOD_RANGE.contains(p))
                        .ok_or_else(|| TotpError::InvalidPeriod(truncate_echo(&value)))?,
                );
            }
            _ => {}
        }
    }

    let secret = secret.ok_or(TotpError::MissingSecret)?;
    let issuer = issuer
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .or(label_issuer);
    Ok(Totp {
        secret,
        algorithm: algorithm.unwrap_or_default(),
        digits: digits.unwrap_or(DEFAULT_DIGITS),
        period: period.unwrap_or(DEFAULT_PERIOD),
        issuer,
        account,
    })
}

/// Issuer prefix and account name from a key URI label.
type Label = (Option<String>, Option<String>);

/// Splits a raw (still percent-encoded) label into issuer prefix and account.
/// A literal ':' separates them; failing that, an encoded one (`%3A`).
fn parse_label(raw: &str) -> Result<Label, TotpError> {
    let non_empty = |s: String| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_owned())
    };
    if let Some((issuer, account)) = raw.split_once(':') {
        let issuer = decode_text(issuer, false, "label is not valid utf-8")?;
        let account = decode_text(account, false, "label is not valid utf-8")?;
        return Ok((non_empty(issuer), non_empty(account)));
    }
    let label = decode_text(raw, false, "label is not valid utf-8")?;
    Ok(match label.split_once(':') {
        Some((issuer, account)) => (non_empty(issuer.to_owned()), non_empty(account.to_owned())),
        None => (None, non_empty(label)),
    })
}

/// Lenient base32 decoder: standard alphabet, no padding, non-zero trailing
/// bits ignored (some issuers emit them).
static LENIENT_BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    spec.check_trailing_bits = false;
    spec.encoding().unwrap_or_else(|_| BASE32_NOPAD.clone())
});

/// Normalises (drops whitespace, dashes and trailing `=`, upper-cases) and
/// decodes a base32 secret. Every intermediate copy is zeroized.
fn decode_base32(input: &[u8]) -> Result<Zeroizing<Vec<u8>>, TotpError> {
    let mut norm = Zeroizing::new(Vec::with_capacity(input.len()));
    norm.extend(
        input
            .iter()
            .filter(|b| !b.is_ascii_whitespace() && **b != b'-')
            .map(u8::to_ascii_uppercase),
    );
    while norm.last() == Some(&b'=') {
        norm.pop();
    }
    if norm.is_empty() {
        return Err(TotpError::EmptySecret);
    }
    if !norm.iter().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7')) {
        return Err(TotpError::InvalidBase32);
    }
    let len = LENIENT_BASE32
        .decode_len(norm.len())
        .map_err(|_| TotpError::InvalidBase32Length)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    match LENIENT_BASE32.decode_mut(&norm, &mut out) {
        Ok(written) => {
            out.truncate(written);
            if out.is_empty() {
                return Err(TotpError::EmptySecret);
            }
            Ok(out)
        }
        Err(e) if e.error.kind == DecodeKind::Length => Err(TotpError::InvalidBase32Length),
        Err(_) => Err(TotpError::InvalidBase32),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (a stray `%` is kept as is) and, when `plus_is_space`
/// (query components), `+` as a space.
fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi << 4) | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

fn decode_text(s: &str, plus_is_space: bool, what: &'static str) -> Result<String, TotpError> {
    String::from_utf8(percent_decode(s, plus_is_space)).map_err(|_| TotpError::InvalidUri(what))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// A short, printable rendition of a (non-secret) user value for errors.
fn truncate_echo(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_ECHO).collect();
    if s.chars().nth(MAX_ECHO).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn rfc_totp(seed: &[u8], algorithm: Algorithm) -> Totp {
        let mut t = Totp::new(seed.to_vec()).unwrap();
        t.algorithm = algorithm;
        t.digits = 8;
        t
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        // (time, SHA1, SHA256, SHA512)
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        let sha1 = rfc_totp(SEED_SHA1, Algorithm::Sha1);
        let sha256 = rfc_totp(SEED_SHA256, Algorithm::Sha256);
        let sha512 = rfc_totp(SEED_SHA512, Algorithm::Sha512);
        for (time, c1, c256, c512) in vectors {
            assert_eq!(sha1.code_at(time), c1, "sha1 at {time}");
            assert_eq!(sha256.code_at(time), c256, "sha256 at {time}");
            assert_eq!(sha512.code_at(time), c512, "sha512 at {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(
                hotp(SEED_SHA1, counter as u64, 6, Algorithm::Sha1),
                want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn hotp_extreme_digits_do_not_panic() {
        let full = hotp(SEED_SHA1, 0, 10, Algorithm::Sha1);
        assert_eq!(full, hotp(SEED_SHA1, 0, 99, Algorithm::Sha1));
        assert_eq!(full % 1_000_000, 755_224);
        assert_eq!(hotp(SEED_SHA1, 0, 0, Algorithm::Sha1), 0);
        assert!(hotp(b"", 0, 6, Algorithm::Sha256) < 1_000_000);
    }

    #[test]
    fn code_is_zero_padded() {
        // RFC 6238 SHA1 at t=1111111109 is 07081804; at 6 digits it is 081804.
        let mut t = rfc_totp(SEED_SHA1, Algorithm::Sha1);
        t.digits = 6;
        assert_eq!(t.code_at(1_111_111_109), "081804");
        t.digits = 10;
        assert_eq!(t.code_at(1_111_111_109).len(), 10);
    }

    #[test]
    fn zero_period_does_not_panic() {
        let mut t = Totp::parse("JBSWY3DPEHPK3PXP").unwrap();
        t.period = 0;
        let _ = t.code_at(1234);
        let (code, left) = t.now();
        assert_eq!(code.len(), 6);
        assert_eq!(left, 1);
    }

    #[test]
    fn now_reports_time_left() {
        let t = Totp::parse("JBSWY3DPEHPK3PXP").unwrap();
        let (code, left) = t.now();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert!((1..=30).contains(&left));
    }

    #[test]
    fn bare_secret_defaults() {
        let t = Totp::parse("JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(t.secret(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(t.algorithm, Algorithm::Sha1);
        assert_eq!(t.digits, 6);
        assert_eq!(t.period, 30);
        assert_eq!(t.issuer, None);
        assert_eq!(t.account, None);
        assert_eq!(t.secret_base32().as_str(), "JBSWY3DPEHPK3PXP");
    }

    #[test]
    fn bare_secret_lowercase_spaced_dashed_padded() {
        let want = Totp::parse("JBSWY3DPEHPK3PXP").unwrap();
        for input in [
            "jbswy3dpehpk3pxp",
            "jbsw y3dp ehpk 3pxp",
            "  JBSW-Y3DP-EHPK-3PXP\n",
            "jbswy3dpehpk3pxp======",
            "Jb Sw-y3 Dp\tEhPk 3pXp",
        ] {
            assert_eq!(
                Totp::parse(input).unwrap().secret(),
                want.secret(),
                "{input:?}"
            );
        }
        // Padded and unpadded non-multiple-of-8 lengths (1 byte = 2 chars).
        assert_eq!(Totp::parse("ME======").unwrap().secret(), b"a");
        assert_eq!(Totp::parse("me").unwrap().secret(), b"a");
    }

    #[test]
    fn lenient_trailing_bits() {
        // "MF" has non-zero trailing bits; strict decoders refuse it.
        assert_eq!(Totp::parse("MF").unwrap().secret(), b"a");
    }

    #[test]
    fn uri_full_parse() {
        let t = Totp::parse(
            "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60",
        )
        .unwrap();
        assert_eq!(t.issuer.as_deref(), Some("ACME Co"));
        assert_eq!(t.account.as_deref(), Some("john.doe@email.com"));
        assert_eq!(t.algorithm, Algorithm::Sha256);
        assert_eq!(t.digits, 8);
        assert_eq!(t.period, 60);
        assert_eq!(
            t.secret_base32().as_str(),
            "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
        );
    }

    #[test]
    fn uri_defaults_and_case_insensitive_scheme() {
        let t = Totp::parse("OTPAUTH://TOTP/alice?secret=jbswy3dpehpk3pxp").unwrap();
        assert_eq!(t.algorithm, Algorithm::Sha1);
        assert_eq!(t.digits, 6);
        assert_eq!(t.period, 30);
        assert_eq!(t.issuer, None);
        assert_eq!(t.account.as_deref(), Some("alice"));
    }

    #[test]
    fn uri_label_issuer_prefix() {
        let t =
            Totp::parse("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(t.issuer.as_deref(), Some("Example"));
        assert_eq!(t.account.as_deref(), Some("alice@google.com"));

        // Encoded separator and the optional spaces after it.
        let t =
            Totp::parse("otpauth://totp/Big%20Corp%3A%20%20bob?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(t.issuer.as_deref(), Some("Big Corp"));
        assert_eq!(t.account.as_deref(), Some("bob"));

        // The issuer parameter wins over the label prefix.
        let t = Totp::parse("otpauth://totp/Old:bob?secret=JBSWY3DPEHPK3PXP&issuer=New").unwrap();
        assert_eq!(t.issuer.as_deref(), Some("New"));
        assert_eq!(t.account.as_deref(), Some("bob"));
    }

    #[test]
    fn uri_percent_encoding() {
        let t = Totp::parse(
            "otpauth://totp/%C3%89cole%20%26%20Co:j%C3%BCrgen%2Bx%40example.org?secret=JBSW%20Y3DP%2DEHPK3PXP&issuer=%C3%89cole+%26+Co",
        )
        .unwrap();
        assert_eq!(t.issuer.as_deref(), Some("École & Co"));
        assert_eq!(t.account.as_deref(), Some("jürgen+x@example.org"));
        assert_eq!(t.secret_base32().as_str(), "JBSWY3DPEHPK3PXP");
    }

    #[test]
    fn uri_ignores_unknown_params_and_fragment() {
        let t = Totp::parse(
            "otpauth://totp/x?image=https%3A%2F%2Fexample.com%2Fa.png&secret=JBSWY3DPEHPK3PXP&algorithm=sha512#frag",
        )
        .unwrap();
        assert_eq!(t.algorithm, Algorithm::Sha512);
    }

    #[test]
    fn uri_round_trips() {
        let inputs = [
            "JBSWY3DPEHPK3PXP",
            "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP",
            "otpauth://totp/ACME%20Co:john?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA512&digits=10&period=3600",
            "otpauth://totp/?secret=ME&issuer=Only%20Issuer",
            "otpauth://totp/a%3Ab%3Ac?secret=ME&issuer=x%3Ay",
        ];
        for input in inputs {
            let t = Totp::parse(input).unwrap();
            let uri = t.to_uri();
            let back = Totp::parse(&uri).unwrap();
            assert_eq!(back, t, "{input} -> {uri}");
            assert_eq!(back.to_uri(), uri);
        }

        // Account containing ':' without issuer survives.
        let mut t = Totp::parse("ME").unwrap();
        t.account = Some("a:b".into());
        assert_eq!(Totp::parse(&t.to_uri()).unwrap(), t);
        // Issuer containing ':' survives.
        t.issuer = Some("x:y".into());
        assert_eq!(Totp::parse(&t.to_uri()).unwrap(), t);
    }

    #[test]
    fn canonical_uri_shape() {
        let t = Totp::parse(
            "otpauth://totp/ACME%20Co:john@example.com?secret=jbswy3dpehpk3pxp&issuer=ACME%20Co",
        )
        .unwrap();
        assert_eq!(
            t.to_uri(),
            "otpauth://totp/ACME%20Co:john%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn debug_redacts_secret() {
        let t = Totp::parse("JBSWY3DPEHPK3PXP").unwrap();
        let dbg = format!("{t:?}");
        assert!(dbg.contains("[redacted]"));
        assert!(!dbg.contains("JBSWY3DPEHPK3PXP"));
        assert!(!dbg.contains("72, 101"), "raw bytes leaked: {dbg}");
    }

    #[test]
    fn algorithm_serde_lowercase() {
        assert_eq!(
            serde_json::to_string(&Algorithm::Sha256).unwrap(),
            "\"sha256\""
        );
        let a: Algorithm = serde_json::from_str("\"sha512\"").unwrap();
        assert_eq!(a, Algorithm::Sha512);
    }

    #[test]
    fn error_empty_secret() {
        assert_eq!(Totp::parse(""), Err(TotpError::EmptySecret));
        assert_eq!(Totp::parse("  - = "), Err(TotpError::EmptySecret));
        assert_eq!(
            Totp::parse("otpauth://totp/x?secret="),
            Err(TotpError::EmptySecret)
        );
        assert_eq!(Totp::new(Vec::new()), Err(TotpError::EmptySecret));
    }

    #[test]
    fn error_invalid_base32_never_echoes_secret() {
        for input in [
            "JBSWY3DPEHPK3PX1",
            "JBSWY3DP!HPK3PXP",
            "otpauth://totp/x?secret=ABC0DEFG",
        ] {
            let err = Totp::parse(input).unwrap_err();
            assert_eq!(err, TotpError::InvalidBase32, "{input}");
            let msg = err.to_string();
            assert!(!msg.contains("JBSW") && !msg.contains("ABC0"), "{msg}");
        }
        assert_eq!(Totp::parse("ABC"), Err(TotpError::InvalidBase32Length));
        assert_eq!(Totp::parse("A"), Err(TotpError::InvalidBase32Length));
        assert_eq!(Totp::parse("ABCDEF"), Err(TotpError::InvalidBase32Length));
        // Padding in the middle is not allowed.
        assert_eq!(Totp::parse("ME==ME"), Err(TotpError::InvalidBase32));
        // Non-ASCII.
        assert_eq!(
            Totp::parse("JBSWY3DPÉHPK3PXP"),
            Err(TotpError::InvalidBase32)
        );
    }

    #[test]
    fn error_missing_secret() {
        assert_eq!(
            Totp::parse("otpauth://totp/x?issuer=a"),
            Err(TotpError::MissingSecret)
        );
        assert_eq!(
            Totp::parse("otpauth://totp/x"),
            Err(TotpError::MissingSecret)
        );
    }

    #[test]
    fn error_hotp_and_other_types() {
        let err = Totp::parse("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=0").unwrap_err();
        assert_eq!(err, TotpError::HotpUnsupported);
        assert!(err.to_string().contains("hotp"));
        assert_eq!(
            Totp::parse("otpauth://motp/x?secret=JBSWY3DPEHPK3PXP"),
            Err(TotpError::UnsupportedType("motp".into()))
        );
    }

    #[test]
    fn error_algorithm() {
        assert_eq!(
            Totp::parse("otpauth://totp/x?secret=ME&algorithm=MD5"),
            Err(TotpError::UnsupportedAlgorithm("MD5".into()))
        );
        assert_eq!(
            Totp::parse("otpauth://totp/x?secret=ME&algorithm=sha-256")
                .unwrap()
                .algorithm,
            Algorithm::Sha256
        );
    }

    #[test]
    fn error_digits_out_of_range() {
        for bad in ["5", "11", "0", "-6", "six", "", "99999999999999999999"] {
            let err = Totp::parse(&format!("otpauth://totp/x?secret=ME&digits={bad}")).unwrap_err();
            assert_eq!(err, TotpError::InvalidDigits(bad.into()), "{bad}");
            assert!(err.to_string().contains("6 to 10"));
        }
        for good in [6, 7, 8, 10] {
            let t = Totp::parse(&format!("otpauth://totp/x?secret=ME&digits={good}")).unwrap();
            assert_eq!(t.digits, good);
        }
    }

    #[test]
    fn error_period_out_of_range() {
        for bad in ["0", "3601", "-30", "thirty", ""] {
            let err = Totp::parse(&format!("otpauth://totp/x?secret=ME&period={bad}")).unwrap_err();
            assert_eq!(err, TotpError::InvalidPeriod(bad.into()), "{bad}");
            assert!(err.to_string().contains("1 to 3600"));
        }
        for good in [1, 15, 30, 3600] {
            let t = Totp::parse(&format!("otpauth://totp/x?secret=ME&period={good}")).unwrap();
            assert_eq!(t.period, good);
        }
    }

    #[test]
    fn error_duplicate_parameter() {
        assert_eq!(
            Totp::parse("otpauth://totp/x?secret=ME&secret=MF"),
            Err(TotpError::DuplicateParameter("secret"))
        );
        assert_eq!(
            Totp::parse("otpauth://totp/x?secret=ME&digits=6&digits=8"),
            Err(TotpError::DuplicateParameter("digits"))
        );
    }

    #[test]
    fn error_invalid_utf8_label() {
        assert_eq!(
            Totp::parse("otpauth://totp/%FF?secret=ME"),
            Err(TotpError::InvalidUri("label is not valid utf-8"))
        );
    }

    #[test]
    fn error_echo_is_truncated() {
        let long = "x".repeat(500);
        let err = Totp::parse(&format!("otpauth://totp/x?secret=ME&algorithm={long}")).unwrap_err();
        assert!(err.to_string().len() < 150);
    }

    #[test]
    fn error_messages_style() {
        let all = [
            TotpError::EmptySecret,
            TotpError::InvalidBase32,
            TotpError::InvalidBase32Length,
            TotpError::MissingSecret,
            TotpError::HotpUnsupported,
            TotpError::UnsupportedType("x".into()),
            TotpError::InvalidUri("y"),
            TotpError::UnsupportedAlgorithm("z".into()),
            TotpError::InvalidDigits("1".into()),
            TotpError::InvalidPeriod("0".into()),
            TotpError::DuplicateParameter("secret"),
        ];
        for e in all {
            let msg = e.to_string();
            let first = msg.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for input in [
            "otpauth://",
            "otpauth://totp",
            "otpauth://totp/",
            "otpauth://totp/?",
            "otpauth://totp/?&&=&",
            "otpauth://totp/%?secret=%ZZ",
            "otpauth://totp/%E2%82?secret=ME",
            "otpauth:/totp/x?secret=ME",
            "otpauth://totp/x?secret=ME%",
            "é",
            "%%%%",
            "\u{0}",
        ] {
            let _ = Totp::parse(input);
        }
    }
}
