//! Named keys (`openk key …`): the primitives behind an application's keys
//! and the versioned envelope their encryptions travel in.
//!
//! Every named key version is 32 random bytes from the OS RNG, whatever its
//! type: an AES-256-GCM or XChaCha20-Poly1305 key, an HMAC-SHA256 key, an
//! Ed25519 seed (RFC 8032) or an X25519 secret scalar (RFC 7748).
//!
//! # The envelope (`openk key encrypt`)
//!
//! ```text
//! offset  size  field
//! 0       4     magic "OKE1" (0x4f 0x4b 0x45 0x31: OpenK envelope, format 1)
//! 4       1     algorithm: 1 = AES-256-GCM, 2 = XChaCha20-Poly1305
//! 5       16    key id (the named key's UUID, big-endian bytes)
//! 21      4     key version (u32, big-endian)
//! 25      n     nonce: 12 bytes (AES-256-GCM) or 24 bytes (XChaCha20-Poly1305), random
//! 25+n    …     ciphertext, then the 16-byte tag
//! ```
//!
//! The associated data is the 25-byte header (magic to version), so a
//! changed algorithm, key id or version fails the tag like changed
//! ciphertext does. Nothing is compressed or padded: the envelope is 41 +
//! nonce bytes longer than the plaintext.

use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::{Signer as _, Verifier as _};
use hmac::Mac as _;
use rand::RngCore as _;
use rand::rngs::OsRng;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{CryptoError, Key};

/// The first four bytes of every envelope.
pub const MAGIC: &[u8; 4] = b"OKE1";
/// Bytes before the nonce (and the associated data).
pub const HEADER_LEN: usize = 4 + 1 + 16 + 4;
/// The AEAD tag's length (both algorithms).
pub const TAG_LEN: usize = 16;
/// The longest HKDF-SHA256 output (255 × 32 bytes, RFC 5869 §2.3).
pub const MAX_DERIVE: usize = 255 * 32;

/// What a named key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Aes256Gcm,
    XChaCha20,
    Ed25519,
    X25519,
    HmacSha256,
}

