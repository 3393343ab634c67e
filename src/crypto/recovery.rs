//! Account recovery (issue 13): the recovery code, the keys it derives, and
//! its split into shares for trusted people.
//!
//! - The code is 160 random bits, shown as `OKR-XXXXXX-…` (RFC 4648 base32
//!   with a checksum byte, like the Secret Key), once, at setup.
//! - It derives, with HKDF-SHA256 (salt `openk recovery v1`), the input of
//!   HPKE's `DeriveKeyPair` (RFC 9180 §7.1.3) for an X25519 key pair, and a
//!   32-byte auth key. The account key is sealed to the public key with HPKE
//!   ([`super::hpke`]); the server keeps that box, the public key and a hash
//!   of the auth key: nothing that opens the box.
//! - Shares: Shamir's secret sharing over GF(256) of the code's 20 bytes,
//!   from the `blahaj` crate (the maintained fork of `sharks`, whose
//!   coefficients are uniform over the whole field: `sharks` 0.5 drew them
//!   non-zero, RUSTSEC-2024-0398, which leaks a little of the secret to
//!   K−1 shares). A share prints as `OKS-…`: base32 of the threshold, the
//!   share's x, its 20 y bytes and a checksum byte.

use hkdf::Hkdf;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;
use super::secret::{Key, random_array};

const CODE_PREFIX: &str = "OKR";
const SHARE_PREFIX: &str = "OKS";
/// The code's length in bytes (160 bits).
pub const CODE_LEN: usize = 20;
/// HPKE `info` of the account key sealed to the recovery key.
const SEAL_INFO: &[u8] = b"openk recovery account key v1";

/// The recovery code.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RecoveryCode(Box<[u8; CODE_LEN]>);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(***)")
    }
}

/// SHA-256 of a label and bytes, first byte: a typo check.
fn checksum(label: &[u8], bytes: &[u8]) -> u8 {
    let mut h = Sha256::new();
    h.update(label);
    h.update(bytes);
    h.finalize()[0]
}

/// `PREFIX-XXXXXX-…`: base32 of `raw` in groups of six.
fn grouped(prefix: &str, raw: &[u8]) -> Zeroizing<String> {
    let encoded = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(raw));
    let mut out = Zeroizing::new(String::from(prefix));
    for chunk in encoded.as_bytes().chunks(6) {
        out.push('-');
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

/// The bytes of a grouped text: case, spaces and dashes do not matter, and
/// the look-alikes `0` and `1` read as `O` and `I`.
fn ungrouped(prefix: &str, text: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let upper: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| match c.to_ascii_uppercase() {
                '0' => 'O',
                '1' => 'I',
                other => other,
            })
            .collect(),
    );
    // The prefix itself has no look-alikes but `O` in `OK…`.
    let Some(body) = upper.strip_prefix(&prefix.replace('0', "O")) else {
        return Err(CryptoError::RecoveryFormat(format!(
            "a {what} starts with {prefix}-"
        )));
    };
    data_encoding::BASE32_NOPAD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| {
            CryptoError::RecoveryFormat(format!(
                "the {what} has a character that is not A-Z or 2-7, or the wrong length"
            ))
        })
}

