//! KeePass / KeePassXC databases (KDBX 3.1 and 4.x: AES-KDF, Argon2d,
//! Argon2id; AES-256, ChaCha20, Twofish), read with the `keepass` crate and
//! mapped as in `keepass_entry`.

use keepass::db::{EntryRef, GroupRef};
use keepass::error::{DatabaseFormatError, DatabaseKeyError, DatabaseOpenError};
use keepass::{Database, DatabaseKey};
use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use super::keepass_entry::{KpAttachment, KpEntry, KpString, map_entry, place};
use super::{Format, ImportError, Parsed, Result, Source};

/// The first four bytes of every KeePass 2 file, and the KDBX 2.x / 3.x /
/// 4.x signature that follows them.
const SIGNATURE_1: [u8; 4] = [0x03, 0xd9, 0xa2, 0x9a];
const SIGNATURE_2: [u8; 4] = [0x67, 0xfb, 0x4b, 0xb5];

/// Whether `bytes` start like a KDBX file.
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    bytes.starts_with(&SIGNATURE_1) && bytes.get(4..8) == Some(&SIGNATURE_2[..])
}

fn malformed(at: &str, why: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format: Format::Kdbx,
        at: at.into(),
        why: why.into(),
    }
}

/// Opens the database with the password and/or key file of `source`.
///
/// # Errors
/// [`ImportError::NeedsPassword`] with neither a password nor a key file,
/// [`ImportError::WrongPassword`] when they do not open it,
/// [`ImportError::Malformed`] for anything that is not a whole KDBX file.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    if !detect(source.bytes) {
        return Err(malformed(
            "header",
            if source.bytes.len() < 8 {
                "the file is too short to be a KeePass database"
            } else {
                "the file does not start with the KeePass 2 signature"
            },
        ));
    }
    if source.password.is_none() && source.key_file.is_none() {
        return Err(ImportError::NeedsPassword(Format::Kdbx));
    }
    let mut key = DatabaseKey::new();
    if let Some(pw) = source.password {
        key = key.with_password(pw.expose_secret());
    }
    if let Some(mut file) = source.key_file {
        key = key
            .with_keyfile(&mut file)
            .map_err(|e| ImportError::Io(format!("the key file could not be read: {e}")))?;
    }
    let key_file = source.key_file.is_some();
    // The reader is a third-party parser of untrusted bytes: a panic in it
    // is reported as a damaged file, never passed on.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Database::parse(source.bytes, key)
    }))
    .map_err(|_| malformed("payload", "the KeePass reader could not make sense of it"))?;
    let db = opened.map_err(|e| match e {
        // KDBX 3.1 decrypts its whole payload before it checks the key (its
        // "stream start bytes"): with a wrong key the CBC padding is wrong.
        // A whole payload (a multiple of the block size) with bad padding
        // is a wrong key, as KeePass itself reports it.
        DatabaseOpenError::Cryptography(_)
            if kdbx3_payload_len(source.bytes).is_some_and(|n| n > 0 && n % 16 == 0) =>
        {
            ImportError::WrongPassword {
                format: Format::Kdbx,
                key_file,
            }
        }
        e => open_error(e, key_file),
    })?;
    Ok(read(&db, source))
}

/// The length of a KDBX 3.x file's encrypted payload (after its header
/// fields), `None` for another version or a header that ends early.
fn kdbx3_payload_len(bytes: &[u8]) -> Option<usize> {
    let major = u16::from_le_bytes([*bytes.get(10)?, *bytes.get(11)?]);
    if major != 3 {
        return None;
    }
    let mut at = 12usize;
    loop {
        let id = *bytes.get(at)?;
        let len = usize::from(u16::from_le_bytes([
            *bytes.get(at + 1)?,
            *bytes.get(at + 2)?,
        ]));
        at = at.checked_add(3 + len)?;
        if id == 0 {
            return bytes.len().checked_sub(at);
        }
    }
}

fn open_error(e: DatabaseOpenError, key_file: bool) -> ImportError {
    match e {
        DatabaseOpenError::Key(DatabaseKeyError::IncorrectKey) => ImportError::WrongPassword {
            format: Format::Kdbx,
            key_file,
        },
        DatabaseOpenError::Key(DatabaseKeyError::EmptyKey) => {
            ImportError::NeedsPassword(Format::Kdbx)
        }
        DatabaseOpenError::Key(e) => {
            ImportError::Io(format!("the key file could not be read: {e}"))
        }
        DatabaseOpenError::UnexpectedEof => malformed("payload", "the file ends early"),
        DatabaseOpenError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            malformed("payload", "the file ends early")
        }
        DatabaseOpenError::Io(e) => malformed("payload", e.to_string()),
        DatabaseOpenError::VersionParse(e) => malformed("header", e.to_string()),
        DatabaseOpenError::UnsupportedVersion => malformed(
            "header",
            "this KeePass file version is not supported (KDBX 3.1 and 4.x are)",
        ),
        DatabaseOpenError::Cryptography(e) => malformed(
            "encrypted payload",
            format!("{e} (the file is damaged or truncated)"),
        ),
        DatabaseOpenError::Format(e) => format_error(&e),
        e => malformed("payload", e.to_string()),
    }
}

