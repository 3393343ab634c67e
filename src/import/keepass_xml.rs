//! KeePassXC's XML export (KeePass 2 XML), read with quick-xml and mapped
//! as in `keepass_entry`. Values are plain in an export (their
//! `ProtectInMemory` flag makes them secret fields). A KDBX 4 database's
//! export names attachments (`<Value Ref="0"/>`) without carrying them:
//! they are reported in [`Parsed::notes`].

use std::collections::HashMap;
use std::io::Read as _;

use base64::Engine as _;
use quick_xml::events::Event;
use zeroize::Zeroizing;

use super::keepass_entry::{KpAttachment, KpEntry, KpString, map_entry, place};
use super::{Format, ImportError, Parsed, Result, Source};
use crate::engine::MAX_FILE;

/// Seconds from 0001-01-01 (KDBX 4 XML times) to the Unix epoch.
const EPOCH_FROM_YEAR_1: i64 = 62_135_596_800;

/// Whether `bytes` look like a KeePass XML file (its root element within
/// the first kilobyte).
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let head = String::from_utf8_lossy(head);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with('<') && head.contains("<KeePassFile>")
}

fn malformed(at: String, why: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format: Format::KeepassxcXml,
        at,
        why: why.into(),
    }
}

/// `line L, byte B` of a byte offset.
fn position(bytes: &[u8], offset: usize) -> String {
    let offset = offset.min(bytes.len());
    let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    format!("line {line}, byte {offset}")
}

/// An element with its attributes, text and children. Texts are wiped on
/// drop: they hold passwords.
#[derive(Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: Zeroizing<String>,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn text_of(&self, name: &str) -> &str {
        self.child(name).map_or("", |c| c.text.as_str())
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the whole document into a tree.
fn read_tree(bytes: &[u8]) -> Result<Node> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        malformed(
            position(bytes, e.valid_up_to()),
            "the file is not UTF-8 text",
        )
    })?;
    let mut reader = quick_xml::Reader::from_str(text);
    let at = |pos: u64| position(bytes, usize::try_from(pos).unwrap_or(usize::MAX));
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(at(reader.error_position()), e.to_string()))?;
        match event {
            Event::Start(e) => {
                let node =
                    element(&e).map_err(|why| malformed(at(reader.buffer_position()), why))?;
                stack.push(node);
            }
            Event::Empty(e) => {
                let node =
                    element(&e).map_err(|why| malformed(at(reader.buffer_position()), why))?;
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop();
                match (node, stack.last_mut()) {
                    (Some(node), Some(parent)) => parent.children.push(node),
                    _ => {
                        return Err(malformed(
                            at(reader.buffer_position()),
                            "a closing tag without its opening tag",
                        ));
                    }
                }
            }
            Event::Text(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r).map(str::to_owned),
                    Err(e) => {
                        return Err(malformed(at(reader.buffer_position()), e.to_string()));
                    }
                };
                let Some(resolved) = resolved else {
                    return Err(malformed(
                        at(reader.buffer_position()),
                        format!("unknown entity &{};", &*r),
                    ));
                };
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() > 1 {
        let open = stack.last().map_or("", |n| n.name.as_str()).to_owned();
        return Err(malformed(
            position(bytes, bytes.len()),
            format!("the file ends inside <{open}> (truncated?)"),
        ));
    }
    let doc = stack.pop().unwrap_or_default();
    doc.children
        .into_iter()
        .find(|c| c.name == "KeePassFile")
        .ok_or_else(|| {
            malformed(
                "line 1".into(),
                "no <KeePassFile> element: not a KeePass XML export",
            )
        })
}

