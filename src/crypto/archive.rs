//! The encryption of an OpenK export archive (`openk export --format
//! openk`): a passphrase of its own through Argon2id, then the STREAM
//! construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015, "Online
//! Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance") over
//! XChaCha20-Poly1305, as the `aead` crate implements it (`StreamBE32`:
//! a 19-byte random nonce prefix, a 32-bit big-endian chunk counter and a
//! last-chunk flag byte). The plaintext is sealed in chunks, so neither the
//! writer nor the reader needs the whole plaintext in memory, and a
//! reordered, dropped or truncated chunk fails to open.
//!
//! ```text
//! header (60 bytes)
//!   magic        8   "OPENKARC"
//!   version      1   1
//!   memory_kib   4   u32 big endian  (Argon2id)
//!   iterations   4   u32 big endian
//!   parallelism  4   u32 big endian
//!   salt        16   random
//!   nonce prefix 19  random (STREAM)
//!   chunk size   4   u32 big endian: plaintext bytes per chunk (65536)
//! check          41  envelope seal of nothing under the check key, with
//!                    the header as associated data (wrong passphrase)
//! chunks             each chunk-size plaintext bytes + 16-byte tag; the
//!                    last (flagged) one holds 0..=chunk-size bytes
//! ```
//!
//! The Argon2id output `k` gives two keys by HKDF-SHA256: the check key
//! (info `openk/v1/archive-check`) and the stream key (info
//! `openk/v1/archive-stream`). Every chunk has the header and check as
//! associated data, so no header byte can change without every chunk
//! failing. Argon2id parameters from a file are held to the local ceiling
//! ([`KdfParams::validate`]) before any derivation runs.

use std::io::Write;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::envelope::{self, Aad, MIN_BLOB_LEN};
use super::kdf::{KdfParams, SALT_LEN, password_key};
use super::secret::{Key, SecretString, random_array};

/// The first bytes of every archive.
pub const MAGIC: &[u8; 8] = b"OPENKARC";
/// The only archive version this build reads or writes.
pub const VERSION: u8 = 1;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const PREFIX_LEN: usize = 19;
const TAG_LEN: usize = 16;
/// Header bytes (before the check).
pub const HEADER_LEN: usize = 8 + 1 + 12 + SALT_LEN + PREFIX_LEN + 4;
/// Where the first chunk starts.
pub const BODY_START: usize = HEADER_LEN + MIN_BLOB_LEN;
const MIN_CHUNK: usize = 1024;
const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// Why an archive cannot be opened or read on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    /// The passphrase does not open the archive (or the header was changed).
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// Not an archive this build reads, damaged or cut short.
    #[error("byte {at}: {why}")]
    Malformed { at: usize, why: String },
}

fn malformed(at: usize, why: impl Into<String>) -> ArchiveError {
    ArchiveError::Malformed {
        at,
        why: why.into(),
    }
}

/// Whether `bytes` start like an archive (its magic).
#[must_use]
pub fn is_archive(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

struct Keys {
    check: Key,
    stream: Key,
}

fn derive(passphrase: &SecretString, salt: &[u8], kdf: &KdfParams) -> Result<Keys, String> {
    let k = password_key(passphrase, salt, kdf).map_err(|e| e.to_string())?;
    let hk = Hkdf::<Sha256>::new(None, k.expose());
    let mut check = Zeroizing::new([0u8; 32]);
    let mut stream = Zeroizing::new([0u8; 32]);
    // Only fails for outputs longer than 255 * 32 bytes.
    let _ = hk.expand(b"openk/v1/archive-check", check.as_mut());
    let _ = hk.expand(b"openk/v1/archive-stream", stream.as_mut());
    Ok(Keys {
        check: Key::from_bytes(&mut check),
        stream: Key::from_bytes(&mut stream),
    })
}

fn cipher(key: &Key) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.expose().into())
}

