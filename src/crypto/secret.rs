//! Secret holders: 256-bit keys and secret strings that wipe themselves on drop.
//!
//! `Key` has no `Clone`, `Copy`, `Serialize` or revealing `Debug`; the bytes are
//! reachable only through `expose`, inside `crypto/`. The bytes live on the heap
//! so that moving a `Key` around never leaves copies on the stack.

use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use secrecy::{ExposeSecret, SecretString};

/// A 256-bit symmetric key (XChaCha20-Poly1305 key, HKDF output, Argon2 output).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Key(Box<[u8; 32]>);

impl Key {
    /// A fresh key from the operating system's RNG.
    #[must_use]
    pub fn random() -> Self {
        let mut key = Self(Box::new([0u8; 32]));
        OsRng.fill_bytes(key.0.as_mut());
        key
    }

    /// Takes ownership of key bytes; the caller's array is wiped.
    pub(crate) fn from_bytes(bytes: &mut [u8; 32]) -> Self {
        let key = Self(Box::new(*bytes));
        bytes.zeroize();
        key
    }

    /// Builds a key from a slice of exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: &[u8; 32] = bytes.try_into().ok()?;
        Some(Self(Box::new(*array)))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A second handle on the same key material, for the rare place that needs
    /// one (e.g. keeping a vault key both in a cache and in a session).
    #[must_use]
    pub fn duplicate(&self) -> Self {
        Self(Box::new(*self.0))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(***)")
    }
}

/// Random bytes from the OS RNG (salts, ids of secrets).
#[must_use]
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = Key::from_bytes(&mut [0xAB; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "Key(***)");
        assert!(!shown.to_lowercase().contains("ab"));
    }

    #[test]
    fn from_bytes_wipes_the_source() {
        let mut bytes = [7u8; 32];
        let key = Key::from_bytes(&mut bytes);
        assert_eq!(bytes, [0u8; 32]);
        assert_eq!(key.expose(), &[7u8; 32]);
    }

    #[test]
    fn zeroize_wipes_key_material() {
        let mut key = Key::from_bytes(&mut [9u8; 32]);
        key.zeroize();
        assert_eq!(key.expose(), &[0u8; 32]);
    }

    #[test]
    fn keys_wipe_on_drop() {
        fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
        assert_zeroize_on_drop::<Key>();
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(Key::random().expose(), Key::random().expose());
    }
}
