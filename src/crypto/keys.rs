//! The key hierarchy of DESIGN §2 above the vault key: the Secret Key, the
//! two-secret derivation of the unlock and auth keys, and the account key pair.
//!
//! ```text
//! pk   = Argon2id(NFC(password), salt, params)                   (kdf.rs)
//! skm  = HKDF-SHA256(salt = account_id, ikm = SK, info = "openk/v1/secret-key")
//! uk   = HKDF-SHA256(salt = none, ikm = pk || skm, info = "openk/v1/unlock")
//! auth = HKDF-SHA256(salt = none, ikm = pk || skm, info = "openk/v1/auth")
//! ```
//! Neither secret alone reaches `uk`: a stolen vault file (or server database)
//! cannot be brute-forced without the Secret Key, and a stolen Secret Key is
//! useless without the password.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;
use super::secret::{Key, random_array};

const SECRET_KEY_PREFIX: &str = "OK1";
const SECRET_KEY_LEN: usize = 16;

/// The Secret Key: 128 random bits, shown as `OK1-XXXXXX-XXXXXX-XXXXXX-XXXXXX-XXXX`.
///
/// The text form is RFC 4648 base32 of the 16 key bytes followed by one
/// checksum byte (the first byte of SHA-256("openk-secret-key" || key)), so a
/// mistyped key is caught before it is used.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Box<[u8; SECRET_KEY_LEN]>);

impl SecretKey {
    #[must_use]
    pub fn generate() -> Self {
        Self(Box::new(random_array()))
    }

    fn checksum(bytes: &[u8; SECRET_KEY_LEN]) -> u8 {
        let mut h = Sha256::new();
        h.update(b"openk-secret-key");
        h.update(bytes);
        h.finalize()[0]
    }

    /// The text form, for the Emergency Kit and the Secret Key file.
    #[must_use]
    pub fn display(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; SECRET_KEY_LEN + 1]);
        raw[..SECRET_KEY_LEN].copy_from_slice(self.0.as_ref());
        raw[SECRET_KEY_LEN] = Self::checksum(&self.0);
        let encoded = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(raw.as_ref()));
        let mut out = Zeroizing::new(String::from(SECRET_KEY_PREFIX));
        for chunk in encoded.as_bytes().chunks(6) {
            out.push('-');
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        }
        out
    }

    /// Parses the text form. Case, spaces and dashes do not matter, and the
    /// look-alikes `0` and `1` are read as `O` and `I`.
    ///
    /// # Errors
    /// [`CryptoError::SecretKeyFormat`] saying what is wrong (never echoing the input).
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let upper: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let Some(body) = upper.strip_prefix(SECRET_KEY_PREFIX) else {
            return Err(CryptoError::SecretKeyFormat("it must start with OK1-"));
        };
        // Base32 has no 0 or 1: read the look-alikes as O and I.
        let cleaned: Zeroizing<String> = Zeroizing::new(
            body.chars()
                .map(|c| match c {
                    '0' => 'O',
                    '1' => 'I',
                    other => other,
                })
                .collect(),
        );
        let raw = Zeroizing::new(
            data_encoding::BASE32_NOPAD
                .decode(cleaned.as_bytes())
                .map_err(|_| {
                    CryptoError::SecretKeyFormat(
                        "it has a character that is not A-Z or 2-7, or the wrong length",
                    )
                })?,
        );
        if raw.len() != SECRET_KEY_LEN + 1 {
            return Err(CryptoError::SecretKeyFormat("it has the wrong length"));
        }
        let mut bytes = [0u8; SECRET_KEY_LEN];
        bytes.copy_from_slice(&raw[..SECRET_KEY_LEN]);
        let key = Self(Box::new(bytes));
        bytes.zeroize();
        if Self::checksum(&key.0) != raw[SECRET_KEY_LEN] {
            return Err(CryptoError::SecretKeyFormat(
                "its checksum does not match (a typo?)",
            ));
        }
        Ok(key)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// The keys derived from the password key and the Secret Key.
pub struct DerivedKeys {
    /// Unwraps the account key.
    pub unlock: Key,
    /// Proves knowledge of both secrets to a server (which stores a salted hash).
    pub auth: Key,
}

