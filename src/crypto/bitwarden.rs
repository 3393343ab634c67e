//! Opening Bitwarden's password-protected JSON export (for `openk import`).
//!
//! The scheme, from Bitwarden's documentation of its export and its
//! encryption: a 256-bit key is derived from the export password with the
//! export's own KDF (PBKDF2-HMAC-SHA256 over the salt string, or Argon2id
//! over SHA-256 of the salt string, memory given in MiB), then stretched with
//! HKDF-Expand-SHA256 into an encryption key (info `enc`) and a MAC key
//! (info `mac`). Each encrypted value is an "EncString" of type 2,
//! `2.IV|CIPHERTEXT|MAC` (each part standard base64): AES-256-CBC with PKCS#7
//! padding, authenticated by HMAC-SHA256 over `IV || CIPHERTEXT`.

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The key derivation an export names (`kdfType` and its parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitwardenKdf {
    /// `kdfType` 0.
    Pbkdf2 { iterations: u32 },
    /// `kdfType` 1; `memory_mib` in MiB as Bitwarden writes it.
    Argon2id {
        iterations: u32,
        memory_mib: u32,
        parallelism: u32,
    },
}

/// Highest parameters accepted, so that a hostile file cannot make the
/// import run for hours or take all memory. Bitwarden's own ceilings are
/// lower (PBKDF2 2,000,000 iterations; Argon2id 10 passes, 1 GiB, 16 lanes).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_ARGON2_ITERATIONS: u32 = 10;
const MAX_ARGON2_MEMORY_MIB: u32 = 1024;
const MAX_ARGON2_PARALLELISM: u32 = 16;

/// The two keys an export's values are opened with. Wiped on drop.
pub struct BitwardenKey {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for BitwardenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BitwardenKey(***)")
    }
}

/// Why an EncString did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncStringError {
    /// Not a type-2 EncString, bad base64, wrong lengths or bad padding
    /// (after the MAC matched).
    #[error("malformed encrypted value: {0}")]
    Malformed(&'static str),
    /// The MAC does not match: wrong password (or altered data).
    #[error("the MAC does not match: wrong password or altered data")]
    Mac,
}

/// Derives the export key from the password and the export's salt string.
///
/// # Errors
/// [`super::CryptoError::KdfParams`] when a parameter is zero or beyond the
/// ceilings above.
pub fn bitwarden_export_key(
    password: &str,
    salt: &str,
    kdf: BitwardenKdf,
) -> Result<BitwardenKey, super::CryptoError> {
    let bad = |s: String| super::CryptoError::KdfParams(s);
    let mut master = Zeroizing::new([0u8; 32]);
    match kdf {
        BitwardenKdf::Pbkdf2 { iterations } => {
            if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
                return Err(bad(format!(
                    "PBKDF2 iterations {iterations} outside 1..={MAX_PBKDF2_ITERATIONS}"
                )));
            }
            pbkdf2::pbkdf2_hmac::<Sha256>(
                password.as_bytes(),
                salt.as_bytes(),
                iterations,
                master.as_mut(),
            );
        }
        BitwardenKdf::Argon2id {
            iterations,
            memory_mib,
            parallelism,
        } => {
            if iterations == 0 || iterations > MAX_ARGON2_ITERATIONS {
                return Err(bad(format!(
                    "Argon2id iterations {iterations} outside 1..={MAX_ARGON2_ITERATIONS}"
                )));
            }
            if memory_mib == 0 || memory_mib > MAX_ARGON2_MEMORY_MIB {
                return Err(bad(format!(
                    "Argon2id memory {memory_mib} MiB outside 1..={MAX_ARGON2_MEMORY_MIB}"
                )));
            }
            if parallelism == 0 || parallelism > MAX_ARGON2_PARALLELISM {
                return Err(bad(format!(
                    "Argon2id parallelism {parallelism} outside 1..={MAX_ARGON2_PARALLELISM}"
                )));
            }
            let params = argon2::Params::new(memory_mib * 1024, iterations, parallelism, Some(32))
                .map_err(|e| bad(format!("Argon2id: {e}")))?;
            let salt_hash = Sha256::digest(salt.as_bytes());
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password.as_bytes(), &salt_hash, master.as_mut())
                .map_err(|e| bad(format!("Argon2id: {e}")))?;
        }
    }
    let hk = hkdf::Hkdf::<Sha256>::from_prk(master.as_ref())
        .map_err(|_| bad("HKDF: key too short".into()))?;
    let mut enc = Zeroizing::new([0u8; 32]);
    let mut mac = Zeroizing::new([0u8; 32]);
    hk.expand(b"enc", enc.as_mut())
        .map_err(|_| bad("HKDF expand".into()))?;
    hk.expand(b"mac", mac.as_mut())
        .map_err(|_| bad("HKDF expand".into()))?;
    Ok(BitwardenKey { enc, mac })
}

