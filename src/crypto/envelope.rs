//! Authenticated encryption of every stored blob: XChaCha20-Poly1305 with a
//! random 24-byte nonce and associated data that says where the blob belongs.
//!
//! A blob is `version(1) || nonce(24) || ciphertext || tag(16)`.
//!
//! # Why associated data on everything?
//! The server (and anyone with write access to the vault file) can move bytes
//! around. Binding each ciphertext to its purpose, vault, item and version means
//! that swapping two items, moving one to another vault, or replaying an old
//! version under a newer number makes decryption fail instead of silently
//! showing the wrong secret. AEAD checks the tag before releasing any plaintext,
//! so there is no separate MAC step to get wrong.
//!
//! # Why a random key per item?
//! Each item has its own key wrapped by the vault key. Re-keying a vault only
//! re-wraps item keys, and a leaked item key exposes one item, not the vault.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::CryptoError;
use super::secret::{Key, random_array};

/// The only envelope version this build reads or writes. An unknown version
/// is an error, never a fallback.
pub const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Smallest possible blob: version, nonce and tag around an empty plaintext.
pub const MIN_BLOB_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// Associated data: purpose, ids and version, `|`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// The account key wrapped by the unlock key. Binding the salt and KDF
    /// parameters makes a tampered vault header fail exactly like a wrong
    /// password.
    #[must_use]
    pub fn account_key(account_id: Uuid, salt: &[u8], kdf: &super::kdf::KdfParams) -> Self {
        Self::text(format!(
            "openk/v1/account-key|{account_id}|{}|argon2id:m={},t={},p={}",
            data_encoding::HEXLOWER.encode(salt),
            kdf.memory_kib,
            kdf.iterations,
            kdf.parallelism
        ))
    }

    /// The account key wrapped by the unlock key in this device's vault
    /// header (the server keeps the [`Aad::account_key`] form). Its own
    /// label makes the wrap itself say that the local state is
    /// authenticated: a header whose key opens under this label must carry
    /// valid MACs, and the label cannot be removed without the unlock key.
    #[must_use]
    pub fn account_key_local(account_id: Uuid, salt: &[u8], kdf: &super::kdf::KdfParams) -> Self {
        Self::text(format!(
            "openk/v1/account-key-local|{account_id}|{}|argon2id:m={},t={},p={}",
            data_encoding::HEXLOWER.encode(salt),
            kdf.memory_kib,
            kdf.iterations,
            kdf.parallelism
        ))
    }

    /// The account's X25519 and Ed25519 private keys, wrapped by the account key.
    #[must_use]
    pub fn account_private_keys(account_id: Uuid) -> Self {
        Self::text(format!("openk/v1/account-private-keys|{account_id}"))
    }

    /// A vault key wrapped by the account key.
    #[must_use]
    pub fn vault_key(account_id: Uuid, vault_id: Uuid) -> Self {
        Self::text(format!("openk/v1/vault-key|{account_id}|{vault_id}"))
    }

    /// A vault's own metadata (its name), encrypted with the vault key.
    #[must_use]
    pub fn vault_meta(vault_id: Uuid) -> Self {
        Self::text(format!("openk/v1/vault-meta|{vault_id}"))
    }

    /// A vault manifest (DESIGN §6), sealed with the vault key: only a
    /// member of the vault can make one.
    #[must_use]
    pub fn vault_manifest(vault_id: Uuid) -> Self {
        Self::text(format!("openk/v1/vault-manifest|{vault_id}"))
    }

    /// An item key wrapped by the vault key.
    #[must_use]
    pub fn item_key(vault_id: Uuid, item_id: Uuid, version: u64) -> Self {
        Self::text(format!("openk/v1/item-key|{vault_id}|{item_id}|{version}"))
    }

    /// An item's overview (what lists and search need).
    #[must_use]
    pub fn item_overview(vault_id: Uuid, item_id: Uuid, version: u64) -> Self {
        Self::text(format!(
            "openk/v1/item-overview|{vault_id}|{item_id}|{version}"
        ))
    }

    /// An item's details (every field).
    #[must_use]
    pub fn item_details(vault_id: Uuid, item_id: Uuid, version: u64) -> Self {
        Self::text(format!(
            "openk/v1/item-details|{vault_id}|{item_id}|{version}"
        ))
    }

    /// The server session tokens, sealed with the account key.
    #[must_use]
    pub fn remote_tokens(account_id: Uuid) -> Self {
        Self::text(format!("openk/v1/remote-tokens|{account_id}"))
    }

    /// The contacts this device pinned (their public keys), sealed with the
    /// account key.
    #[must_use]
    pub fn contacts(account_id: Uuid) -> Self {
        Self::text(format!("openk/v1/contacts|{account_id}"))
    }

    /// What this device keeps about its shared vaults, sealed with the
    /// account key.
    #[must_use]
    pub fn shares(account_id: Uuid) -> Self {
        Self::text(format!("openk/v1/shares|{account_id}"))
    }

    /// The share links this device made (their item and URL, which holds
    /// the link's key), sealed with the account key.
    #[must_use]
    pub fn share_links(account_id: Uuid) -> Self {
        Self::text(format!("openk/v1/share-links|{account_id}"))
    }

    /// One row of a shared vault's activity (what an item version did),
    /// sealed with the account key.
    #[must_use]
    pub fn activity(account_id: Uuid, item_id: Uuid, version: u64, deleted: bool) -> Self {
        Self::text(format!(
            "openk/v1/activity|{account_id}|{item_id}|{version}|{}",
            u8::from(deleted)
        ))
    }

    /// This device's key (its login proof to the server), sealed with the
    /// account key.
    #[must_use]
    pub fn remote_device_key(account_id: Uuid, device_id: Uuid) -> Self {
        Self::text(format!(
            "openk/v1/remote-device-key|{account_id}|{device_id}"
        ))
    }

    /// One device's item-usage counters (which items it used, how often,
    /// when), sealed with the account key: kept on the device and, as an
    /// opaque blob, on the server. Naming the device means a server cannot
    /// pass one device's counters off as another's.
    #[must_use]
    pub fn usage_counters(account_id: Uuid, device_id: Uuid) -> Self {
        Self::text(format!("openk/v1/usage-counters|{account_id}|{device_id}"))
    }

    /// One use of an item on this device, not yet added to its counters,
    /// sealed with the account key (local only).
    #[must_use]
    pub fn usage_event(account_id: Uuid, device_id: Uuid) -> Self {
        Self::text(format!("openk/v1/usage-event|{account_id}|{device_id}"))
    }

    /// What this device keeps of the account's security history (the head
    /// it has seen, the entries it knows, the events not sent yet), sealed
    /// with the account key (local only).
    #[must_use]
    pub fn security_history(account_id: Uuid) -> Self {
        Self::text(format!("openk/v1/security-history|{account_id}"))
    }

    /// The passphrase check of an OpenK export archive
    /// ([`super::archive`]): binds the whole archive header, so a changed
    /// salt or KDF parameter fails like a wrong passphrase.
    #[must_use]
    pub fn archive_check(header: &[u8]) -> Self {
        Self::text(format!(
            "openk/v1/archive-check|{}",
            data_encoding::HEXLOWER.encode(header)
        ))
    }

    fn text(s: String) -> Self {
        Self(s.into_bytes())
    }

    /// Arbitrary associated data, for published test vectors only.
    #[cfg(test)]
    pub(crate) fn raw(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Encrypts `plaintext` under `key`, bound to `aad`.
#[must_use]
pub fn seal(key: &Key, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
    seal_with_nonce(key, aad, plaintext, &random_array::<NONCE_LEN>())
}

fn seal_with_nonce(key: &Key, aad: &Aad, plaintext: &[u8], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let payload = Payload {
        msg: plaintext,
        aad: aad.as_bytes(),
    };
    // Encryption fails only for plaintexts beyond 256 GiB, which never reach here.
    let sealed = cipher
        .encrypt(XNonce::from_slice(nonce), payload)
        .unwrap_or_default();
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    blob.push(ENVELOPE_VERSION);
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(&sealed);
    blob
}

/// Decrypts a blob made by [`seal`] with the same key and associated data.
///
/// # Errors
/// [`CryptoError::UnsupportedVersion`] for a blob of another envelope version,
/// [`CryptoError::Malformed`] for one too short to be a blob, and
/// [`CryptoError::Decrypt`] for a wrong key, wrong associated data or any
/// altered byte (one error for all three: no oracle).
pub fn open(key: &Key, aad: &Aad, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < MIN_BLOB_LEN {
        return Err(CryptoError::Malformed);
    }
    if blob[0] != ENVELOPE_VERSION {
        return Err(CryptoError::UnsupportedVersion(blob[0]));
    }
    let (nonce, sealed) = blob[1..].split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

/// Wraps (encrypts) one key under another.
#[must_use]
pub fn wrap_key(wrapping: &Key, aad: &Aad, key: &Key) -> Vec<u8> {
    seal(wrapping, aad, key.expose())
}

/// Unwraps a key made by [`wrap_key`].
///
/// # Errors
/// As [`open`]; also [`CryptoError::Malformed`] if the plaintext is not 32 bytes.
pub fn unwrap_key(wrapping: &Key, aad: &Aad, blob: &[u8]) -> Result<Key, CryptoError> {
    let bytes = open(wrapping, aad, blob)?;
    Key::from_slice(&bytes).ok_or(CryptoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::wycheproof::Suite;

    fn key(byte: u8) -> Key {
        Key::from_bytes(&mut [byte; 32])
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key(1);
        let aad = Aad::item_details(Uuid::nil(), Uuid::max(), 3);
        let blob = seal(&k, &aad, b"hunter2");
        assert_eq!(blob[0], ENVELOPE_VERSION);
        assert_eq!(blob.len(), MIN_BLOB_LEN + 7);
        assert_eq!(open(&k, &aad, &blob).expect("opens").as_slice(), b"hunter2");
    }

    #[test]
    fn nonces_are_random() {
        let k = key(1);
        let aad = Aad::vault_meta(Uuid::nil());
        assert_ne!(seal(&k, &aad, b"x"), seal(&k, &aad, b"x"));
    }

    #[test]
    fn wrong_aad_wrong_key_or_flipped_bit_fail_alike() {
        let k = key(1);
        let item = Uuid::now_v7();
        let aad = Aad::item_details(Uuid::nil(), item, 2);
        let blob = seal(&k, &aad, b"secret");
        let other_version = Aad::item_details(Uuid::nil(), item, 3);
        let other_item = Aad::item_details(Uuid::nil(), Uuid::now_v7(), 2);
        let overview = Aad::item_overview(Uuid::nil(), item, 2);
        for wrong in [other_version, other_item, overview] {
            assert!(matches!(open(&k, &wrong, &blob), Err(CryptoError::Decrypt)));
        }
        assert!(matches!(
            open(&key(2), &aad, &blob),
            Err(CryptoError::Decrypt)
        ));
        for i in 1..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 0x01;
            assert!(
                matches!(open(&k, &aad, &flipped), Err(CryptoError::Decrypt)),
                "byte {i}"
            );
        }
    }

    #[test]
    fn unknown_version_and_short_blobs_are_errors() {
        let k = key(1);
        let aad = Aad::vault_meta(Uuid::nil());
        let mut blob = seal(&k, &aad, b"x");
        blob[0] = 2;
        assert!(matches!(
            open(&k, &aad, &blob),
            Err(CryptoError::UnsupportedVersion(2))
        ));
        blob[0] = 0;
        assert!(matches!(
            open(&k, &aad, &blob),
            Err(CryptoError::UnsupportedVersion(0))
        ));
        for len in 0..MIN_BLOB_LEN {
            assert!(matches!(
                open(&k, &aad, &vec![1u8; len]),
                Err(CryptoError::Malformed)
            ));
        }
    }

    #[test]
    fn key_wrapping_round_trip() {
        let wrapping = key(5);
        let inner = Key::random();
        let aad = Aad::vault_key(Uuid::nil(), Uuid::max());
        let blob = wrap_key(&wrapping, &aad, &inner);
        assert_eq!(
            unwrap_key(&wrapping, &aad, &blob)
                .expect("unwraps")
                .expose(),
            inner.expose()
        );
        let short = seal(&wrapping, &aad, &[0u8; 16]);
        assert!(matches!(
            unwrap_key(&wrapping, &aad, &short),
            Err(CryptoError::Malformed)
        ));
    }

    /// draft-irtf-cfrg-xchacha-03, Appendix A.3.1 (AEAD_XChaCha20_Poly1305).
    #[test]
    fn draft_irtf_cfrg_xchacha_a_3_1() {
        let key_bytes =
            hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .expect("hex");
        let nonce: [u8; 24] = hex::decode("404142434445464748494a4b4c4d4e4f5051525354555657")
            .expect("hex")
            .try_into()
            .expect("24 bytes");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let aad_bytes = hex::decode("50515253c0c1c2c3c4c5c6c7").expect("hex");
        let expected_ct = "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e";
        let expected_tag = "c0875924c1c7987947deafd8780acf49";

        let cipher = XChaCha20Poly1305::new(key_bytes.as_slice().into());
        let out = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad_bytes,
                },
            )
            .expect("encrypts");
        assert_eq!(hex::encode(&out), format!("{expected_ct}{expected_tag}"));
    }

    /// Every Wycheproof XChaCha20-Poly1305 case: valid ones encrypt and decrypt
    /// to the published bytes, invalid ones are refused.
    #[test]
    fn wycheproof_xchacha20_poly1305() {
        let suite: Suite = serde_json::from_str(include_str!(
            "../../tests/vectors/xchacha20_poly1305_test.json"
        ))
        .expect("vector file parses");
        let mut checked = 0;
        for case in suite.groups.iter().flat_map(|g| &g.tests) {
            let h = |s: &str| hex::decode(s).expect("hex");
            let (k, iv, aad, msg, ct, tag) = (
                h(&case.key),
                h(&case.iv),
                h(&case.aad),
                h(&case.msg),
                h(&case.ct),
                h(&case.tag),
            );
            if k.len() != 32 || iv.len() != 24 {
                // Keys or nonces of the wrong size cannot be expressed through our API.
                assert_eq!(case.result, "invalid", "case {}", case.id);
                continue;
            }
            let key = Key::from_slice(&k).expect("32 bytes");
            let aad = Aad::raw(aad);
            let mut blob = vec![ENVELOPE_VERSION];
            blob.extend_from_slice(&iv);
            blob.extend_from_slice(&ct);
            blob.extend_from_slice(&tag);
            let opened = open(&key, &aad, &blob);
            match case.result.as_str() {
                "valid" => {
                    assert_eq!(
                        opened.expect("valid case opens").as_slice(),
                        msg.as_slice(),
                        "case {}",
                        case.id
                    );
                    let nonce: [u8; 24] = iv.as_slice().try_into().expect("24 bytes");
                    assert_eq!(
                        seal_with_nonce(&key, &aad, &msg, &nonce),
                        blob,
                        "case {}",
                        case.id
                    );
                }
                _ => assert!(opened.is_err(), "invalid case {} was accepted", case.id),
            }
            checked += 1;
        }
        assert!(checked > 100, "only {checked} cases ran");
    }
}
