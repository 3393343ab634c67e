//! The only module that names cipher crates: key derivation, authenticated
//! encryption, the Secret Key format, the account key pair, TOTP and process
//! hardening. Everything above it handles keys as opaque [`Key`] values.

pub mod archive;
pub mod bitwarden;
pub mod envelope;
pub mod hpke;
pub mod kdf;
pub mod keys;
pub mod named;

pub mod recovery;
pub mod secret;
pub mod share;
pub mod totp;

pub use bitwarden::{BitwardenKdf, EncStringError, bitwarden_export_key, bitwarden_open};
pub use envelope::{Aad, open, seal, unwrap_key, wrap_key};
pub use kdf::KdfParams;
pub use keys::{AccountKeyPair, PublicKeys, SecretKey};
pub use secret::{ExposeSecret, Key, SecretString};

/// The shape of Project Wycheproof's AEAD vector files
/// (`tests/vectors/*_test.json`), for the crypto tests.
#[cfg(test)]
pub(crate) mod wycheproof {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Suite {
        #[serde(rename = "testGroups")]
        pub groups: Vec<Group>,
    }
    #[derive(Deserialize)]
    pub struct Group {
        /// Bits (absent in files of one size).
        #[serde(rename = "keySize", default)]
        pub key_size: u32,
        #[serde(rename = "ivSize", default)]
        pub iv_size: u32,
        #[serde(rename = "tagSize", default)]
        pub tag_size: u32,
        pub tests: Vec<Case>,
    }
    #[derive(Deserialize)]
    pub struct Case {
        #[serde(rename = "tcId")]
        pub id: u32,
        pub key: String,
        pub iv: String,
        pub aad: String,
        pub msg: String,
        pub ct: String,
        pub tag: String,
        pub result: String,
    }
}

/// Errors from the primitives. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Wrong key, wrong associated data or altered bytes; deliberately one case.
    #[error("decryption failed: wrong key or damaged data")]
    Decrypt,
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    #[error("malformed ciphertext")]
    Malformed,
    #[error("invalid key derivation parameters: {0}")]
    KdfParams(String),
    #[error("invalid secret key: {0}")]
    SecretKeyFormat(&'static str),
    /// A recovery code or share that does not parse or combine (never
    /// echoing the input).
    #[error("{0}")]
    RecoveryFormat(String),
    #[error("refused a weak (low-order) public key")]
    WeakPublicKey,
    #[error("invalid signature")]
    BadSignature,
}

/// Makes the process harder to read secrets out of: no core dumps (a crash
/// must not write decrypted items to disk) and, on Linux, not dumpable, which
/// also stops other processes of the same user from attaching with ptrace.
///
/// # Errors
/// The OS error when the limits cannot be set.
pub fn harden_process() -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hardening_disables_core_dumps() {
        super::harden_process().expect("hardening works");
        let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(limit.current, Some(0));
        assert_eq!(limit.maximum, Some(0));
        #[cfg(target_os = "linux")]
        assert_eq!(
            rustix::process::dumpable_behavior().expect("prctl"),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