/// Two-secret derivation of the unlock and auth keys (see the module docs).
#[must_use]
pub fn derive(password_key: &Key, secret_key: &SecretKey, account_id: Uuid) -> DerivedKeys {
    let mut skm = Zeroizing::new([0u8; 32]);
    hkdf_sha256(
        Some(account_id.as_bytes()),
        secret_key.0.as_ref(),
        b"openk/v1/secret-key",
        skm.as_mut(),
    );
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(password_key.expose());
    ikm[32..].copy_from_slice(skm.as_ref());
    let mut unlock = Zeroizing::new([0u8; 32]);
    let mut auth = Zeroizing::new([0u8; 32]);
    hkdf_sha256(None, ikm.as_ref(), b"openk/v1/unlock", unlock.as_mut());
    hkdf_sha256(None, ikm.as_ref(), b"openk/v1/auth", auth.as_mut());
    DerivedKeys {
        unlock: Key::from_bytes(&mut unlock),
        auth: Key::from_bytes(&mut auth),
    }
}

/// HKDF-SHA256 (RFC 5869) extract-and-expand into `out` (at most 8160 bytes).
fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    // Only fails for outputs longer than 255 * 32 bytes; callers ask for 32.
    let _ = hk.expand(info, out);
}

/// A public commitment to a secret key: HKDF-SHA256 (RFC 5869) with the key
/// as input keying material and `context` (purpose and ids) as info. It
/// reveals nothing about the key (HKDF's output is pseudorandom) and binds
/// it: a party that knows the commitment can tell the key it was made for
/// from any other (e.g. a vault key a server substitutes).
#[must_use]
pub fn key_commitment(key: &Key, context: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf_sha256(None, key.expose(), context, &mut out);
    out
}

/// HKDF info of the key that authenticates a password change.
const PASSWORD_CHANGE_INFO: &[u8] = b"openk/v1/password-change-mac";

/// What a password-change MAC covers: a label, the account id and every value
/// a device adopts (KDF parameters, salt, wrapped account key), each
/// variable-length part prefixed with its length so no two inputs collide.
fn password_change_message(
    account_id: Uuid,
    kdf: &super::kdf::KdfParams,
    salt: &[u8],
    wrapped_account_key: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + salt.len() + wrapped_account_key.len());
    m.extend_from_slice(b"openk/v1/password-change|");
    m.extend_from_slice(account_id.as_bytes());
    for n in [kdf.memory_kib, kdf.iterations, kdf.parallelism] {
        m.extend_from_slice(&n.to_be_bytes());
    }
    for part in [salt, wrapped_account_key] {
        m.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        m.extend_from_slice(part);
    }
    m
}

fn password_change_hmac(account_key: &Key) -> Result<Hmac<Sha256>, CryptoError> {
    let mut mac_key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(
        None,
        account_key.expose(),
        PASSWORD_CHANGE_INFO,
        mac_key.as_mut(),
    );
    // HMAC takes keys of any length: this does not fail.
    <Hmac<Sha256> as Mac>::new_from_slice(mac_key.as_ref()).map_err(|_| CryptoError::Malformed)
}

/// The MAC a device sends with a password change: HMAC-SHA256 under
/// HKDF-SHA256(ikm = account key, info = "openk/v1/password-change-mac") over
/// the account id, KDF parameters, salt and wrapped account key. Only a
/// holder of the account key can make one, so another device can check that
/// values a server hands out were set by one of the account's devices.
///
/// # Errors
/// None in practice (HMAC accepts any key length).
pub fn password_change_mac(
    account_key: &Key,
    account_id: Uuid,
    kdf: &super::kdf::KdfParams,
    salt: &[u8],
    wrapped_account_key: &[u8],
) -> Result<[u8; 32], CryptoError> {
    let mut mac = password_change_hmac(account_key)?;
    mac.update(&password_change_message(
        account_id,
        kdf,
        salt,
        wrapped_account_key,
    ));
    Ok(mac.finalize().into_bytes().into())
}

