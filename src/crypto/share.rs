//! The envelope of a share link (DESIGN §7): AES-256-GCM, the one place
//! OpenK does not use XChaCha20-Poly1305.
//!
//! A blob is `version(1) || nonce(12) || ciphertext || tag(16)`, sealed
//! with associated data [`SHARE_LINK_AAD`], under a fresh random 32-byte
//! key that only the link's URL fragment carries.
//!
//! # Why AES-256-GCM here?
//! A recipient without OpenK opens the link in a browser, and the page
//! the server serves decrypts it with WebCrypto, which has AES-GCM but no
//! XChaCha20-Poly1305. The alternative, shipping a cipher written in
//! JavaScript with the page, would put code the browser did not vet on the
//! one path that handles the plaintext. GCM's weak point is its 96-bit
//! nonce: a random nonce repeated under one key breaks it. Here every key
//! seals exactly one message (one snapshot, then the key is dropped), so a
//! nonce can never repeat under it; it is random anyway.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::CryptoError;
use super::secret::{Key, random_array};

/// The only share-link envelope version this build reads or writes.
pub const SHARE_VERSION: u8 = 1;
/// Associated data of every share link: its purpose and version. The page
/// in `assets/share/share.js` uses the same bytes.
pub const SHARE_LINK_AAD: &[u8] = b"openk/v1/share-link";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Smallest possible blob: version, nonce and tag around an empty plaintext.
pub const MIN_SHARE_BLOB_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// Encrypts a share link's plaintext under its key.
#[must_use]
pub fn seal_link(key: &Key, plaintext: &[u8]) -> Vec<u8> {
    seal_with(key, SHARE_LINK_AAD, plaintext, &random_array::<NONCE_LEN>())
}

/// Decrypts a blob made by [`seal_link`].
///
/// # Errors
/// [`CryptoError::UnsupportedVersion`] for another envelope version,
/// [`CryptoError::Malformed`] for a blob too short to be one, and
/// [`CryptoError::Decrypt`] for a wrong key or any altered byte.
pub fn open_link(key: &Key, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open_with(key, SHARE_LINK_AAD, blob)
}

fn seal_with(key: &Key, aad: &[u8], plaintext: &[u8], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.expose().into());
    // Encryption fails only for plaintexts beyond 64 GiB, which never reach here.
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    blob.push(SHARE_VERSION);
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(&sealed);
    blob
}

fn open_with(key: &Key, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < MIN_SHARE_BLOB_LEN {
        return Err(CryptoError::Malformed);
    }
    if blob[0] != SHARE_VERSION {
        return Err(CryptoError::UnsupportedVersion(blob[0]));
    }
    let (nonce, sealed) = blob[1..].split_at(NONCE_LEN);
    Aes256Gcm::new(key.expose().into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::wycheproof::Suite;

    #[test]
    fn round_trip_and_layout() {
        let k = Key::random();
        let blob = seal_link(&k, b"hunter2");
        assert_eq!(blob[0], SHARE_VERSION);
        assert_eq!(blob.len(), MIN_SHARE_BLOB_LEN + 7);
        assert_eq!(open_link(&k, &blob).expect("opens").as_slice(), b"hunter2");
        assert_ne!(seal_link(&k, b"x"), seal_link(&k, b"x"), "random nonces");
    }

    #[test]
    fn wrong_key_wrong_aad_flipped_bits_and_versions_fail() {
        let k = Key::random();
        let blob = seal_link(&k, b"secret");
        assert!(matches!(
            open_link(&Key::random(), &blob),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            open_with(&k, b"openk/v1/item-details", &blob),
            Err(CryptoError::Decrypt)
        ));
        for i in 1..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 0x80;
            assert!(
                matches!(open_link(&k, &flipped), Err(CryptoError::Decrypt)),
                "byte {i}"
            );
        }
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert!(matches!(
            open_link(&k, &v2),
            Err(CryptoError::UnsupportedVersion(2))
        ));
        for len in 0..MIN_SHARE_BLOB_LEN {
            assert!(matches!(
                open_link(&k, &blob[..len]),
                Err(CryptoError::Malformed)
            ));
        }
    }

    /// McGrew–Viega, "The Galois/Counter Mode of Operation", test case 16
    /// (AES-256, 96-bit IV, with associated data).
    #[test]
    fn gcm_spec_test_case_16() {
        let h = |s: &str| hex::decode(s).expect("hex");
        let key = Key::from_slice(&h(
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        ))
        .expect("32 bytes");
        let nonce: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().expect("12");
        let pt = h(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let expected = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
                        76fc6ece0f4e1768cddf8853bb2d551b";
        let blob = seal_with(&key, &aad, &pt, &nonce);
        assert_eq!(hex::encode(&blob[1 + NONCE_LEN..]), expected);
        assert_eq!(open_with(&key, &aad, &blob).expect("opens").as_slice(), pt);
    }

    /// Every Wycheproof AES-GCM case this envelope can express (256-bit
    /// key, 96-bit nonce, 128-bit tag): valid ones seal to the published
    /// bytes and open, invalid ones are refused.
    #[test]
    fn wycheproof_aes_256_gcm() {
        let suite: Suite =
            serde_json::from_str(include_str!("../../tests/vectors/aes_gcm_test.json"))
                .expect("vector file parses");
        let mut checked = 0;
        let mut invalid = 0;
        for group in &suite.groups {
            if (group.key_size, group.iv_size, group.tag_size) != (256, 96, 128) {
                continue;
            }
            for case in &group.tests {
                let h = |s: &str| hex::decode(s).expect("hex");
                let key = Key::from_slice(&h(&case.key)).expect("32 bytes");
                let nonce: [u8; 12] = h(&case.iv).try_into().expect("12 bytes");
                let (aad, msg) = (h(&case.aad), h(&case.msg));
                let mut blob = vec![SHARE_VERSION];
                blob.extend_from_slice(&nonce);
                blob.extend_from_slice(&h(&case.ct));
                blob.extend_from_slice(&h(&case.tag));
                let opened = open_with(&key, &aad, &blob);
                if case.result == "valid" {
                    assert_eq!(
                        opened.expect("a valid case opens").as_slice(),
                        msg.as_slice(),
                        "case {}",
                        case.id
                    );
                    assert_eq!(
                        seal_with(&key, &aad, &msg, &nonce),
                        blob,
                        "case {}",
                        case.id
                    );
                } else {
                    assert!(opened.is_err(), "invalid case {} was accepted", case.id);
                    invalid += 1;
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 60 && invalid > 10,
            "only {checked} cases ran ({invalid} invalid)"
        );
    }
}
