//! Sealing to an account's X25519 public key (DESIGN §2): HPKE, RFC 9180,
//! base mode, with the suite DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20Poly1305, from the `hpke` crate; checked against the RFC's test
//! vector for that suite (Appendix A.2.1). A sealed box is
//! `version(1) || enc(32) || ciphertext+tag`; `info` names the purpose and
//! `aad` the ids it belongs to, so a box cannot be moved elsewhere.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{CryptoRng, RngCore};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use super::CryptoError;
use super::keys::AccountKeyPair;

/// The box's version byte.
const VERSION: u8 = 1;
/// The encapsulated key's length (an X25519 public key).
const ENC_LEN: usize = 32;

type Kem = X25519HkdfSha256;

/// Seals `plaintext` to the holder of the X25519 key `recipient`.
///
/// # Errors
/// [`CryptoError::WeakPublicKey`] for a public key no key can be agreed
/// with (a low-order point).
pub fn seal_to(
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    seal_with(recipient, info, aad, plaintext, &mut Os)
}

/// The OS random source, as the `hpke` crate's `rand_core` takes it.
struct Os;

impl RngCore for Os {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut rand::rngs::OsRng)
    }
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut rand::rngs::OsRng)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, dest);
    }
}

impl CryptoRng for Os {}

fn seal_with<R: CryptoRng + RngCore>(
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, CryptoError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| CryptoError::WeakPublicKey)?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| CryptoError::WeakPublicKey)?;
    let mut out = Vec::with_capacity(1 + ENC_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a box [`seal_to`] made for this key pair.
///
/// # Errors
/// [`CryptoError::UnsupportedVersion`], [`CryptoError::Malformed`], or
/// [`CryptoError::Decrypt`] for another key, `info`, `aad` or altered bytes.
pub fn open_from(
    pair: &AccountKeyPair,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let private = pair.x25519_secret();
    open_with(&private, info, aad, sealed)
}

fn open_with(
    private: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    match sealed.first() {
        None => return Err(CryptoError::Malformed),
        Some(&VERSION) => {}
        Some(&v) => return Err(CryptoError::UnsupportedVersion(v)),
    }
    if sealed.len() < 1 + ENC_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let sk =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(private).map_err(|_| CryptoError::Decrypt)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed[1..=ENC_LEN])
        .map_err(|_| CryptoError::Malformed)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        &sealed[1 + ENC_LEN..],
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| CryptoError::Decrypt)
}

/// A one-time X25519 key pair of the HPKE suite above (device approval:
/// each side makes a fresh one per request). The private half is wiped on
/// drop.
pub struct EphemeralKeyPair {
    private: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl EphemeralKeyPair {
    /// A fresh key pair from the OS random source.
    #[must_use]
    pub fn generate() -> Self {
        let (sk, pk) = <Kem as hpke::Kem>::gen_keypair(&mut Os);
        let mut private = Zeroizing::new([0u8; 32]);
        private.copy_from_slice(&sk.to_bytes());
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        Self { private, public }
    }

    #[must_use]
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

impl std::fmt::Debug for EphemeralKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralKeyPair")
            .field("public", &hex_short(&self.public))
            .finish_non_exhaustive()
    }
}

fn hex_short(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

/// Seals `plaintext` to `recipient` in HPKE's Auth mode (RFC 9180 §5.1.3):
/// only the holder of `sender`'s private key can have made the box, and
/// [`open_auth`] checks that against `sender`'s public key.
///
/// # Errors
/// [`CryptoError::WeakPublicKey`] for a public key no key can be agreed with.
pub fn seal_auth(
    sender: &EphemeralKeyPair,
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| CryptoError::WeakPublicKey)?;
    let sk_s = <Kem as hpke::Kem>::PrivateKey::from_bytes(sender.private.as_slice())
        .map_err(|_| CryptoError::WeakPublicKey)?;
    let pk_s = <Kem as hpke::Kem>::PublicKey::from_bytes(&sender.public)
        .map_err(|_| CryptoError::WeakPublicKey)?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Auth((sk_s, pk_s)),
        &pk,
        info,
        plaintext,
        aad,
        &mut Os,
    )
    .map_err(|_| CryptoError::WeakPublicKey)?;
    let mut out = Vec::with_capacity(1 + ENC_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a box [`seal_auth`] made by the holder of `sender` for `recipient`.
///
/// # Errors
/// [`CryptoError::UnsupportedVersion`], [`CryptoError::Malformed`], or
/// [`CryptoError::Decrypt`] for another sender, recipient, `info`, `aad` or
/// altered bytes.
pub fn open_auth(
    recipient: &EphemeralKeyPair,
    sender: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    match sealed.first() {
        None => return Err(CryptoError::Malformed),
        Some(&VERSION) => {}
        Some(&v) => return Err(CryptoError::UnsupportedVersion(v)),
    }
    if sealed.len() < 1 + ENC_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(recipient.private.as_slice())
        .map_err(|_| CryptoError::Decrypt)?;
    let pk_s =
        <Kem as hpke::Kem>::PublicKey::from_bytes(sender).map_err(|_| CryptoError::Decrypt)?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed[1..=ENC_LEN])
        .map_err(|_| CryptoError::Malformed)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Auth(pk_s),
        &sk,
        &enc,
        info,
        &sealed[1 + ENC_LEN..],
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| CryptoError::Decrypt)
}