/// Checks a [`password_change_mac`] in constant time.
///
/// # Errors
/// [`CryptoError::BadSignature`] when it does not match.
pub fn verify_password_change_mac(
    account_key: &Key,
    account_id: Uuid,
    kdf: &super::kdf::KdfParams,
    salt: &[u8],
    wrapped_account_key: &[u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    let mut mac = password_change_hmac(account_key)?;
    mac.update(&password_change_message(
        account_id,
        kdf,
        salt,
        wrapped_account_key,
    ));
    mac.verify_slice(tag).map_err(|_| CryptoError::BadSignature)
}

/// HKDF info of the key that authenticates the local state that steers
/// the client (the vault header, the remote record).
const LOCAL_STATE_INFO: &[u8] = b"openk/v1/local-state-mac";

/// The key of [`local_state_mac`]: HKDF-SHA256(ikm = account key,
/// info = "openk/v1/local-state-mac").
#[must_use]
pub fn local_state_key(account_key: &Key) -> Key {
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf_sha256(None, account_key.expose(), LOCAL_STATE_INFO, k.as_mut());
    Key::from_bytes(&mut k)
}

/// The canonical input of a local-state MAC: a label, the record kind, the
/// account id, then every field, each prefixed with its length (u64 big
/// endian) so that no two field lists encode alike.
fn local_state_message(kind: &str, account_id: Uuid, fields: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + fields.iter().map(|f| f.len() + 8).sum::<usize>());
    m.extend_from_slice(b"openk/v1/local-state|");
    for part in std::iter::once(kind.as_bytes())
        .chain(std::iter::once(account_id.as_bytes().as_slice()))
        .chain(fields.iter().copied())
    {
        m.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        m.extend_from_slice(part);
    }
    m
}

fn local_state_hmac(key: &Key, kind: &str, account_id: Uuid, fields: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(&local_state_message(kind, account_id, fields));
    mac
}

/// HMAC-SHA256 under [`local_state_key`] over one local record: its kind
/// (which also names the vault for per-vault records) and its fields.
#[must_use]
pub fn local_state_mac(key: &Key, kind: &str, account_id: Uuid, fields: &[&[u8]]) -> [u8; 32] {
    local_state_hmac(key, kind, account_id, fields)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a [`local_state_mac`] in constant time.
///
/// # Errors
/// [`CryptoError::BadSignature`] when it does not match.
pub fn verify_local_state_mac(
    key: &Key,
    kind: &str,
    account_id: Uuid,
    fields: &[&[u8]],
    tag: &[u8],
) -> Result<(), CryptoError> {
    local_state_hmac(key, kind, account_id, fields)
        .verify_slice(tag)
        .map_err(|_| CryptoError::BadSignature)
}

/// The account's X25519 (encryption) and Ed25519 (signing) key pair.
pub struct AccountKeyPair {
    x25519: x25519_dalek::StaticSecret,
    ed25519: ed25519_dalek::SigningKey,
}

/// The public halves, published to a server and shown as a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys {
    pub x25519: [u8; 32],
    pub ed25519: [u8; 32],
}