fn element(e: &quick_xml::events::BytesStart<'_>) -> std::result::Result<Node, String> {
    let name = AsRef::<str>::as_ref(&e.name()).to_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        attrs.push((AsRef::<str>::as_ref(&a.key).to_owned(), value.into_owned()));
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

/// Reads a KeePass XML export.
///
/// # Errors
/// [`ImportError::Malformed`] (with the line and byte) when the file is not
/// well-formed XML or not a KeePass export.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let file = read_tree(source.bytes)?;
    let root = file
        .child("Root")
        .and_then(|r| r.child("Group"))
        .ok_or_else(|| {
            malformed(
                "<Root>".into(),
                "the export has no root group (<Root><Group>)",
            )
        })?;
    let meta = file.child("Meta");
    let bin = meta
        .map(|m| m.text_of("RecycleBinUUID").trim().to_owned())
        .filter(|u| !u.is_empty() && u != "AAAAAAAAAAAAAAAAAAAAAA==");
    let binaries = meta.map_or_else(HashMap::new, binaries);
    let total = count_entries(root);
    (source.progress)(0, total);
    let mut cx = Walk {
        bin,
        binaries,
        parsed: Parsed::default(),
        done: 0,
        total,
        progress: source.progress,
    };
    let mut path = Vec::new();
    cx.group(root, &mut path, None);
    Ok(cx.parsed)
}

fn count_entries(group: &Node) -> u64 {
    let own = u64::try_from(group.children("Entry").count()).unwrap_or(0);
    own + group.children("Group").map(count_entries).sum::<u64>()
}

/// The attachments an export carries in `<Meta><Binaries>` (KDBX 3.1
/// databases' exports), by `ID`. An attachment whose decoded size is over
/// the limit is cut at the limit + 1 byte (it is reported, not imported).
fn binaries(meta: &Node) -> HashMap<String, Option<Zeroizing<Vec<u8>>>> {
    let mut out = HashMap::new();
    let Some(list) = meta.child("Binaries") else {
        return out;
    };
    for b in list.children("Binary") {
        let Some(id) = b.attr("ID") else { continue };
        let data = decode_binary(&b.text, b.attr("Compressed") == Some("True"));
        out.insert(id.to_owned(), data);
    }
    out
}

