//! OpenK's own archive (`openk export --format openk`): every item with
//! its history, times and id, sealed with the archive's passphrase.
//! The layout and its plaintext are described in `crate::export::openk`
//! and docs/security.md ("Export archives").

use zeroize::Zeroizing;

use super::{Format, ImportError, ImportItem, Parsed, Result, Source};
use crate::crypto::archive::{self, ArchiveError, ArchiveReader};
use crate::engine::ItemDraft;
use crate::export::openk::{ArchiveItem, ArchiveVersion, Line, SCHEMA_VERSION};

/// Whether the bytes start with the archive's magic.
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    archive::is_archive(bytes)
}

fn malformed(at: impl Into<String>, why: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format: Format::Openk,
        at: at.into(),
        why: why.into(),
    }
}

fn from_archive(e: ArchiveError) -> ImportError {
    match e {
        ArchiveError::WrongPassphrase => ImportError::WrongPassword {
            format: Format::Openk,
            key_file: false,
        },
        ArchiveError::Malformed { at, why } => malformed(format!("byte {at}"), why),
    }
}

fn draft(v: ArchiveVersion) -> (ItemDraft, i64, i64, Option<i64>) {
    (
        ItemDraft {
            kind: v.kind,
            name: v.name,
            fields: v.fields,
            tags: v.tags,
            folder: v.folder,
            favorite: v.favorite,
        },
        v.created_at,
        v.updated_at,
        v.trashed_at,
    )
}

fn import_item(item: ArchiveItem, n: u64) -> Result<ImportItem> {
    let at = format!("item {n}");
    let mut versions = item.versions;
    let Some(current) = versions.pop() else {
        return Err(malformed(at, "an item without any version"));
    };
    let (draft_now, created, updated, trashed) = draft(current);
    let history = versions
        .into_iter()
        .map(|v| {
            let (d, _, updated, _) = draft(v);
            (d, Some(updated))
        })
        .collect();
    let mut out = ImportItem::new(draft_now, at);
    out.created_at = Some(created);
    out.updated_at = Some(updated);
    out.trashed = trashed.is_some();
    out.history = history;
    out.source_id = Some(item.id.to_string());
    Ok(out)
}