/// The key pair HPKE derives from `ikm` (its DeriveKeyPair, RFC 9180
/// §7.1.3), as bytes: (private, public).
#[must_use]
pub fn derive_keypair(ikm: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let (sk, pk) = <Kem as hpke::Kem>::derive_keypair(ikm);
    let mut s = Zeroizing::new([0; 32]);
    s.copy_from_slice(&sk.to_bytes());
    let mut p = [0; 32];
    p.copy_from_slice(&pk.to_bytes());
    (s, p)
}

/// Opens a box [`seal_to`] made for the X25519 private key `private`.
///
/// # Errors
/// As [`open_from`].
pub fn open_with_secret(
    private: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open_with(private, info, aad, sealed)
}

#[cfg(test)]
fn derive(ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let (s, p) = derive_keypair(ikm);
    (*s, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(char::is_whitespace, "")).expect("hex")
    }

    /// Hands out fixed bytes: the vector's ephemeral key material.
    struct Fixed(Vec<u8>);

    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            unimplemented!()
        }
        fn next_u64(&mut self) -> u64 {
            unimplemented!()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            let n = dest.len();
            dest.copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
        }
    }
    impl CryptoRng for Fixed {}

    /// RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    /// ChaCha20Poly1305, base mode, sequence number 0.
    #[test]
    fn rfc9180_a_2_1() {
        let info = h("4f6465206f6e2061204772656369616e2055726e");
        let ikm_e = h("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b");
        let ikm_r = h("1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df");
        let (sk_r, pk_r) = derive(&ikm_r);
        assert_eq!(
            pk_r.to_vec(),
            h("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
        );
        assert_eq!(
            sk_r.to_vec(),
            h("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
        );
        let pt = h("4265617574792069732074727574682c20747275746820626561757479");
        let aad = h("436f756e742d30");
        let sealed = seal_with(&pk_r, &info, &aad, &pt, &mut Fixed(ikm_e)).expect("seal");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(
            sealed[1..=ENC_LEN].to_vec(),
            h("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a"),
            "enc"
        );
        assert_eq!(
            sealed[1 + ENC_LEN..].to_vec(),
            h(
                "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db
               21993c62ce81883d2dd1b51a28"
            ),
            "ct"
        );
        let opened = open_with(&sk_r, &info, &aad, &sealed).expect("open");
        assert_eq!(opened.as_slice(), pt.as_slice());
    }

    #[test]
    fn a_box_opens_only_for_its_key_info_and_aad() {
        let bob = AccountKeyPair::generate();
        let eve = AccountKeyPair::generate();
        let sealed =
            seal_to(&bob.public().x25519, b"openk/v1/x", b"ids", b"vault key").expect("seal");
        assert_eq!(
            open_from(&bob, b"openk/v1/x", b"ids", &sealed)
                .expect("open")
                .as_slice(),
            b"vault key"
        );
        assert!(matches!(
            open_from(&eve, b"openk/v1/x", b"ids", &sealed),
            Err(CryptoError::Decrypt)
        ));
        assert!(open_from(&bob, b"openk/v1/y", b"ids", &sealed).is_err());
        assert!(open_from(&bob, b"openk/v1/x", b"other", &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().expect("byte") ^= 1;
        assert!(open_from(&bob, b"openk/v1/x", b"ids", &flipped).is_err());
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert!(matches!(
            open_from(&bob, b"openk/v1/x", b"ids", &v2),
            Err(CryptoError::UnsupportedVersion(2))
        ));
        assert!(open_from(&bob, b"openk/v1/x", b"ids", &sealed[..40]).is_err());
        assert!(
            seal_to(&[0; 32], b"i", b"a", b"p").is_err(),
            "low-order key accepted"
        );
    }

    #[test]
    fn an_auth_box_opens_only_from_its_sender_for_its_recipient() {
        let sender = EphemeralKeyPair::generate();
        let recipient = EphemeralKeyPair::generate();
        let mallory = EphemeralKeyPair::generate();
        let sealed = seal_auth(&sender, &recipient.public(), b"i", b"t", b"secret").expect("seal");
        assert_eq!(
            open_auth(&recipient, &sender.public(), b"i", b"t", &sealed)
                .expect("open")
                .as_slice(),
            b"secret"
        );
        // Another sender's key (a server that made its own box), another
        // recipient, transcript or info: refused.
        assert!(open_auth(&recipient, &mallory.public(), b"i", b"t", &sealed).is_err());
        let forged = seal_auth(&mallory, &recipient.public(), b"i", b"t", b"evil").expect("seal");
        assert!(open_auth(&recipient, &sender.public(), b"i", b"t", &forged).is_err());
        assert!(open_auth(&mallory, &sender.public(), b"i", b"t", &sealed).is_err());
        assert!(open_auth(&recipient, &sender.public(), b"i", b"other", &sealed).is_err());
        assert!(open_auth(&recipient, &sender.public(), b"j", b"t", &sealed).is_err());
        // A base-mode box to the same key is not an auth box.
        let base = seal_to(&recipient.public(), b"i", b"t", b"evil").expect("seal");
        assert!(open_auth(&recipient, &sender.public(), b"i", b"t", &base).is_err());
        assert!(seal_auth(&sender, &[0; 32], b"i", b"t", b"p").is_err());
    }
}