fn decode_binary(text: &str, compressed: bool) -> Option<Zeroizing<Vec<u8>>> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(clean.as_bytes())
            .ok()?,
    );
    if !compressed {
        return Some(raw);
    }
    let mut out = Zeroizing::new(Vec::new());
    let limit = u64::try_from(MAX_FILE).unwrap_or(u64::MAX) + 1;
    flate2::read::GzDecoder::new(raw.as_slice())
        .take(limit)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn uuid_of(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    uuid::Uuid::from_slice(&bytes)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A KeePass XML time: ISO 8601 (`2026-12-08T01:04:37Z`, KDBX 3.1) or
/// base64 of little-endian seconds since year 1 (KDBX 4); Unix seconds.
fn time_of(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.contains('-') {
        return chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|d| d.timestamp());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    let secs = i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    secs.checked_sub(EPOCH_FROM_YEAR_1)
}

struct Walk<'a> {
    bin: Option<String>,
    binaries: HashMap<String, Option<Zeroizing<Vec<u8>>>>,
    parsed: Parsed,
    done: u64,
    total: u64,
    progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl Walk<'_> {
    fn group(&mut self, group: &Node, path: &mut Vec<String>, bin_at: Option<usize>) {
        let is_bin = !path.is_empty()
            && self
                .bin
                .as_deref()
                .is_some_and(|b| b == group.text_of("UUID").trim());
        let bin_at = bin_at.or(is_bin.then_some(path.len()));
        path.push(group.text_of("Name").to_owned());
        for e in group.children("Entry") {
            let mut missing = Vec::new();
            let entry = self.entry(e, true, &mut missing);
            let groups: Vec<&str> = path.iter().map(String::as_str).collect();
            let title = entry
                .strings
                .iter()
                .find(|s| s.key == "Title")
                .map_or("", |s| s.value.as_str());
            let place = place(&groups, bin_at, title);
            if !missing.is_empty() {
                missing.sort();
                missing.dedup();
                self.parsed.notes.push(format!(
                    "{}: attachment{} {} not in the XML export (KeePassXC's XML export leaves \
                     attachments out); import the .kdbx file to keep them",
                    place.at,
                    if missing.len() == 1 { "" } else { "s" },
                    missing
                        .iter()
                        .map(|m| format!("{m:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            match map_entry(&entry, &place) {
                Ok(item) => self.parsed.items.push(item),
                Err(p) => self.parsed.problems.push(p),
            }
            self.done += 1;
            (self.progress)(self.done, self.total);
        }
        for g in group.children("Group") {
            self.group(g, path, bin_at);
        }
        path.pop();
    }

    /// The entry; names of attachments it references but the file lacks
    /// go to `missing` (the current version's and its history's).
    fn entry(&self, e: &Node, with_history: bool, missing: &mut Vec<String>) -> KpEntry {
        let strings = e
            .children("String")
            .map(|s| {
                let value = s.child("Value");
                let flag = |n: &str| value.and_then(|v| v.attr(n)) == Some("True");
                KpString {
                    key: s.text_of("Key").to_owned(),
                    value: Zeroizing::new(value.map_or_else(String::new, |v| v.text.to_string())),
                    protected: flag("ProtectInMemory") || flag("Protected"),
                }
            })
            .collect();
        let mut attachments = Vec::new();
        for b in e.children("Binary") {
            let name = b.text_of("Key").to_owned();
            let value = b.child("Value");
            let data = match value.and_then(|v| v.attr("Ref")) {
                Some(r) => self.binaries.get(r).cloned().flatten(),
                None => value
                    .filter(|v| !v.text.trim().is_empty())
                    .and_then(|v| decode_binary(&v.text, v.attr("Compressed") == Some("True"))),
            };
            if data.is_none() {
                missing.push(name.clone());
            }
            attachments.push(KpAttachment { name, data });
        }
        let times = e.child("Times");
        let time = |n: &str| times.and_then(|t| time_of(t.text_of(n)));
        let expires = times
            .is_some_and(|t| t.text_of("Expires").trim().eq_ignore_ascii_case("true"))
            .then(|| time("ExpiryTime"))
            .flatten();
        let history = if with_history {
            e.child("History")
                .map(|h| {
                    h.children("Entry")
                        .map(|old| self.entry(old, false, missing))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        KpEntry {
            uuid: uuid_of(e.text_of("UUID")),
            strings,
            tags: vec![e.text_of("Tags").to_owned()],
            created: time("CreationTime"),
            modified: time("LastModificationTime"),
            expires,
            attachments,
            history,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::keepass_entry::fixture::{
        bytes, check_against_show, check_details, item, run,
    };
    use super::*;
    use proptest::prelude::*;

    fn xml(name: &str) -> Result<Parsed> {
        run(parse, name, &bytes(name), None, None)
    }

    /// KeePassXC's exports (of a KDBX 3.1 and of a KDBX 4 database alike)
    /// name attachments without carrying them: the rest is imported and a
    /// note says which are missing, per entry.
    #[test]
    fn exports_report_missing_attachments() {
        for (file, show) in [("kdbx31.xml", "kdbx31.show"), ("kdbx4.xml", "kdbx4.show")] {
            let parsed = xml(file).expect("parses");
            check_against_show(&parsed, show, true);
            check_details(&parsed, false);
            assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
            assert!(
                parsed.notes[0].starts_with("Passwords/Web/GitHub: attachment \"readme.txt\""),
                "{}",
                parsed.notes[0]
            );
            let gh = item(&parsed, "Web/GitHub");
            assert!(gh.unmapped.iter().any(|u| u.contains("readme.txt")));
        }
    }

    /// KeePass 2's own XML export carries attachments in `<Meta><Binaries>`
    /// (gzipped when `Compressed="True"`), and older files inline them.
    #[test]
    fn carried_attachments_are_read() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"zipped bytes").expect("gzip");
        let zipped = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
        let plain = base64::engine::general_purpose::STANDARD.encode(b"plain bytes");
        let doc = format!(
            "<?xml version=\"1.0\"?><KeePassFile><Meta><Binaries>\
             <Binary ID=\"0\" Compressed=\"True\">{zipped}</Binary>\
             <Binary ID=\"1\">{plain}</Binary></Binaries></Meta><Root><Group><Name>R</Name>\
             <Entry><String><Key>Title</Key><Value>T</Value></String>\
             <Binary><Key>a.gz.txt</Key><Value Ref=\"0\"/></Binary>\
             <Binary><Key>b.txt</Key><Value Ref=\"1\"/></Binary>\
             <Binary><Key>c.txt</Key><Value>{plain}</Value></Binary>\
             </Entry></Group></Root></KeePassFile>"
        );
        let parsed = run(parse, "k.xml", doc.as_bytes(), None, None).expect("parses");
        assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
        let it = item_at(&parsed, "R/T");
        let got = |l: &str| {
            it.draft
                .fields
                .iter()
                .find(|f| f.label == l)
                .map(|f| f.value.expose().to_owned())
        };
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        assert_eq!(got("a.gz.txt"), Some(b64(b"zipped bytes")));
        assert_eq!(got("b.txt"), Some(b64(b"plain bytes")));
        assert_eq!(got("c.txt"), Some(b64(b"plain bytes")));
    }

    fn item_at<'a>(p: &'a Parsed, at: &str) -> &'a crate::import::ImportItem {
        p.items.iter().find(|i| i.at == at).expect("item")
    }

    /// The same database read from its KDBX and from its XML export gives
    /// the same items (ids, names, fields), attachments aside.
    #[test]
    fn same_items_as_the_kdbx() {
        let from_xml = xml("kdbx31.xml").expect("xml");
        let from_kdbx = run(
            super::super::kdbx::parse,
            "kdbx31.kdbx",
            &bytes("kdbx31.kdbx"),
            Some(super::super::keepass_entry::fixture::PASSWORD),
            None,
        )
        .expect("kdbx");
        let key = |p: &Parsed| {
            let mut v: Vec<_> = p
                .items
                .iter()
                .map(|i| {
                    (
                        i.source_id.clone(),
                        i.draft.name.clone(),
                        i.draft.folder.clone(),
                        i.draft
                            .fields
                            .iter()
                            // KeePassXC's XML export has no attachments.
                            .filter(|f| f.kind != crate::engine::model::FieldKind::File)
                            .map(|f| (f.label.clone(), f.value.expose().to_owned()))
                            .collect::<Vec<_>>(),
                        i.created_at,
                        i.updated_at,
                        i.trashed,
                        i.history.len(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(key(&from_xml), key(&from_kdbx));
    }

    fn malformed_at(r: Result<Parsed>) -> String {
        match r {
            Err(ImportError::Malformed {
                format: Format::KeepassxcXml,
                at,
                ..
            }) => at,
            Err(e) => panic!("not Malformed: {e}"),
            Ok(_) => panic!("parsed"),
        }
    }

    #[test]
    fn truncated_and_garbage_are_malformed_with_a_position() {
        let full = bytes("kdbx4.xml");
        let at = malformed_at(run(parse, "t.xml", &full[..full.len() / 2], None, None));
        assert!(at.starts_with("line "), "{at}");
        let at = malformed_at(run(parse, "g.xml", b"<a><b></a>", None, None));
        assert!(at.starts_with("line 1"), "{at}");
        malformed_at(run(parse, "g.xml", b"\xff\xfe garbage", None, None));
        malformed_at(run(parse, "g.xml", b"", None, None));
        malformed_at(run(
            parse,
            "g.xml",
            b"<KeePassFile></KeePassFile>",
            None,
            None,
        ));
    }

    #[test]
    fn detects_keepass_xml() {
        assert_eq!(
            super::super::detect_bytes(&bytes("kdbx4.xml")),
            Some(Format::KeepassxcXml)
        );
        assert_eq!(super::super::detect_bytes(b"<html></html>"), None);
    }

    #[test]
    fn times_in_both_forms() {
        assert_eq!(time_of("1970-01-01T00:00:10Z"), Some(10));
        // KDBX 4: base64 of little-endian seconds since 0001-01-01.
        let secs = (EPOCH_FROM_YEAR_1 + 10).to_le_bytes();
        let b64 = base64::engine::general_purpose::STANDARD.encode(secs);
        assert_eq!(time_of(&b64), Some(10));
        assert_eq!(time_of("nonsense"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn truncations_never_panic(cut in 0usize..30_000) {
            let full = bytes("kdbx31.xml");
            let cut = cut.min(full.len());
            let r = run(parse, "t.xml", &full[..cut], None, None);
            if cut < full.len() - 20 {
                let ok = matches!(r, Err(ImportError::Malformed { format: Format::KeepassxcXml, .. }));
            prop_assert!(ok, "cut at {}", cut);
            }
        }
    }
}