/// Decrypts and reads an archive with `source.password`.
///
/// # Errors
/// [`ImportError::NeedsPassword`] without a password,
/// [`ImportError::WrongPassword`], [`ImportError::Malformed`] (with the
/// byte or item where reading stopped) for anything altered or cut short.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let password = source
        .password
        .ok_or(ImportError::NeedsPassword(Format::Openk))?;
    let mut reader = ArchiveReader::open(source.bytes, password).map_err(from_archive)?;
    let mut parsed = Parsed::default();
    // Plaintext not yet split into lines: at most one record and a chunk.
    let mut pending: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut expected = 0u64;
    let mut header_seen = false;
    let mut end: Option<u64> = None;
    let mut n = 0u64;
    let mut handle = |line: &[u8], parsed: &mut Parsed| -> Result<()> {
        let at = if header_seen {
            format!("item {}", n + 1)
        } else {
            "header".to_owned()
        };
        if end.is_some() {
            return Err(malformed(at, "data after the end record"));
        }
        let record: Line =
            serde_json::from_slice(line).map_err(|e| malformed(at.clone(), e.to_string()))?;
        match record {
            Line::Header(h) if !header_seen => {
                if h.schema != SCHEMA_VERSION {
                    return Err(malformed(
                        at,
                        format!(
                            "archive schema {} (this build reads {SCHEMA_VERSION}): use a newer openk",
                            h.schema
                        ),
                    ));
                }
                header_seen = true;
                expected = h.items;
                (source.progress)(0, expected);
            }
            Line::Item(item) if header_seen => {
                n += 1;
                parsed.items.push(import_item(item, n)?);
                (source.progress)(n, expected.max(n));
            }
            Line::End(e) if header_seen => {
                if e.items != n {
                    return Err(malformed(
                        "end",
                        format!("the archive says {} items but holds {n}", e.items),
                    ));
                }
                end = Some(e.items);
            }
            _ => return Err(malformed(at, "records out of order")),
        }
        Ok(())
    };
    while let Some(chunk) = reader.next_chunk() {
        let chunk = chunk.map_err(from_archive)?;
        let mut rest: &[u8] = &chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            if pending.is_empty() {
                handle(&rest[..nl], &mut parsed)?;
            } else {
                pending.extend_from_slice(&rest[..nl]);
                let line = std::mem::take(&mut *pending);
                let line = Zeroizing::new(line);
                handle(&line, &mut parsed)?;
            }
            rest = &rest[nl + 1..];
        }
        pending.extend_from_slice(rest);
    }
    if !pending.is_empty() {
        return Err(malformed("end", "the last record is incomplete"));
    }
    if end.is_none() {
        return Err(malformed("end", "the end record is missing"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::engine::model::{Field, FieldKind, ItemKind};
    use crate::engine::{KdfParams, SecretString};
    use crate::export::openk::{ArchiveLines, Header};

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn kdf() -> KdfParams {
        KdfParams::from_mib(1, 1, 1)
    }

    fn seal(items: &[ArchiveItem], pass: &str) -> Vec<u8> {
        let header = Header {
            schema: SCHEMA_VERSION,
            exported_at: 1,
            items: items.len() as u64,
            vault: None,
        };
        let mut lines = ArchiveLines::begin(Vec::new(), &pw(pass), &kdf(), &header).expect("begin");
        for item in items {
            lines.item(item).expect("item");
        }
        lines.finish().expect("finish")
    }

    fn parse_with(bytes: &[u8], pass: Option<&str>) -> Result<Parsed> {
        let pass = pass.map(pw);
        let progress = |_: u64, _: u64| {};
        parse(&Source {
            path: std::path::Path::new("x.openk"),
            bytes,
            password: pass.as_ref(),
            key_file: None,
            progress: &progress,
        })
    }

    fn field_kind() -> impl Strategy<Value = FieldKind> {
        prop_oneof![
            Just(FieldKind::Text),
            Just(FieldKind::Secret),
            Just(FieldKind::Url),
            Just(FieldKind::Email),
            Just(FieldKind::Totp),
            Just(FieldKind::Multiline),
            Just(FieldKind::File),
        ]
    }

    fn field() -> impl Strategy<Value = Field> {
        (
            "\\PC{1,12}",
            prop_oneof!["", "\\PC{0,40}", "[a-z\n\t é😀]{0,60}"],
            field_kind(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(label, value, kind, hidden, bytes)| {
                use base64::Engine as _;
                let value = if kind == FieldKind::File {
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                } else {
                    value
                };
                let mut f = Field::new(&label, value, kind);
                f.hidden = hidden;
                f
            })
    }

    fn version() -> impl Strategy<Value = ArchiveVersion> {
        (
            (0..ItemKind::EVERY.len()).prop_map(|i| ItemKind::EVERY[i]),
            "\\PC{1,20}",
            proptest::collection::vec(field(), 0..5),
            proptest::collection::vec("\\PC{1,8}", 0..3),
            proptest::option::of("[A-Za-zé/ ]{1,10}"),
            any::<bool>(),
            (0i64..4_000_000_000_000, 0i64..1_000_000),
            proptest::option::of(0i64..4_000_000_000_000),
        )
            .prop_map(
                |(kind, name, fields, tags, folder, favorite, (created, later), trashed)| {
                    ArchiveVersion {
                        version: 0,
                        kind,
                        name,
                        fields,
                        tags,
                        folder,
                        favorite,
                        created_at: created,
                        updated_at: created + later,
                        trashed_at: trashed,
                    }
                },
            )
    }

    fn item() -> impl Strategy<Value = ArchiveItem> {
        (
            any::<u128>(),
            "\\PC{1,10}",
            proptest::collection::vec(version(), 1..4),
        )
            .prop_map(|(id, vault, mut versions)| {
                for (i, v) in versions.iter_mut().enumerate() {
                    v.version = i as u64 + 1;
                }
                ArchiveItem {
                    id: Uuid::from_u128(id),
                    vault,
                    versions,
                }
            })
    }

    fn same_draft(d: &ItemDraft, v: &ArchiveVersion) {
        assert_eq!(d.kind, v.kind);
        assert_eq!(d.name, v.name);
        assert_eq!(d.fields, v.fields);
        assert_eq!(d.tags, v.tags);
        assert_eq!(d.folder, v.folder);
        assert_eq!(d.favorite, v.favorite);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever goes into an archive comes back out of the parser:
        /// every item, version, field (attachments too), tag, folder,
        /// time, trash state and id.
        #[test]
        fn archive_round_trips_every_item(items in proptest::collection::vec(item(), 0..12)) {
            let bytes = seal(&items, "pass phrase");
            prop_assert_eq!(crate::import::detect_bytes(&bytes), Some(Format::Openk));
            let parsed = parse_with(&bytes, Some("pass phrase")).expect("parse");
            prop_assert!(parsed.problems.is_empty());
            prop_assert_eq!(parsed.items.len(), items.len());
            for (got, want) in parsed.items.iter().zip(&items) {
                let (current, older) = want.versions.split_last().expect("a version");
                same_draft(&got.draft, current);
                prop_assert_eq!(got.source_id.clone(), Some(want.id.to_string()));
                prop_assert_eq!(got.created_at, Some(current.created_at));
                prop_assert_eq!(got.updated_at, Some(current.updated_at));
                prop_assert_eq!(got.trashed, current.trashed_at.is_some());
                prop_assert_eq!(got.history.len(), older.len());
                for ((d, at), v) in got.history.iter().zip(older) {
                    same_draft(d, v);
                    prop_assert_eq!(*at, Some(v.updated_at));
                }
            }
        }
    }

    fn sample() -> Vec<ArchiveItem> {
        (0..5)
            .map(|i| ArchiveItem {
                id: Uuid::from_u128(i),
                vault: "Personal".into(),
                versions: vec![ArchiveVersion {
                    version: 1,
                    kind: ItemKind::Login,
                    name: format!("item {i} {}", "x".repeat(40_000)),
                    fields: vec![Field::new("password", "hunter2", FieldKind::Secret)],
                    tags: Vec::new(),
                    folder: None,
                    favorite: false,
                    created_at: 1,
                    updated_at: 2,
                    trashed_at: None,
                }],
            })
            .collect()
    }

    #[test]
    fn wrong_or_missing_passphrase_is_said() {
        let bytes = seal(&sample(), "right");
        assert!(matches!(
            parse_with(&bytes, Some("wrong")),
            Err(ImportError::WrongPassword {
                format: Format::Openk,
                key_file: false
            })
        ));
        assert!(matches!(
            parse_with(&bytes, None),
            Err(ImportError::NeedsPassword(Format::Openk))
        ));
    }

    #[test]
    fn truncated_or_tampered_archives_are_malformed_with_a_position() {
        let bytes = seal(&sample(), "right");
        assert!(bytes.len() > archive::BODY_START + 2 * archive::CHUNK);
        for (what, damaged) in [
            ("cut", bytes[..bytes.len() - 20].to_vec()),
            (
                "cut at a chunk",
                bytes[..archive::BODY_START + archive::CHUNK + 16].to_vec(),
            ),
            ("flipped", {
                let mut b = bytes.clone();
                b[archive::BODY_START + 100] ^= 1;
                b
            }),
        ] {
            match parse_with(&damaged, Some("right")) {
                Err(ImportError::Malformed {
                    format: Format::Openk,
                    at,
                    ..
                }) => {
                    assert!(at.starts_with("byte "), "{what}: {at}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(crate::import::detect_bytes(b"not an archive"), None);
    }
}