fn format_error(e: &DatabaseFormatError) -> ImportError {
    use keepass::error::{Kdbx3OpenError, Kdbx4OpenError};
    let why = e.to_string();
    let at = match e {
        DatabaseFormatError::Kdbx3(Kdbx3OpenError::OuterHeader(_))
        | DatabaseFormatError::Kdbx4(
            Kdbx4OpenError::OuterHeader(_) | Kdbx4OpenError::HeaderHashMismatch,
        ) => "header".to_owned(),
        DatabaseFormatError::Kdbx3(Kdbx3OpenError::BlockHashMismatch(i)) => {
            format!("payload block {i}")
        }
        DatabaseFormatError::Kdbx4(Kdbx4OpenError::InnerHeader(_)) => "inner header".into(),
        DatabaseFormatError::Kdbx4(Kdbx4OpenError::BlockStream(_)) => "encrypted payload".into(),
        DatabaseFormatError::Kdbx3(Kdbx3OpenError::Xml(_))
        | DatabaseFormatError::Kdbx4(Kdbx4OpenError::Xml(_)) => "inner XML".into(),
        _ => "payload".into(),
    };
    malformed(&at, why)
}

fn read(db: &Database, source: &Source<'_>) -> Parsed {
    let total = u64::try_from(db.num_entries()).unwrap_or(u64::MAX);
    (source.progress)(0, total);
    let bin = db.meta.recyclebin_uuid;
    let mut parsed = Parsed::default();
    let mut done = 0u64;
    let mut path = Vec::new();
    walk(&db.root(), bin, &mut path, None, &mut parsed, &mut |n| {
        done += n;
        (source.progress)(done, total);
    });
    parsed
}

/// Visits `group` and its subgroups; `path` holds the group names from the
/// root, `bin_at` the index in it of the Recycle Bin when under it.
fn walk<'a>(
    group: &GroupRef<'a>,
    bin: Option<uuid::Uuid>,
    path: &mut Vec<String>,
    bin_at: Option<usize>,
    parsed: &mut Parsed,
    tick: &mut dyn FnMut(u64),
) {
    let bin_at =
        bin_at.or((!path.is_empty() && bin == Some(group.id().uuid())).then_some(path.len()));
    path.push(group.name.clone());
    let mut entries: Vec<EntryRef<'_>> = group.entries().collect();
    entries.sort_by_key(|e| e.get_title().unwrap_or("").to_owned());
    for entry in &entries {
        let kp = entry_of(entry, true);
        let groups: Vec<&str> = path.iter().map(String::as_str).collect();
        let title = entry.get_title().unwrap_or("");
        match map_entry(&kp, &place(&groups, bin_at, title)) {
            Ok(item) => parsed.items.push(item),
            Err(p) => parsed.problems.push(p),
        }
        tick(1);
    }
    let mut groups: Vec<GroupRef<'_>> = group.groups().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    for sub in &groups {
        walk(sub, bin, path, bin_at, parsed, tick);
    }
    path.pop();
}