impl RecoveryCode {
    #[must_use]
    pub fn generate() -> Self {
        Self(Box::new(random_array()))
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; CODE_LEN] = bytes.try_into().ok()?;
        Some(Self(Box::new(arr)))
    }

    /// The text form, `OKR-…`, for the recovery kit.
    #[must_use]
    pub fn display(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(CODE_LEN + 1));
        raw.extend_from_slice(self.0.as_ref());
        raw.push(checksum(b"openk-recovery-code", self.0.as_ref()));
        grouped(CODE_PREFIX, &raw)
    }

    /// Parses the text form (never echoing it in an error).
    ///
    /// # Errors
    /// `CryptoError::RecoveryFormat` saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let raw = ungrouped(CODE_PREFIX, text, "recovery code")?;
        if raw.len() != CODE_LEN + 1 {
            return Err(CryptoError::RecoveryFormat(
                "the recovery code has the wrong length".into(),
            ));
        }
        if checksum(b"openk-recovery-code", &raw[..CODE_LEN]) != raw[CODE_LEN] {
            return Err(CryptoError::RecoveryFormat(
                "the recovery code's checksum does not match (a typo?)".into(),
            ));
        }
        Self::from_bytes(&raw[..CODE_LEN]).ok_or(CryptoError::Malformed)
    }

    /// The keys the code derives.
    #[must_use]
    pub fn keys(&self) -> RecoveryKeys {
        let hk = Hkdf::<Sha256>::new(Some(b"openk recovery v1"), self.0.as_ref());
        let mut ikm = Zeroizing::new([0u8; 32]);
        let mut auth = [0u8; 32];
        // 32 bytes are far below HKDF-SHA256's limit: expand cannot fail.
        hk.expand(b"x25519 key pair", ikm.as_mut()).ok();
        hk.expand(b"auth key", &mut auth).ok();
        let (secret, public) = super::hpke::derive_keypair(ikm.as_ref());
        RecoveryKeys {
            secret,
            public,
            auth: Key::from_bytes(&mut auth),
        }
    }

    /// Splits the code into `shares` shares, any `threshold` of which make
    /// it again (fewer reveal nothing about it).
    ///
    /// # Errors
    /// `CryptoError::RecoveryFormat` for a threshold below 2 or above the
    /// number of shares, or more than 255 shares.
    pub fn split(&self, shares: u8, threshold: u8) -> Result<Vec<Zeroizing<String>>, CryptoError> {
        if threshold < 2 || threshold > shares {
            return Err(CryptoError::RecoveryFormat(format!(
                "the threshold must be at least 2 and at most the number of shares ({shares})"
            )));
        }
        let dealer = blahaj::Sharks(threshold).dealer_rng(self.0.as_ref(), &mut rand::rngs::OsRng);
        Ok(dealer
            .take(usize::from(shares))
            .map(|share| {
                let bytes = Zeroizing::new(Vec::from(&share));
                let mut raw = Zeroizing::new(Vec::with_capacity(bytes.len() + 2));
                raw.push(threshold);
                raw.extend_from_slice(&bytes);
                let sum = checksum(b"openk-recovery-share", &raw);
                raw.push(sum);
                grouped(SHARE_PREFIX, &raw)
            })
            .collect())
    }

    /// The code that `shares` (text forms) make.
    ///
    /// # Errors
    /// `CryptoError::RecoveryFormat`: a share that does not parse (its
    /// number in the list is named, never its text), shares of different
    /// thresholds, the same share twice, or fewer shares than the threshold.
    pub fn combine<S: AsRef<str>>(shares: &[S]) -> Result<Self, CryptoError> {
        let mut threshold = None;
        let mut parsed = Vec::with_capacity(shares.len());
        let mut seen = std::collections::HashSet::new();
        for (i, text) in shares.iter().enumerate() {
            let n = i + 1;
            let raw = ungrouped(SHARE_PREFIX, text.as_ref(), "share").map_err(|e| {
                CryptoError::RecoveryFormat(format!("share {n}: {}", strip_kind(&e)))
            })?;
            if raw.len() != CODE_LEN + 3 {
                return Err(CryptoError::RecoveryFormat(format!(
                    "share {n} has the wrong length"
                )));
            }
            let (body, sum) = raw.split_at(raw.len() - 1);
            if checksum(b"openk-recovery-share", body) != sum[0] {
                return Err(CryptoError::RecoveryFormat(format!(
                    "share {n}'s checksum does not match (a typo?)"
                )));
            }
            let k = body[0];
            if *threshold.get_or_insert(k) != k {
                return Err(CryptoError::RecoveryFormat(format!(
                    "share {n} belongs to another split (threshold {k}, the others {})",
                    threshold.unwrap_or(k)
                )));
            }
            if !seen.insert(body[1]) {
                return Err(CryptoError::RecoveryFormat(format!(
                    "share {n} is given twice"
                )));
            }
            let share = blahaj::Share::try_from(&body[1..])
                .map_err(|_| CryptoError::RecoveryFormat(format!("share {n} is malformed")))?;
            parsed.push(share);
        }
        let Some(k) = threshold else {
            return Err(CryptoError::RecoveryFormat("no shares given".into()));
        };
        if parsed.len() < usize::from(k) {
            return Err(CryptoError::RecoveryFormat(format!(
                "{} shares given; these shares need {k} to make the recovery code",
                parsed.len()
            )));
        }
        let secret =
            Zeroizing::new(blahaj::Sharks(k).recover(&parsed).map_err(|e| {
                CryptoError::RecoveryFormat(format!("the shares do not combine: {e}"))
            })?);
        Self::from_bytes(&secret).ok_or(CryptoError::Malformed)
    }
}