/// Opens a type-2 EncString (`2.IV|CT|MAC`) with `key`: checks the MAC
/// first, then decrypts.
///
/// # Errors
/// [`EncStringError::Mac`] for a wrong key, [`EncStringError::Malformed`]
/// otherwise.
pub fn bitwarden_open(
    key: &BitwardenKey,
    enc_string: &str,
) -> Result<Zeroizing<Vec<u8>>, EncStringError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let rest = enc_string
        .trim()
        .strip_prefix("2.")
        .ok_or(EncStringError::Malformed(
            "not an AES-256-CBC-HMAC-SHA256 value (type 2)",
        ))?;
    let mut parts = rest.split('|');
    let (Some(iv), Some(ct), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EncStringError::Malformed("expected IV|CIPHERTEXT|MAC"));
    };
    let iv = b64
        .decode(iv)
        .map_err(|_| EncStringError::Malformed("the IV is not base64"))?;
    let ct = b64
        .decode(ct)
        .map_err(|_| EncStringError::Malformed("the ciphertext is not base64"))?;
    let tag = b64
        .decode(tag)
        .map_err(|_| EncStringError::Malformed("the MAC is not base64"))?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| EncStringError::Malformed("the IV is not 16 bytes"))?;
    if tag.len() != 32 {
        return Err(EncStringError::Malformed("the MAC is not 32 bytes"));
    }
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(EncStringError::Malformed(
            "the ciphertext is not a whole number of blocks",
        ));
    }
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.mac.as_ref())
        .map_err(|_| EncStringError::Malformed("MAC key"))?;
    m.update(&iv);
    m.update(&ct);
    m.verify_slice(&tag).map_err(|_| EncStringError::Mac)?;
    let mut buf = Zeroizing::new(ct);
    let n = cbc::Decryptor::<aes::Aes256>::new(key.enc.as_ref().into(), &iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map_err(|_| EncStringError::Malformed("bad padding"))?
        .len();
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;

    fn seal(key: &BitwardenKey, iv: [u8; 16], plain: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + 16, 0);
        let ct = cbc::Encryptor::<aes::Aes256>::new(key.enc.as_ref().into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .expect("room for padding")
            .to_vec();
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.mac.as_ref()).expect("key");
        m.update(&iv);
        m.update(&ct);
        let tag = m.finalize().into_bytes();
        format!(
            "2.{}|{}|{}",
            b64.encode(iv),
            b64.encode(&ct),
            b64.encode(tag)
        )
    }

    #[test]
    fn round_trip_and_wrong_key() {
        let kdf = BitwardenKdf::Pbkdf2 { iterations: 10 };
        let k = bitwarden_export_key("pw", "salt", kdf).expect("key");
        let s = seal(&k, [7; 16], b"hello world");
        assert_eq!(&*bitwarden_open(&k, &s).expect("opens"), b"hello world");
        let other = bitwarden_export_key("pw2", "salt", kdf).expect("key");
        assert_eq!(bitwarden_open(&other, &s), Err(EncStringError::Mac));
        assert!(matches!(
            bitwarden_open(&k, "0.abc|def"),
            Err(EncStringError::Malformed(_))
        ));
        assert!(matches!(
            bitwarden_open(&k, "2.AAAA|AAAA"),
            Err(EncStringError::Malformed(_))
        ));
    }

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64); the
        // first 32 bytes are what Bitwarden derives before HKDF.
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"passwd", b"salt", 1, &mut out);
        assert_eq!(
            hex::encode(out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn refuses_absurd_parameters() {
        for kdf in [
            BitwardenKdf::Pbkdf2 { iterations: 0 },
            BitwardenKdf::Pbkdf2 {
                iterations: u32::MAX,
            },
            BitwardenKdf::Argon2id {
                iterations: 3,
                memory_mib: 1_000_000,
                parallelism: 4,
            },
            BitwardenKdf::Argon2id {
                iterations: 0,
                memory_mib: 64,
                parallelism: 4,
            },
            BitwardenKdf::Argon2id {
                iterations: 3,
                memory_mib: 64,
                parallelism: 0,
            },
        ] {
            assert!(bitwarden_export_key("pw", "salt", kdf).is_err(), "{kdf:?}");
        }
    }
}