impl PublicKeys {
    /// The fingerprint a person reads aloud to compare out of band: eight
    /// groups of four digits (about 106 bits) from SHA-256 over both public
    /// keys, e.g. `0412 7730 …`.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"openk/v1/fingerprint");
        h.update(self.x25519);
        h.update(self.ed25519);
        let digest = h.finalize();
        digest[..32]
            .chunks(4)
            .map(|c| {
                let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                format!("{:04}", n % 10_000)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks an account's self-signature over its identity (see
    /// [`identity_message`]) with this Ed25519 key.
    ///
    /// # Errors
    /// [`CryptoError::BadSignature`] when it does not verify.
    pub fn verify_identity(
        &self,
        account_id: Uuid,
        email: &str,
        key_version: u32,
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let message = identity_message(account_id, email, key_version, self);
        verify_signature(&self.ed25519, &message, signature)
    }
}

/// What an account's self-signature covers: the purpose, the account id,
/// the version of its keys, its (normalised) email and both public keys,
/// each field of fixed length or length-prefixed.
#[must_use]
pub fn identity_message(
    account_id: Uuid,
    email: &str,
    key_version: u32,
    keys: &PublicKeys,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(128 + email.len());
    m.extend_from_slice(b"openk/v1/identity\0");
    m.extend_from_slice(account_id.as_bytes());
    m.extend_from_slice(&key_version.to_be_bytes());
    m.extend_from_slice(&u32::try_from(email.len()).unwrap_or(u32::MAX).to_be_bytes());
    m.extend_from_slice(email.as_bytes());
    m.extend_from_slice(&keys.x25519);
    m.extend_from_slice(&keys.ed25519);
    m
}

impl AccountKeyPair {
    #[must_use]
    pub fn generate() -> Self {
        let mut x = Zeroizing::new(random_array::<32>());
        let mut e = Zeroizing::new(random_array::<32>());
        let pair = Self {
            x25519: x25519_dalek::StaticSecret::from(*x),
            ed25519: ed25519_dalek::SigningKey::from_bytes(&e),
        };
        x.zeroize();
        e.zeroize();
        pair
    }

    /// The private halves as 64 bytes (X25519 secret || Ed25519 seed), for wrapping.
    #[must_use]
    pub fn to_private_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(64));
        out.extend_from_slice(self.x25519.as_bytes());
        out.extend_from_slice(self.ed25519.as_bytes());
        out
    }

    /// Rebuilds the pair from [`Self::to_private_bytes`].
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the input is not 64 bytes.
    pub fn from_private_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 64 {
            return Err(CryptoError::Malformed);
        }
        let mut x = Zeroizing::new([0u8; 32]);
        let mut e = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(&bytes[..32]);
        e.copy_from_slice(&bytes[32..]);
        Ok(Self {
            x25519: x25519_dalek::StaticSecret::from(*x),
            ed25519: ed25519_dalek::SigningKey::from_bytes(&e),
        })
    }

    #[must_use]
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            x25519: x25519_dalek::PublicKey::from(&self.x25519).to_bytes(),
            ed25519: self.ed25519.verifying_key().to_bytes(),
        }
    }

    /// The account's self-signature over its identity ([`identity_message`]).
    #[must_use]
    pub fn sign_identity(&self, account_id: Uuid, email: &str, key_version: u32) -> [u8; 64] {
        self.sign(&identity_message(
            account_id,
            email,
            key_version,
            &self.public(),
        ))
    }

    /// The X25519 secret, for opening what was sealed to this account
    /// ([`super::hpke`]).
    pub(crate) fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.x25519.to_bytes())
    }

    /// Signs a message with the account's Ed25519 key.
    #[must_use]
    // For sharing (DESIGN §7); only the tests call it today.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.ed25519.sign(message).to_bytes()
    }

    /// X25519 agreement with a peer's public key; refuses low-order points.
    ///
    /// # Errors
    /// [`CryptoError::WeakPublicKey`] when the shared secret is not contributory.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn agree(&self, peer_public: &[u8; 32]) -> Result<Key, CryptoError> {
        x25519_agree(&self.x25519, peer_public)
    }
}

#[cfg_attr(not(test), allow(dead_code))]
fn x25519_agree(
    secret: &x25519_dalek::StaticSecret,
    peer_public: &[u8; 32],
) -> Result<Key, CryptoError> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*peer_public));
    if !shared.was_contributory() {
        return Err(CryptoError::WeakPublicKey);
    }
    let mut bytes = shared.to_bytes();
    Ok(Key::from_bytes(&mut bytes))
}