/// The message of a format error, without its kind's prefix.
fn strip_kind(e: &CryptoError) -> String {
    match e {
        CryptoError::RecoveryFormat(m) => m.clone(),
        other => other.to_string(),
    }
}

/// What a recovery code derives.
pub struct RecoveryKeys {
    secret: Zeroizing<[u8; 32]>,
    /// The X25519 public key the server keeps.
    pub public: [u8; 32],
    /// Proves the code to the server (kept there as a salted hash).
    pub auth: Key,
}

impl std::fmt::Debug for RecoveryKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKeys(***)")
    }
}

/// The associated data of the sealed account key: the account and the key's version.
fn seal_aad(account_id: Uuid, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(20);
    aad.extend_from_slice(account_id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Seals the account key (of `version`) to a recovery public key.
///
/// # Errors
/// [`CryptoError::WeakPublicKey`] for a public key no key agrees with.
pub fn seal_account_key(
    public: &[u8; 32],
    account_id: Uuid,
    version: u32,
    account_key: &Key,
) -> Result<Vec<u8>, CryptoError> {
    super::hpke::seal_to(
        public,
        SEAL_INFO,
        &seal_aad(account_id, version),
        account_key.expose(),
    )
}

impl RecoveryKeys {
    /// Opens the account key [`seal_account_key`] sealed to this code.
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] for another code, account or version, or
    /// altered bytes.
    pub fn open_account_key(
        &self,
        account_id: Uuid,
        version: u32,
        sealed: &[u8],
    ) -> Result<Key, CryptoError> {
        let plain = super::hpke::open_with_secret(
            &self.secret,
            SEAL_INFO,
            &seal_aad(account_id, version),
            sealed,
        )?;
        Key::from_slice(&plain).ok_or(CryptoError::Malformed)
    }
}

/// What the account's identity key signs of a recovery public key, so that
/// a device sealing a new account key to it knows the account set it up.
#[must_use]
pub fn key_message(account_id: Uuid, public: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"openk recovery key v1");
    m.extend_from_slice(account_id.as_bytes());
    m.extend_from_slice(public);
    m
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn codes_round_trip_and_typos_are_caught() {
        let code = RecoveryCode::generate();
        let text = code.display();
        assert!(text.starts_with("OKR-"), "{}", text.as_str());
        assert_eq!(RecoveryCode::parse(&text).expect("parse"), code);
        assert_eq!(
            RecoveryCode::parse(&text.to_lowercase().replace('-', " ")).expect("loose"),
            code
        );
        let mut typo = text.to_string();
        let last = typo.pop().expect("char");
        typo.push(if last == 'A' { 'B' } else { 'A' });
        let e = RecoveryCode::parse(&typo).expect_err("typo");
        assert!(
            e.to_string().contains("checksum") || e.to_string().contains("length"),
            "{e}"
        );
        assert!(!e.to_string().contains(&typo), "{e}");
        let e = RecoveryCode::parse("OK1-AAAA").expect_err("a Secret Key is not a code");
        assert!(e.to_string().contains("OKR-"), "{e}");
    }

    #[test]
    fn the_code_derives_the_same_keys_and_opens_what_was_sealed_to_it() {
        let code = RecoveryCode::generate();
        let a = code.keys();
        let b = RecoveryCode::parse(&code.display()).expect("parse").keys();
        assert_eq!(a.public, b.public);
        assert_eq!(a.auth.expose(), b.auth.expose());
        assert_ne!(a.public.as_slice(), a.auth.expose().as_slice());
        let account = Uuid::now_v7();
        let ak = Key::random();
        let sealed = seal_account_key(&a.public, account, 3, &ak).expect("seal");
        assert_eq!(
            b.open_account_key(account, 3, &sealed)
                .expect("open")
                .expose(),
            ak.expose()
        );
        // Another version, account or code opens nothing.
        assert!(b.open_account_key(account, 2, &sealed).is_err());
        assert!(b.open_account_key(Uuid::now_v7(), 3, &sealed).is_err());
        let other = RecoveryCode::generate().keys();
        assert!(other.open_account_key(account, 3, &sealed).is_err());
    }

    #[test]
    fn bad_share_sets_say_what_is_wrong() {
        let code = RecoveryCode::generate();
        let shares = code.split(5, 3).expect("split");
        let other = RecoveryCode::generate().split(5, 2).expect("split");
        let e = |s: &[&str]| RecoveryCode::combine(s).expect_err("refused").to_string();
        assert!(e(&[&shares[0], &shares[1]]).contains("need 3"));
        assert!(e(&[&shares[0], &shares[0], &shares[1]]).contains("twice"));
        assert!(e(&[&shares[0], &shares[1], &other[2]]).contains("another split"));
        assert!(e(&[&shares[0], "OKS-AAAA"]).contains("share 2"));
        assert!(e(&[]).contains("no shares"));
        let mut typo = shares[2].to_string();
        let last = typo.pop().expect("char");
        typo.push(if last == 'A' { 'B' } else { 'A' });
        let msg = e(&[&shares[0], &shares[1], &typo]);
        assert!(msg.contains("share 3"), "{msg}");
        assert!(!msg.contains(typo.as_str()), "{msg}");
        assert!(code.split(5, 1).is_err());
        assert!(code.split(2, 3).is_err());
    }

    /// The dealer's coefficients are uniform over GF(256): one share of a
    /// 2-of-n split takes every value, the secret's own included (with
    /// coefficients drawn non-zero, as `sharks` 0.5 did, a share never
    /// equals the secret, and so tells something about it).
    #[test]
    fn one_share_of_two_takes_every_value_the_secret_included() {
        let code = RecoveryCode(Box::new([0x5a; CODE_LEN]));
        let mut equal = 0;
        for _ in 0..200 {
            for share in blahaj::Sharks(2)
                .dealer_rng(code.0.as_ref(), &mut rand::rngs::OsRng)
                .take(1)
            {
                let bytes = Vec::from(&share);
                equal += bytes[1..].iter().filter(|&&y| y == 0x5a).count();
            }
        }
        // 4000 samples, each equal with probability 1/256: about 16.
        assert!(
            equal > 0,
            "a share never equals the secret: biased coefficients"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any K of N shares make the code; K−1 make nothing, and reveal
        /// nothing: whatever the code, some K-th share completes those K−1
        /// to it (every value of the code's first byte is reachable, each
        /// from exactly one value of the K-th share's first byte).
        #[test]
        fn k_shares_recover_and_k_minus_1_reveal_nothing(
            n in 2u8..=8, k_off in 0u8..8, pick in any::<u64>(),
        ) {
            let k = 2 + k_off % (n - 1);
            let code = RecoveryCode::generate();
            let shares = code.split(n, k).expect("split");
            prop_assert_eq!(shares.len(), usize::from(n));
            // A pseudo-random subset of K shares, in a shuffled order.
            let mut order: Vec<usize> = (0..usize::from(n)).collect();
            let mut x = pick;
            for i in (1..order.len()).rev() {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                order.swap(i, usize::try_from(x >> 33).unwrap_or(0) % (i + 1));
            }
            let chosen: Vec<&str> = order[..usize::from(k)].iter().map(|&i| shares[i].as_str()).collect();
            prop_assert_eq!(&RecoveryCode::combine(&chosen).expect("combine"), &code);
            let fewer = &chosen[..usize::from(k) - 1];
            prop_assert!(RecoveryCode::combine(fewer).is_err());
            // The K−1 shares' raw bytes, and a made-up K-th share at an x
            // none of the N uses (x = 255 - 0, the dealer numbers from 1).
            let raw: Vec<Zeroizing<Vec<u8>>> = fewer
                .iter()
                .map(|s| ungrouped(SHARE_PREFIX, s, "share").expect("raw"))
                .collect();
            let mut parts: Vec<blahaj::Share> = raw
                .iter()
                .map(|r| blahaj::Share::try_from(&r[1..r.len() - 1]).expect("share"))
                .collect();
            let mut firsts = std::collections::HashSet::new();
            for y0 in 0..=255u8 {
                let mut made = vec![255u8, y0];
                made.extend_from_slice(&[0; CODE_LEN - 1]);
                parts.push(blahaj::Share::try_from(made.as_slice()).expect("made"));
                let secret = blahaj::Sharks(k).recover(&parts).expect("recover");
                firsts.insert(secret[0]);
                parts.pop();
            }
            prop_assert_eq!(firsts.len(), 256);
        }
    }
}