/// Writes an archive: the header at [`ArchiveWriter::create`], then sealed
/// chunks as plaintext arrives, the last one at [`ArchiveWriter::finish`].
pub struct ArchiveWriter<W: Write> {
    out: W,
    aad: Vec<u8>,
    encryptor: Option<EncryptorBE32<XChaCha20Poly1305>>,
    buffer: Zeroizing<Vec<u8>>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Derives the keys (Argon2id with `kdf`: this takes as long as an
    /// unlock) and writes the header and check.
    ///
    /// # Errors
    /// Parameters outside the limits (`InvalidInput`), or the writer's error.
    pub fn create(mut out: W, passphrase: &SecretString, kdf: &KdfParams) -> std::io::Result<Self> {
        let salt = random_array::<SALT_LEN>();
        let prefix = random_array::<PREFIX_LEN>();
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        header.extend_from_slice(&kdf.memory_kib.to_be_bytes());
        header.extend_from_slice(&kdf.iterations.to_be_bytes());
        header.extend_from_slice(&kdf.parallelism.to_be_bytes());
        header.extend_from_slice(&salt);
        header.extend_from_slice(&prefix);
        header.extend_from_slice(&u32::try_from(CHUNK).unwrap_or(u32::MAX).to_be_bytes());
        let keys = derive(passphrase, &salt, kdf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let check = envelope::seal(&keys.check, &Aad::archive_check(&header), &[]);
        out.write_all(&header)?;
        out.write_all(&check)?;
        let mut aad = header;
        aad.extend_from_slice(&check);
        let encryptor = EncryptorBE32::from_aead(cipher(&keys.stream), prefix.as_ref().into());
        Ok(Self {
            out,
            aad,
            encryptor: Some(encryptor),
            buffer: Zeroizing::new(Vec::with_capacity(CHUNK * 2)),
        })
    }

    /// Adds plaintext; full chunks are sealed and written as they fill.
    ///
    /// # Errors
    /// The writer's error, or a write after [`ArchiveWriter::finish`].
    pub fn push(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            // A chunk is sealed only once more plaintext follows it, so
            // that the last one can carry the last-chunk flag.
            if self.buffer.len() == CHUNK {
                self.seal_next()?;
            }
            let take = (CHUNK - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    fn seal_next(&mut self) -> std::io::Result<()> {
        let enc = self.encryptor.as_mut().ok_or_else(finished)?;
        let sealed = enc
            .encrypt_next(Payload {
                msg: &self.buffer,
                aad: &self.aad,
            })
            .map_err(|_| std::io::Error::other("the archive is too large to seal"))?;
        self.buffer.clear();
        self.out.write_all(&sealed)
    }

    /// Seals the last chunk and flushes; returns the writer.
    ///
    /// # Errors
    /// The writer's error.
    pub fn finish(mut self) -> std::io::Result<W> {
        let enc = self.encryptor.take().ok_or_else(finished)?;
        let sealed = enc
            .encrypt_last(Payload {
                msg: &self.buffer,
                aad: &self.aad,
            })
            .map_err(|_| std::io::Error::other("the archive is too large to seal"))?;
        self.buffer.clear();
        self.out.write_all(&sealed)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Plaintext written here is sealed; `flush` writes nothing (a chunk is
/// sealed when it is full or at [`ArchiveWriter::finish`]).
impl<W: Write> Write for ArchiveWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn finished() -> std::io::Error {
    std::io::Error::other("the archive was already finished")
}

/// Reads an archive chunk by chunk.
pub struct ArchiveReader<'a> {
    bytes: &'a [u8],
    at: usize,
    chunk: usize,
    aad: Vec<u8>,
    decryptor: Option<DecryptorBE32<XChaCha20Poly1305>>,
}

impl<'a> ArchiveReader<'a> {
    /// Reads the header and checks the passphrase (Argon2id runs here).
    ///
    /// # Errors
    /// [`ArchiveError::WrongPassphrase`]; [`ArchiveError::Malformed`] for
    /// a file that is not an archive, of another version, with parameters
    /// out of bounds, or cut short.
    pub fn open(bytes: &'a [u8], passphrase: &SecretString) -> Result<Self, ArchiveError> {
        if !is_archive(bytes) {
            return Err(malformed(0, "no OpenK archive header"));
        }
        if bytes.len() < BODY_START {
            return Err(malformed(bytes.len(), "the header is cut short"));
        }
        if bytes[8] != VERSION {
            return Err(malformed(
                8,
                format!("archive version {} (this build reads {VERSION})", bytes[8]),
            ));
        }
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_be_bytes(w)
        };
        let kdf = KdfParams {
            memory_kib: word(9),
            iterations: word(13),
            parallelism: word(17),
        };
        kdf.validate().map_err(|e| malformed(9, e.to_string()))?;
        let salt = &bytes[21..21 + SALT_LEN];
        let prefix = &bytes[21 + SALT_LEN..21 + SALT_LEN + PREFIX_LEN];
        let chunk = usize::try_from(word(HEADER_LEN - 4)).unwrap_or(usize::MAX);
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) {
            return Err(malformed(
                HEADER_LEN - 4,
                format!("chunk size {chunk} is out of bounds"),
            ));
        }
        let header = &bytes[..HEADER_LEN];
        let keys = derive(passphrase, salt, &kdf).map_err(|e| malformed(9, e))?;
        envelope::open(
            &keys.check,
            &Aad::archive_check(header),
            &bytes[HEADER_LEN..BODY_START],
        )
        .map_err(|_| ArchiveError::WrongPassphrase)?;
        Ok(Self {
            bytes,
            at: BODY_START,
            chunk,
            aad: bytes[..BODY_START].to_vec(),
            decryptor: Some(DecryptorBE32::from_aead(
                cipher(&keys.stream),
                prefix.into(),
            )),
        })
    }

    /// The next chunk's plaintext; `None` after the last one.
    ///
    /// # Errors
    /// [`ArchiveError::Malformed`] at the chunk's byte offset when it was
    /// altered, moved, or the file was cut short.
    pub fn next_chunk(&mut self) -> Option<Result<Zeroizing<Vec<u8>>, ArchiveError>> {
        let full = self.chunk + TAG_LEN;
        let rest = &self.bytes[self.at..];
        let at = self.at;
        if rest.len() > full {
            let dec = self.decryptor.as_mut()?;
            let out = dec.decrypt_next(Payload {
                msg: &rest[..full],
                aad: &self.aad,
            });
            self.at += full;
            Some(
                out.map(Zeroizing::new)
                    .map_err(|_| malformed(at, "a chunk was altered or is out of place")),
            )
        } else {
            let dec = self.decryptor.take()?;
            if rest.len() < TAG_LEN {
                return Some(Err(malformed(at, "the archive is cut short")));
            }
            let out = dec.decrypt_last(Payload {
                msg: rest,
                aad: &self.aad,
            });
            self.at = self.bytes.len();
            Some(out.map(Zeroizing::new).map_err(|_| {
                malformed(
                    at,
                    "the last chunk does not open: the archive was cut short or altered",
                )
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn small() -> KdfParams {
        KdfParams::from_mib(1, 1, 1)
    }

    fn seal(data: &[u8]) -> Vec<u8> {
        let mut w = ArchiveWriter::create(Vec::new(), &pw("correct horse"), &small()).expect("w");
        for part in data.chunks(7777) {
            w.push(part).expect("write");
        }
        w.finish().expect("finish")
    }

    fn read_all(bytes: &[u8], pass: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut r = ArchiveReader::open(bytes, &pw(pass))?;
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk() {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&data);
            assert!(is_archive(&sealed));
            assert_eq!(
                read_all(&sealed, "correct horse").expect("open"),
                data,
                "{len}"
            );
        }
    }

    #[test]
    fn wrong_passphrase_and_header_changes_are_refused() {
        let sealed = seal(b"hello");
        assert_eq!(
            read_all(&sealed, "wrong").expect_err("wrong"),
            ArchiveError::WrongPassphrase
        );
        // A changed salt byte: the check fails like a wrong passphrase.
        let mut salt = sealed.clone();
        salt[25] ^= 1;
        assert_eq!(
            read_all(&salt, "correct horse").expect_err("salt"),
            ArchiveError::WrongPassphrase
        );
        let mut version = sealed.clone();
        version[8] = 2;
        assert!(matches!(
            read_all(&version, "correct horse"),
            Err(ArchiveError::Malformed { at: 8, .. })
        ));
        let mut huge = sealed;
        huge[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_all(&huge, "correct horse"),
            Err(ArchiveError::Malformed { at: 9, .. })
        ));
    }

    #[test]
    fn truncation_reordering_and_bit_flips_are_caught_with_a_position() {
        let data: Vec<u8> = (0..3 * CHUNK + 10).map(|i| (i % 253) as u8).collect();
        let sealed = seal(&data);
        let full = CHUNK + TAG_LEN;
        // Cut at a chunk boundary: the new last chunk lacks the flag.
        let cut = &sealed[..BODY_START + 2 * full];
        let e = read_all(cut, "correct horse").expect_err("cut");
        assert_eq!(
            e,
            ArchiveError::Malformed {
                at: BODY_START + full,
                why: "the last chunk does not open: the archive was cut short or altered".into()
            }
        );
        // Two chunks swapped.
        let mut swapped = sealed.clone();
        let (a, b) = (BODY_START, BODY_START + full);
        let first = sealed[a..a + full].to_vec();
        swapped.copy_within(b..b + full, a);
        swapped[b..b + full].copy_from_slice(&first);
        assert!(matches!(
            read_all(&swapped, "correct horse"),
            Err(ArchiveError::Malformed { at, .. }) if at == BODY_START
        ));
        // A flipped byte in the third chunk.
        let mut flipped = sealed.clone();
        flipped[BODY_START + 2 * full + 3] ^= 0x40;
        assert!(matches!(
            read_all(&flipped, "correct horse"),
            Err(ArchiveError::Malformed { at, .. }) if at == BODY_START + 2 * full
        ));
        // Cut inside the header.
        assert!(matches!(
            read_all(&sealed[..30], "correct horse"),
            Err(ArchiveError::Malformed { .. })
        ));
        // Not an archive.
        assert!(matches!(
            read_all(b"SQLite format 3\0", "x"),
            Err(ArchiveError::Malformed { at: 0, .. })
        ));
    }
}