/// Verifies an Ed25519 signature strictly (no malleable or small-order forms).
///
/// # Errors
/// [`CryptoError::BadSignature`] for any invalid key, signature or message.
pub fn verify_signature(
    public: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let public: &[u8; 32] = public.try_into().map_err(|_| CryptoError::BadSignature)?;
    let signature =
        ed25519_dalek::Signature::from_slice(signature).map_err(|_| CryptoError::BadSignature)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|_| CryptoError::BadSignature)?;
    key.verify_strict(message, &signature)
        .map_err(|_| CryptoError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn local_state_mac_binds_kind_account_and_field_boundaries() {
        let k = local_state_key(&Key::random());
        let id = Uuid::now_v7();
        let tag = local_state_mac(&k, "remote", id, &[b"ab", b"c"]);
        verify_local_state_mac(&k, "remote", id, &[b"ab", b"c"], &tag).expect("verifies");
        assert!(verify_local_state_mac(&k, "remote", id, &[b"a", b"bc"], &tag).is_err());
        assert!(verify_local_state_mac(&k, "header", id, &[b"ab", b"c"], &tag).is_err());
        assert!(
            verify_local_state_mac(&k, "remote", Uuid::now_v7(), &[b"ab", b"c"], &tag).is_err()
        );
        let other = local_state_key(&Key::random());
        assert!(verify_local_state_mac(&other, "remote", id, &[b"ab", b"c"], &tag).is_err());
    }

    #[test]
    fn password_change_mac_binds_every_value() {
        let ak = Key::random();
        let id = Uuid::now_v7();
        let kdf = crate::crypto::KdfParams::FLOOR;
        let (salt, wrapped) = (vec![1u8; 16], vec![2u8; 72]);
        let tag = password_change_mac(&ak, id, &kdf, &salt, &wrapped).expect("mac");
        verify_password_change_mac(&ak, id, &kdf, &salt, &wrapped, &tag).expect("verifies");
        let weaker = crate::crypto::KdfParams {
            iterations: kdf.iterations - 1,
            ..kdf
        };
        let mut flipped = tag;
        flipped[0] ^= 1;
        for (what, result) in [
            (
                "other key",
                verify_password_change_mac(&Key::random(), id, &kdf, &salt, &wrapped, &tag),
            ),
            (
                "other account",
                verify_password_change_mac(&ak, Uuid::now_v7(), &kdf, &salt, &wrapped, &tag),
            ),
            (
                "other kdf",
                verify_password_change_mac(&ak, id, &weaker, &salt, &wrapped, &tag),
            ),
            (
                "other salt",
                verify_password_change_mac(&ak, id, &kdf, &[3u8; 16], &wrapped, &tag),
            ),
            (
                "other wrap",
                verify_password_change_mac(&ak, id, &kdf, &salt, &[2u8; 73], &tag),
            ),
            (
                "flipped tag",
                verify_password_change_mac(&ak, id, &kdf, &salt, &wrapped, &flipped),
            ),
            (
                "short tag",
                verify_password_change_mac(&ak, id, &kdf, &salt, &wrapped, &tag[..16]),
            ),
        ] {
            assert!(result.is_err(), "{what} must not verify");
        }
        // Moving bytes between salt and wrap changes the message.
        let mut longer_salt = salt.clone();
        longer_salt.push(wrapped[0]);
        assert!(
            verify_password_change_mac(&ak, id, &kdf, &longer_salt, &wrapped[1..], &tag).is_err()
        );
    }

    #[test]
    fn secret_key_text_round_trip_and_shape() {
        let sk = SecretKey::generate();
        let text = sk.display();
        assert!(text.starts_with("OK1-"));
        let groups: Vec<&str> = text.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            vec![3, 6, 6, 6, 6, 4]
        );
        let back = SecretKey::parse(&text).expect("parses");
        assert_eq!(back.0, sk.0);
        // Lower case, spaces instead of dashes.
        let sloppy = text.to_lowercase().replace('-', " ");
        assert_eq!(SecretKey::parse(&sloppy).expect("parses").0, sk.0);
        // Look-alike digits typed for O and I.
        let digits = format!("OK1{}", text[3..].replace('O', "0").replace('I', "1"));
        assert_eq!(SecretKey::parse(&digits).expect("parses").0, sk.0);
    }

    #[test]
    fn secret_key_typos_are_caught_without_echo() {
        let sk = SecretKey::generate();
        let text = sk.display().to_string();
        let last = text.chars().last().expect("non-empty");
        let typo = format!(
            "{}{}",
            &text[..text.len() - 1],
            if last == 'A' { 'B' } else { 'A' }
        );
        for bad in [
            typo.as_str(),
            "",
            "OK1-",
            "XX1-AAAAAA",
            "OK1-!!!!!!-AAAAAA-AAAAAA-AAAAAA-AAAA",
            &text[..text.len() - 5],
        ] {
            let err = SecretKey::parse(bad).expect_err(bad);
            let msg = err.to_string();
            assert!(msg.starts_with("invalid secret key"), "{msg}");
            if bad.len() > 8 {
                assert!(!msg.contains(&bad[4..10]), "message echoes the key: {msg}");
            }
        }
    }

    #[test]
    fn derivation_needs_both_secrets() {
        let id = Uuid::now_v7();
        let pk = Key::from_bytes(&mut [1; 32]);
        let pk2 = Key::from_bytes(&mut [2; 32]);
        let sk = SecretKey::generate();
        let sk2 = SecretKey::generate();
        let a = derive(&pk, &sk, id);
        assert_ne!(
            a.unlock.expose(),
            a.auth.expose(),
            "unlock and auth keys must differ"
        );
        assert_eq!(
            derive(&pk, &sk, id).unlock.expose(),
            a.unlock.expose(),
            "deterministic"
        );
        assert_ne!(derive(&pk2, &sk, id).unlock.expose(), a.unlock.expose());
        assert_ne!(derive(&pk, &sk2, id).unlock.expose(), a.unlock.expose());
        assert_ne!(
            derive(&pk, &sk, Uuid::now_v7()).unlock.expose(),
            a.unlock.expose()
        );
    }

    #[test]
    fn account_key_pair_round_trips_and_signs() {
        let pair = AccountKeyPair::generate();
        let again = AccountKeyPair::from_private_bytes(&pair.to_private_bytes()).expect("64 bytes");
        assert_eq!(pair.public(), again.public());
        let sig = pair.sign(b"grant");
        verify_signature(&pair.public().ed25519, b"grant", &sig).expect("verifies");
        assert!(verify_signature(&pair.public().ed25519, b"grant!", &sig).is_err());
        let other = AccountKeyPair::generate();
        let ab = pair.agree(&other.public().x25519).expect("agree");
        let ba = other.agree(&pair.public().x25519).expect("agree");
        assert_eq!(ab.expose(), ba.expose());
        assert!(pair.agree(&[0u8; 32]).is_err(), "low-order point accepted");
        let fp = pair.public().fingerprint();
        assert_eq!(fp.len(), 39, "{fp}");
        assert!(
            fp.split(' ')
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_ne!(fp, other.public().fingerprint());
        assert!(AccountKeyPair::from_private_bytes(&[0u8; 63]).is_err());
    }

    /// The self-signature binds every part of the identity: another
    /// account id, email, key version or key fails it.
    #[test]
    fn identity_signature_binds_id_email_version_and_keys() {
        let pair = AccountKeyPair::generate();
        let keys = pair.public();
        let id = Uuid::now_v7();
        let sig = pair.sign_identity(id, "a@example.org", 1);
        keys.verify_identity(id, "a@example.org", 1, &sig)
            .expect("verifies");
        assert!(
            keys.verify_identity(Uuid::now_v7(), "a@example.org", 1, &sig)
                .is_err()
        );
        assert!(keys.verify_identity(id, "b@example.org", 1, &sig).is_err());
        assert!(keys.verify_identity(id, "a@example.org", 2, &sig).is_err());
        let mut swapped = keys.clone();
        swapped.x25519 = AccountKeyPair::generate().public().x25519;
        assert!(
            swapped
                .verify_identity(id, "a@example.org", 1, &sig)
                .is_err()
        );
        assert!(
            keys.verify_identity(id, "a@example.org", 1, &sig[..63])
                .is_err()
        );
    }

    /// RFC 5869 Appendix A, test cases 1–3 (HKDF-SHA256).
    #[test]
    fn rfc5869_vectors() {
        let h = |s: &str| hex::decode(s).expect("hex");
        let cases = [
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                Some("000102030405060708090a0b0c"),
                "f0f1f2f3f4f5f6f7f8f9",
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            ),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
                Some(
                    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
                ),
                "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
            ),
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                None,
                "",
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
            ),
        ];
        for (ikm, salt, info, okm) in cases {
            let salt = salt.map(h);
            let expected = h(okm);
            let mut out = vec![0u8; expected.len()];
            hkdf_sha256(salt.as_deref(), &h(ikm), &h(info), &mut out);
            assert_eq!(out, expected);
        }
    }

    #[derive(Deserialize)]
    struct Suite<C> {
        #[serde(rename = "testGroups")]
        groups: Vec<Group<C>>,
    }
    #[derive(Deserialize)]
    struct Group<C> {
        #[serde(rename = "publicKey")]
        public_key: Option<PublicKeyJson>,
        tests: Vec<C>,
    }
    #[derive(Deserialize)]
    struct PublicKeyJson {
        pk: String,
    }
    #[derive(Deserialize)]
    struct HkdfCase {
        #[serde(rename = "tcId")]
        id: u32,
        ikm: String,
        salt: String,
        info: String,
        size: usize,
        okm: String,
        result: String,
    }
    #[derive(Deserialize)]
    struct X25519Case {
        #[serde(rename = "tcId")]
        id: u32,
        public: String,
        private: String,
        shared: String,
        result: String,
    }
    #[derive(Deserialize)]
    struct Ed25519Case {
        #[serde(rename = "tcId")]
        id: u32,
        msg: String,
        sig: String,
        result: String,
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    #[test]
    fn wycheproof_hkdf_sha256() {
        let suite: Suite<HkdfCase> =
            serde_json::from_str(include_str!("../../tests/vectors/hkdf_sha256_test.json"))
                .expect("parses");
        let mut n = 0;
        for c in suite.groups.iter().flat_map(|g| &g.tests) {
            let hk = Hkdf::<Sha256>::new(Some(&h(&c.salt)), &h(&c.ikm));
            let mut out = vec![0u8; c.size];
            let res = hk.expand(&h(&c.info), &mut out);
            match c.result.as_str() {
                "valid" => {
                    res.expect("valid case expands");
                    assert_eq!(hex::encode(&out), c.okm, "case {}", c.id);
                }
                _ => assert!(res.is_err(), "invalid case {} accepted", c.id),
            }
            n += 1;
        }
        assert!(n > 50);
    }

    #[test]
    fn wycheproof_x25519() {
        let suite: Suite<X25519Case> =
            serde_json::from_str(include_str!("../../tests/vectors/x25519_test.json"))
                .expect("parses");
        let mut n = 0;
        for c in suite.groups.iter().flat_map(|g| &g.tests) {
            let (Ok(private), Ok(public)) = (
                <[u8; 32]>::try_from(h(&c.private)),
                <[u8; 32]>::try_from(h(&c.public)),
            ) else {
                assert_ne!(c.result, "valid", "case {}", c.id);
                continue;
            };
            let secret = x25519_dalek::StaticSecret::from(private);
            let expected = h(&c.shared);
            match x25519_agree(&secret, &public) {
                Ok(shared) => {
                    assert_ne!(c.result, "invalid", "case {} accepted", c.id);
                    assert_eq!(
                        shared.expose().as_slice(),
                        expected.as_slice(),
                        "case {}",
                        c.id
                    );
                }
                // Refusals are exactly the all-zero shared secrets (low-order points).
                Err(_) => assert!(expected.iter().all(|b| *b == 0), "case {} refused", c.id),
            }
            n += 1;
        }
        assert!(n > 100);
    }

    #[test]
    fn wycheproof_ed25519() {
        let suite: Suite<Ed25519Case> =
            serde_json::from_str(include_str!("../../tests/vectors/ed25519_test.json"))
                .expect("parses");
        let mut n = 0;
        for g in &suite.groups {
            let pk = h(&g.public_key.as_ref().expect("group key").pk);
            for c in &g.tests {
                let ok = verify_signature(&pk, &h(&c.msg), &h(&c.sig)).is_ok();
                match c.result.as_str() {
                    "valid" => assert!(ok, "valid case {} rejected", c.id),
                    "invalid" => assert!(!ok, "invalid case {} accepted", c.id),
                    _ => {}
                }
                n += 1;
            }
        }
        assert!(n > 100);
    }
}