impl KeyType {
    pub const ALL: [Self; 5] = [
        Self::Aes256Gcm,
        Self::XChaCha20,
        Self::Ed25519,
        Self::X25519,
        Self::HmacSha256,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes256-gcm",
            Self::XChaCha20 => "xchacha20",
            Self::Ed25519 => "ed25519",
            Self::X25519 => "x25519",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The envelope's algorithm byte (encryption types only).
    #[must_use]
    pub fn algorithm(self) -> Option<u8> {
        match self {
            Self::Aes256Gcm => Some(1),
            Self::XChaCha20 => Some(2),
            _ => None,
        }
    }

    fn nonce_len(algorithm: u8) -> Option<usize> {
        match algorithm {
            1 => Some(12),
            2 => Some(24),
            _ => None,
        }
    }

    /// Whether `openk key derive` works with it (the symmetric types: an
    /// Ed25519 seed or X25519 secret is never reused as HKDF input).
    #[must_use]
    pub fn derives(self) -> bool {
        matches!(self, Self::Aes256Gcm | Self::XChaCha20 | Self::HmacSha256)
    }

    /// Whether it has a public half (`openk key public`).
    #[must_use]
    pub fn has_public(self) -> bool {
        matches!(self, Self::Ed25519 | Self::X25519)
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fresh key version (32 bytes from the OS RNG; any type).
#[must_use]
pub fn generate() -> Key {
    Key::random()
}

/// HKDF-SHA256 (RFC 5869): extract with `salt` (`None`: 32 zero bytes, as
/// the RFC says), expand with `info` to `len` bytes.
///
/// # Errors
/// [`CryptoError::Malformed`] for a length of 0 or above [`MAX_DERIVE`].
pub fn hkdf_sha256(
    ikm: &[u8],
    salt: Option<&[u8]>,
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if len == 0 || len > MAX_DERIVE {
        return Err(CryptoError::Malformed);
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    hkdf::Hkdf::<sha2::Sha256>::new(salt, ikm)
        .expand(info, &mut out)
        .map_err(|_| CryptoError::Malformed)?;
    Ok(out)
}

/// `openk key derive`: HKDF-SHA256 with the key version as input keying
/// material, no salt and the context as `info`.
///
/// # Errors
/// As [`hkdf_sha256`].
pub fn derive(key: &Key, context: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    hkdf_sha256(key.expose(), None, context, len)
}

/// The fields of an envelope's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeHeader {
    pub algorithm: u8,
    pub key_id: Uuid,
    pub version: u32,
}

impl EnvelopeHeader {
    fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(MAGIC);
        h[4] = self.algorithm;
        h[5..21].copy_from_slice(self.key_id.as_bytes());
        h[21..25].copy_from_slice(&self.version.to_be_bytes());
        h
    }
}

/// Why an envelope was refused before its tag was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("this is not an OpenK envelope (no OKE1 magic)")]
    NotAnEnvelope,
    #[error("the envelope is truncated")]
    Truncated,
    #[error("the envelope names an unknown algorithm ({0})")]
    UnknownAlgorithm(u8),
}

/// Reads an envelope's header (nothing is decrypted or authenticated yet).
///
/// # Errors
/// [`EnvelopeError`].
pub fn envelope_header(envelope: &[u8]) -> Result<EnvelopeHeader, EnvelopeError> {
    if envelope.len() < 4 || &envelope[..4] != MAGIC {
        return Err(EnvelopeError::NotAnEnvelope);
    }
    if envelope.len() < HEADER_LEN {
        return Err(EnvelopeError::Truncated);
    }
    let algorithm = envelope[4];
    let nonce = KeyType::nonce_len(algorithm).ok_or(EnvelopeError::UnknownAlgorithm(algorithm))?;
    if envelope.len() < HEADER_LEN + nonce + TAG_LEN {
        return Err(EnvelopeError::Truncated);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&envelope[5..21]);
    let mut v = [0u8; 4];
    v.copy_from_slice(&envelope[21..25]);
    Ok(EnvelopeHeader {
        algorithm,
        key_id: Uuid::from_bytes(id),
        version: u32::from_be_bytes(v),
    })
}

/// Encrypts `plaintext` into an envelope for the key `key_id` version
/// `version` of type `kind` (an encryption type).
///
/// # Errors
/// [`CryptoError::Malformed`] for a type that does not encrypt.
pub fn seal_envelope(
    kind: KeyType,
    key: &Key,
    key_id: Uuid,
    version: u32,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let algorithm = kind.algorithm().ok_or(CryptoError::Malformed)?;
    let header = EnvelopeHeader {
        algorithm,
        key_id,
        version,
    }
    .bytes();
    let nonce_len = KeyType::nonce_len(algorithm).ok_or(CryptoError::Malformed)?;
    let mut nonce = vec![0u8; nonce_len];
    OsRng.fill_bytes(&mut nonce);
    let payload = Payload {
        msg: plaintext,
        aad: &header,
    };
    let ct = match kind {
        KeyType::Aes256Gcm => {
            Aes256Gcm::new(key.expose().into()).encrypt(aes_gcm::Nonce::from_slice(&nonce), payload)
        }
        _ => XChaCha20Poly1305::new(key.expose().into())
            .encrypt(chacha20poly1305::XNonce::from_slice(&nonce), payload),
    }
    .map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(HEADER_LEN + nonce_len + ct.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts an envelope with `key` (the version its header names).
///
/// # Errors
/// [`CryptoError::Malformed`] for an envelope that does not parse or names
/// another algorithm than `kind`'s; [`CryptoError::Decrypt`] for a wrong
/// key or any changed byte.
pub fn open_envelope(
    kind: KeyType,
    key: &Key,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let header = envelope_header(envelope).map_err(|_| CryptoError::Malformed)?;
    if Some(header.algorithm) != kind.algorithm() {
        return Err(CryptoError::Malformed);
    }
    let nonce_len = KeyType::nonce_len(header.algorithm).ok_or(CryptoError::Malformed)?;
    let (aad, rest) = envelope.split_at(HEADER_LEN);
    let (nonce, ct) = rest.split_at(nonce_len);
    let payload = Payload { msg: ct, aad };
    let pt = match kind {
        KeyType::Aes256Gcm => {
            Aes256Gcm::new(key.expose().into()).decrypt(aes_gcm::Nonce::from_slice(nonce), payload)
        }
        _ => XChaCha20Poly1305::new(key.expose().into())
            .decrypt(chacha20poly1305::XNonce::from_slice(nonce), payload),
    }
    .map_err(|_| CryptoError::Decrypt)?;
    Ok(Zeroizing::new(pt))
}

fn ed25519(key: &Key) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(key.expose())
}

fn hmac(key: &Key) -> hmac::Hmac<sha2::Sha256> {
    // HMAC takes a key of any length: this never fails.
    <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// An Ed25519 signature (64 bytes) or an HMAC-SHA256 tag (32 bytes).
///
/// # Errors
/// [`CryptoError::Malformed`] for a type that neither signs nor MACs.
pub fn sign(kind: KeyType, key: &Key, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match kind {
        KeyType::Ed25519 => Ok(ed25519(key).sign(data).to_bytes().to_vec()),
        KeyType::HmacSha256 => {
            let mut m = hmac(key);
            m.update(data);
            Ok(m.finalize().into_bytes().to_vec())
        }
        _ => Err(CryptoError::Malformed),
    }
}

/// Checks a signature or MAC from [`sign`] (constant time for a MAC).
///
/// # Errors
/// [`CryptoError::BadSignature`] when it does not hold;
/// [`CryptoError::Malformed`] for a type that neither signs nor MACs.
pub fn verify(kind: KeyType, key: &Key, data: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    match kind {
        KeyType::Ed25519 => {
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| CryptoError::BadSignature)?;
            ed25519(key)
                .verifying_key()
                .verify(data, &sig)
                .map_err(|_| CryptoError::BadSignature)
        }
        KeyType::HmacSha256 => {
            let mut m = hmac(key);
            m.update(data);
            m.verify_slice(signature)
                .map_err(|_| CryptoError::BadSignature)
        }
        _ => Err(CryptoError::Malformed),
    }
}

/// The public half: an Ed25519 verifying key or an X25519 public key (32
/// bytes each).
///
/// # Errors
/// [`CryptoError::Malformed`] for a symmetric type.
pub fn public(kind: KeyType, key: &Key) -> Result<[u8; 32], CryptoError> {
    match kind {
        KeyType::Ed25519 => Ok(ed25519(key).verifying_key().to_bytes()),
        KeyType::X25519 => {
            let secret = x25519_dalek::StaticSecret::from(*key.expose());
            Ok(x25519_dalek::PublicKey::from(&secret).to_bytes())
        }
        _ => Err(CryptoError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// RFC 5869 appendix A, test cases 1 to 3 (SHA-256), through
    /// [`hkdf_sha256`], the function [`derive`] calls.
    #[test]
    fn hkdf_matches_rfc5869_appendix_a() {
        let cases: [(&str, Option<&str>, &str, usize, &str); 3] = [
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                Some("000102030405060708090a0b0c"),
                "f0f1f2f3f4f5f6f7f8f9",
                42,
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            ),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
                 404142434445464748494a4b4c4d4e4f",
                Some(
                    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
                     808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
                     a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
                ),
                "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf\
                 d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef\
                 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                82,
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
                 59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
                 cc30c58179ec3e87c14c01d5c1f3434f1d87",
            ),
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                None,
                "",
                42,
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
            ),
        ];
        for (i, (ikm, salt, info, len, okm)) in cases.iter().enumerate() {
            let salt = salt.map(h);
            let out = hkdf_sha256(&h(ikm), salt.as_deref(), &h(info), *len).expect("derive");
            assert_eq!(out.as_slice(), h(okm).as_slice(), "case {}", i + 1);
        }
        // Case 3 has no salt: exactly what `derive` does.
        let mut ikm = [0x0bu8; 32];
        let key = Key::from_bytes(&mut ikm);
        let d = derive(&key, b"ctx", 42).expect("derive");
        let again = hkdf_sha256(&[0x0b; 32], None, b"ctx", 42).expect("derive");
        assert_eq!(d.as_slice(), again.as_slice());
        assert!(hkdf_sha256(b"k", None, b"", 0).is_err());
        assert!(hkdf_sha256(b"k", None, b"", MAX_DERIVE + 1).is_err());
        assert_eq!(
            hkdf_sha256(b"k", None, b"", MAX_DERIVE).expect("max").len(),
            MAX_DERIVE
        );
    }

    #[test]
    fn envelopes_round_trip_and_refuse_any_changed_byte() {
        for kind in [KeyType::Aes256Gcm, KeyType::XChaCha20] {
            let key = generate();
            let id = Uuid::now_v7();
            let env = seal_envelope(kind, &key, id, 7, b"hello").expect("seal");
            let h = envelope_header(&env).expect("header");
            assert_eq!(
                (h.key_id, h.version, Some(h.algorithm)),
                (id, 7, kind.algorithm())
            );
            assert_eq!(
                open_envelope(kind, &key, &env).expect("open").as_slice(),
                b"hello"
            );
            for i in 0..env.len() {
                let mut bad = env.clone();
                bad[i] ^= 1;
                assert!(open_envelope(kind, &key, &bad).is_err(), "{kind} byte {i}");
            }
            assert!(open_envelope(kind, &generate(), &env).is_err());
            assert_eq!(
                envelope_header(&env[..HEADER_LEN + 3]),
                Err(EnvelopeError::Truncated)
            );
            assert_eq!(envelope_header(b"nope"), Err(EnvelopeError::NotAnEnvelope));
        }
        assert!(seal_envelope(KeyType::Ed25519, &generate(), Uuid::nil(), 1, b"x").is_err());
    }

    #[test]
    fn signatures_and_macs_verify_only_unchanged() {
        for kind in [KeyType::Ed25519, KeyType::HmacSha256] {
            let key = generate();
            let sig = sign(kind, &key, b"data").expect("sign");
            assert_eq!(sig.len(), if kind == KeyType::Ed25519 { 64 } else { 32 });
            verify(kind, &key, b"data", &sig).expect("verifies");
            assert!(verify(kind, &key, b"Data", &sig).is_err());
            assert!(verify(kind, &generate(), b"data", &sig).is_err());
            assert!(verify(kind, &key, b"data", &sig[1..]).is_err());
        }
        let key = generate();
        let pk = public(KeyType::Ed25519, &key).expect("public");
        let sig = sign(KeyType::Ed25519, &key, b"m").expect("sign");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).expect("vk");
        vk.verify(
            b"m",
            &ed25519_dalek::Signature::from_slice(&sig).expect("sig"),
        )
        .expect("the public key verifies");
        assert!(public(KeyType::HmacSha256, &key).is_err());
        assert!(public(KeyType::X25519, &key).is_ok());
    }
}