fn entry_of(entry: &EntryRef<'_>, with_history: bool) -> KpEntry {
    let mut keys: Vec<&String> = entry.fields.keys().collect();
    keys.sort();
    let strings = keys
        .into_iter()
        .filter_map(|k| {
            entry.fields.get(k).map(|v| KpString {
                key: k.clone(),
                value: Zeroizing::new(v.get().clone()),
                protected: v.is_protected(),
            })
        })
        .collect();
    let mut attachments: Vec<KpAttachment> = entry
        .attachments_named()
        .map(|(name, a)| KpAttachment {
            name: name.to_owned(),
            data: Some(Zeroizing::new(a.get().clone())),
        })
        .collect();
    attachments.sort_by(|a, b| a.name.cmp(&b.name));
    let secs = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.and_utc().timestamp());
    let history = if with_history {
        let n = entry.history.as_ref().map_or(0, |h| h.get_entries().len());
        (0..n)
            .filter_map(|i| entry.historical(i))
            .map(|old| entry_of(&old, false))
            .collect()
    } else {
        Vec::new()
    };
    KpEntry {
        uuid: Some(entry.id().uuid().hyphenated().to_string()),
        strings,
        tags: entry.tags.clone(),
        created: secs(entry.times.creation),
        modified: secs(entry.times.last_modification),
        expires: (entry.times.expires == Some(true))
            .then(|| entry.times.expiry.and_utc().timestamp()),
        attachments,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::super::keepass_entry::fixture::{
        PASSWORD, bytes, check_against_show, check_details, field, item, run,
    };
    use super::*;
    use proptest::prelude::*;

    fn open(name: &str, password: Option<&str>, key_file: Option<&[u8]>) -> Result<Parsed> {
        run(parse, name, &bytes(name), password, key_file)
    }

    #[test]
    fn kdbx31_made_by_keepassxc() {
        let parsed = open("kdbx31.kdbx", Some(PASSWORD), None).expect("opens");
        check_against_show(&parsed, "kdbx31.show", true);
        check_details(&parsed, true);
        assert!(parsed.problems.is_empty() && parsed.notes.is_empty());
    }

    #[test]
    fn kdbx4_made_by_keepassxc() {
        let parsed = open("kdbx4.kdbx", Some(PASSWORD), None).expect("opens");
        check_against_show(&parsed, "kdbx4.show", true);
        check_details(&parsed, true);
    }

    /// KDBX 4 with every KDF (Argon2id, Argon2d, AES-KDF) and cipher
    /// (AES-256, ChaCha20, Twofish): the same entries as kdbx4.kdbx.
    #[test]
    fn kdbx4_kdf_and_cipher_variants() {
        for name in [
            "kdbx4-argon2id-aes256.kdbx",
            "kdbx4-argon2d-chacha20.kdbx",
            "kdbx4-argon2id-twofish.kdbx",
            "kdbx4-aeskdf-chacha20.kdbx",
        ] {
            let parsed = open(name, Some(PASSWORD), None).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_against_show(&parsed, "kdbx4.show", true);
            check_details(&parsed, true);
        }
    }

    #[test]
    fn wrong_or_missing_password() {
        for name in ["kdbx31.kdbx", "kdbx4.kdbx", "kdbx4-argon2id-twofish.kdbx"] {
            assert!(
                matches!(
                    open(name, Some("not the password"), None),
                    Err(ImportError::WrongPassword {
                        format: Format::Kdbx,
                        key_file: false
                    })
                ),
                "{name}"
            );
            assert!(matches!(
                open(name, None, None),
                Err(ImportError::NeedsPassword(Format::Kdbx))
            ));
        }
    }

    #[test]
    fn key_file_database_opens_only_with_its_key_file() {
        let key = bytes("keyfile.keyx");
        let parsed = open("keyfile.kdbx", Some(PASSWORD), Some(&key)).expect("opens");
        let shown = super::super::keepass_entry::fixture::shown("keyfile.show");
        let it = item(&parsed, "Key File Entry");
        assert_eq!(field(it, "password"), Some(shown[0].get("Password")));
        assert_eq!(field(it, "password"), Some("keyfile-entry-password"));
        let r = open("keyfile.kdbx", Some(PASSWORD), None);
        assert!(
            matches!(
                r,
                Err(ImportError::WrongPassword {
                    key_file: false,
                    ..
                })
            ),
            "{:?}",
            r.map(|_| ())
        );
        let other_key = b"a different key file";
        assert!(matches!(
            open("keyfile.kdbx", Some(PASSWORD), Some(other_key)),
            Err(ImportError::WrongPassword { key_file: true, .. })
        ));
        assert!(matches!(
            open("keyfile.kdbx", None, Some(&key)),
            Err(ImportError::WrongPassword { key_file: true, .. })
        ));
    }

    fn malformed_kdbx(r: Result<Parsed>) -> String {
        match r {
            Err(ImportError::Malformed {
                format: Format::Kdbx,
                at,
                ..
            }) => at,
            Err(e) => panic!("not Malformed: {e}"),
            Ok(_) => panic!("parsed"),
        }
    }

    #[test]
    fn truncated_and_garbage_are_malformed() {
        let full = bytes("kdbx4-argon2id-aes256.kdbx");
        for len in [0, 4, 8, 12, 100, 300, full.len() / 2, full.len() - 1] {
            let r = run(parse, "t.kdbx", &full[..len], Some(PASSWORD), None);
            assert!(!malformed_kdbx(r).is_empty(), "{len}");
        }
        let r = run(
            parse,
            "g.kdbx",
            b"hello, not a database",
            Some(PASSWORD),
            None,
        );
        assert_eq!(malformed_kdbx(r), "header");
        let full3 = bytes("kdbx31.kdbx");
        let r = run(
            parse,
            "t.kdbx",
            &full3[..full3.len() - 10],
            Some(PASSWORD),
            None,
        );
        malformed_kdbx(r);
    }

    #[test]
    fn detects_kdbx() {
        assert_eq!(
            super::super::detect_bytes(&bytes("kdbx31.kdbx")),
            Some(Format::Kdbx)
        );
        assert_eq!(
            super::super::detect_bytes(&bytes("kdbx4.kdbx")),
            Some(Format::Kdbx)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any truncation or byte flip of a database is an error, never a
        /// panic (a flip in the payload fails its HMAC or hash).
        #[test]
        fn damaged_files_never_panic(cut in 0usize..1400, flip in 0usize..2000, bit in 0u8..8) {
            let full = bytes("kdbx4-argon2id-aes256.kdbx");
            let cut = cut.min(full.len());
            let r = run(parse, "t.kdbx", &full[..cut], Some(PASSWORD), None);
            let ok = matches!(r, Err(ImportError::Malformed { format: Format::Kdbx, .. }));
            prop_assert!(ok, "cut at {}", cut);
            let mut flipped = full.clone();
            let i = flip % flipped.len();
            flipped[i] ^= 1 << bit;
            let r = run(parse, "t.kdbx", &flipped, Some(PASSWORD), None);
            prop_assert!(r.is_err());
        }
    }
}
