//! Argon2id: the master password to the password key `pk`.
//!
//! The password is normalised to Unicode NFC and otherwise used exactly as typed
//! (never trimmed or case-folded), so the same password typed on another system
//! derives the same key. Parameters are checked against a floor (weaker ones
//! work but warn, or are refused when they come from elsewhere) and a ceiling
//! (absurd ones would let a malicious server or file hang the client).

use argon2::{Algorithm, Argon2, Params, Version};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::CryptoError;
use super::secret::{ExposeSecret, Key, SecretString};
pub use crate::kdf_params::KdfParams;

/// Bytes of random account salt.
pub const SALT_LEN: usize = 16;

/// The derivation's checks, as `CryptoError`s.
impl KdfParams {
    /// Checks the hard limits: above the ceiling, or impossible for Argon2.
    ///
    /// # Errors
    /// `CryptoError::KdfParams` naming the offending value and the allowed range.
    pub fn validate(&self) -> Result<(), CryptoError> {
        self.check_limits().map_err(CryptoError::KdfParams)
    }

    fn argon2(&self) -> Result<Argon2<'static>, CryptoError> {
        self.validate()?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Derives the password key `pk` = Argon2id(NFC(password), salt, params).
///
/// # Errors
/// `CryptoError::KdfParams` for parameters outside the hard limits.
pub fn password_key(
    password: &SecretString,
    salt: &[u8],
    params: &KdfParams,
) -> Result<Key, CryptoError> {
    let argon2 = params.argon2()?;
    // Into a buffer of its final size: a `String` that grows while collecting
    // would free unwiped copies of the password. NFC makes UTF-8 at most
    // three times longer (Unicode's stability guarantee).
    let text = password.expose_secret();
    let mut normalized = Zeroizing::new(String::with_capacity(text.len() * 3));
    normalized.extend(text.nfc());
    let mut out = Zeroizing::new([0u8; 32]);
    argon2
        .hash_password_into(normalized.as_bytes(), salt, out.as_mut())
        .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
    Ok(Key::from_bytes(&mut out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_may_ask_for_less_than_local_options_allow() {
        assert!(KdfParams::DEFAULT.check_offered().is_ok());
        assert!(KdfParams::FLOOR.check_offered().is_ok());
        assert!(KdfParams::from_mib(1024, 4, 8).check_offered().is_ok());
        for (p, why) in [
            (KdfParams::from_mib(4096, 100, 4), "4096 MiB"),
            (KdfParams::from_mib(1025, 1, 1), "1025 MiB"),
            (KdfParams::from_mib(64, 21, 1), "21 iterations"),
            (KdfParams::from_mib(64, 3, 9), "9 lanes"),
            (KdfParams::from_mib(1024, 5, 4), "memory × iterations"),
        ] {
            assert!(p.validate().is_ok(), "{p:?} is valid locally");
            let e = p.check_offered().expect_err("refused");
            assert!(e.contains(why), "{e}");
        }
    }

    /// RFC 9106 §5.3: the Argon2id test vector (with secret and associated data).
    #[test]
    fn rfc9106_argon2id_vector() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .data(argon2::AssociatedData::new(&[0x04; 12]).expect("ad"))
            .output_len(32)
            .build()
            .expect("params");
        let argon2 =
            Argon2::new_with_secret(&[0x03; 8], Algorithm::Argon2id, Version::V0x13, params)
                .expect("argon2");
        let mut out = [0u8; 32];
        argon2
            .hash_password_into(&[0x01; 32], &[0x02; 16], &mut out)
            .expect("hash");
        assert_eq!(
            hex::encode(out),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }

    fn small() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn password_is_nfc_normalised_not_trimmed_or_folded() {
        let salt = [1u8; SALT_LEN];
        let key = |s: &str| {
            password_key(&SecretString::from(s.to_owned()), &salt, &small()).expect("kdf")
        };
        // "é" precomposed vs. "e" + combining acute accent.
        assert_eq!(key("caf\u{e9}").expose(), key("cafe\u{301}").expose());
        assert_ne!(key("pass").expose(), key("pass ").expose());
        assert_ne!(key("pass").expose(), key("PASS").expose());
        assert_ne!(key("pass").expose(), key("pasS").expose());
    }

    #[test]
    fn salt_and_params_change_the_key() {
        let pw = SecretString::from("pw".to_owned());
        let a = password_key(&pw, &[1; 16], &small()).expect("kdf");
        let b = password_key(&pw, &[2; 16], &small()).expect("kdf");
        let c = password_key(
            &pw,
            &[1; 16],
            &KdfParams {
                iterations: 2,
                ..small()
            },
        )
        .expect("kdf");
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
    }

    #[test]
    fn floor_and_ceiling() {
        assert!(!KdfParams::DEFAULT.is_below_floor());
        assert!(!KdfParams::FLOOR.is_below_floor());
        assert!(KdfParams::from_mib(8, 3, 1).is_below_floor());
        assert!(KdfParams::from_mib(64, 1, 1).is_below_floor());
        assert!(KdfParams::DEFAULT.validate().is_ok());
        assert!(KdfParams::CEILING.validate().is_ok());
        for bad in [
            KdfParams::from_mib(4097, 3, 4),
            KdfParams::from_mib(64, 101, 4),
            KdfParams::from_mib(64, 3, 17),
            KdfParams::from_mib(64, 0, 4),
            KdfParams::from_mib(64, 3, 0),
            KdfParams {
                memory_kib: 8,
                iterations: 1,
                parallelism: 4,
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(CryptoError::KdfParams(_))),
                "{bad:?}"
            );
            let err = password_key(&SecretString::from("x".to_owned()), &[0; 16], &bad);
            assert!(err.is_err(), "{bad:?}");
        }
    }
}
