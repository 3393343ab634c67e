//! The KeePass entry as both KeePass importers read it (a KDBX database
//! through the `keepass` crate, a KeePassXC XML export through quick-xml),
//! and its one mapping to an OpenK item (docs/import.md, "KeePass").

use zeroize::Zeroizing;

use super::{ImportItem, Problem};
use crate::crypto::totp::Totp;
use crate::engine::model::{Field, FieldKind, ItemKind, label};
use crate::engine::{ItemDraft, MAX_FILE, check_draft};

/// A string attribute (`Title`, `Password`, `PIN`, …).
pub(crate) struct KpString {
    pub key: String,
    pub value: Zeroizing<String>,
    /// KeePass's "protect in memory" flag: kept as a secret field.
    pub protected: bool,
}

/// An attachment; `data` is `None` when the file names it without carrying
/// its bytes (a KDBX 4 database's XML export).
pub(crate) struct KpAttachment {
    pub name: String,
    pub data: Option<Zeroizing<Vec<u8>>>,
}

/// One KeePass entry (or one version of it in its history).
#[derive(Default)]
pub(crate) struct KpEntry {
    /// The UUID, hyphenated lower-case (`6ef42f76-773e-…`).
    pub uuid: Option<String>,
    pub strings: Vec<KpString>,
    /// The tags as KeePass split them (untrimmed, may hold spaces).
    pub tags: Vec<String>,
    /// Unix seconds.
    pub created: Option<i64>,
    pub modified: Option<i64>,
    /// Unix seconds of the expiry, when the entry expires.
    pub expires: Option<i64>,
    pub attachments: Vec<KpAttachment>,
    /// Earlier versions, in any order (they are sorted by time here).
    pub history: Vec<KpEntry>,
}

/// Where an entry is: its folder (group path below the root, without the
/// root's name), its full path for the report, and whether it is in the
/// Recycle Bin.
pub(crate) struct Place {
    pub folder: Option<String>,
    pub at: String,
    /// How a [`Problem`] names it: `entry Root/Web/GitHub`, `line 4`.
    pub problem_at: String,
    pub trashed: bool,
}

const TITLE: &str = "Title";
const USERNAME: &str = "UserName";
const PASSWORD: &str = "Password";
const URL: &str = "URL";
const NOTES: &str = "Notes";
const OTP: &str = "otp";
const TOTP_SEED: &str = "TOTP Seed";
const TOTP_SETTINGS: &str = "TOTP Settings";
/// The field an entry's expiry date goes to.
pub(crate) const EXPIRES: &str = "expires";

/// The OpenK item for a KeePass entry; a [`Problem`] when the result is not
/// an item OpenK accepts (e.g. a value over the size limit).
pub(crate) fn map_entry(entry: &KpEntry, place: &Place) -> Result<ImportItem, Problem> {
    let mut unmapped = Vec::new();
    let draft = draft_of(entry, place.folder.clone(), &mut unmapped);
    check_draft(&draft).map_err(|(_, why)| Problem {
        at: place.problem_at.clone(),
        why,
    })?;
    let mut history: Vec<(ItemDraft, Option<i64>)> = Vec::new();
    for old in &entry.history {
        let mut ignored = Vec::new();
        let old_draft = draft_of(old, place.folder.clone(), &mut ignored);
        // A version OpenK would refuse is left out of the history, said so.
        if check_draft(&old_draft).is_err() {
            unmapped.push(format!(
                "a history version of {} OpenK cannot store",
                old.modified
                    .and_then(rfc3339)
                    .unwrap_or_else(|| "unknown date".into())
            ));
            continue;
        }
        history.push((old_draft, old.modified.map(|s| s.saturating_mul(1000))));
    }
    history.sort_by_key(|(_, at)| *at);
    let mut item = ImportItem::new(draft, place.at.clone());
    item.created_at = entry.created.map(|s| s.saturating_mul(1000));
    item.updated_at = entry.modified.map(|s| s.saturating_mul(1000));
    item.trashed = place.trashed;
    item.history = history;
    item.source_id = entry.uuid.clone();
    item.unmapped = unmapped;
    Ok(item)
}

fn get<'a>(entry: &'a KpEntry, key: &str) -> Option<&'a KpString> {
    entry.strings.iter().find(|s| s.key == key)
}

fn value<'a>(entry: &'a KpEntry, key: &str) -> &'a str {
    get(entry, key).map_or("", |s| s.value.as_str())
}

/// Builds the draft; what could not be mapped is named in `unmapped`.
fn draft_of(entry: &KpEntry, folder: Option<String>, unmapped: &mut Vec<String>) -> ItemDraft {
    let mut fields = Fields::default();
    let username = value(entry, USERNAME);
    let password = value(entry, PASSWORD);
    let url = value(entry, URL);
    let kind = if username.is_empty() && password.is_empty() && url.is_empty() {
        ItemKind::Note
    } else {
        ItemKind::Login
    };
    fields.push(label::USERNAME, username, FieldKind::Text);
    fields.push(label::PASSWORD, password, FieldKind::Secret);
    fields.push(label::URL, url, FieldKind::Url);

    // TOTP: KeePassXC's `otp` attribute, else the legacy seed + settings.
    let mut consumed: Vec<&str> = Vec::new();
    if let Some(otp) = get(entry, OTP).filter(|s| !s.value.is_empty()) {
        match otp_uri(&otp.value) {
            Ok(uri) => {
                fields.push(label::TOTP, &uri, FieldKind::Totp);
                consumed.push(OTP);
                // KeePassXC keeps the legacy pair beside `otp` for old readers.
                consumed.extend([TOTP_SEED, TOTP_SETTINGS]);
            }
            Err(why) => unmapped.push(format!(
                "TOTP in attribute \"otp\" ({why}); kept as a secret field \"otp\""
            )),
        }
    } else if let Some(seed) = get(entry, TOTP_SEED).filter(|s| !s.value.is_empty()) {
        match legacy_totp(&seed.value, value(entry, TOTP_SETTINGS)) {
            Ok(uri) => {
                fields.push(label::TOTP, &uri, FieldKind::Totp);
                consumed.extend([TOTP_SEED, TOTP_SETTINGS]);
            }
            Err(why) => unmapped.push(format!(
                "TOTP in attributes \"TOTP Seed\" / \"TOTP Settings\" ({why}); kept as fields"
            )),
        }
    }

    for s in &entry.strings {
        let standard = [TITLE, USERNAME, PASSWORD, URL, NOTES];
        if standard.contains(&s.key.as_str()) || consumed.contains(&s.key.as_str()) {
            continue;
        }
        let kind = if s.protected || s.key == OTP || s.key == TOTP_SEED {
            FieldKind::Secret
        } else if s.value.contains('\n') {
            FieldKind::Multiline
        } else {
            FieldKind::Text
        };
        fields.push(&s.key, &s.value, kind);
    }

    if let Some(at) = entry.expires {
        match rfc3339(at) {
            Some(date) => fields.push(EXPIRES, &date, FieldKind::Text),
            None => unmapped.push("expiry (the date is out of range)".into()),
        }
    }

    for a in &entry.attachments {
        match &a.data {
            None => unmapped.push(format!(
                "attachment {:?} (the file does not carry its bytes)",
                a.name
            )),
            Some(bytes) if bytes.len() > MAX_FILE => unmapped.push(format!(
                "attachment {:?} ({} KiB; OpenK keeps attachments up to {} KiB)",
                a.name,
                bytes.len().div_ceil(1024),
                MAX_FILE / 1024
            )),
            Some(bytes) => {
                use base64::Engine as _;
                let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes));
                let name = if a.name.trim().is_empty() {
                    "attachment"
                } else {
                    a.name.as_str()
                };
                fields.push(name, &b64, FieldKind::File);
            }
        }
    }
    fields.push(label::NOTES, value(entry, NOTES), FieldKind::Multiline);

    let title = value(entry, TITLE).trim();
    let name = if title.is_empty() {
        let (name, how) = match url_host(url) {
            Some(host) => (host, "named after its URL's host"),
            None => ("Untitled".to_owned(), "named \"Untitled\""),
        };
        unmapped.push(format!("empty title ({how})"));
        name
    } else {
        title.to_owned()
    };

    ItemDraft {
        kind,
        name,
        fields: fields.0,
        tags: clean_tags(&entry.tags),
        folder,
        favorite: false,
    }
}

/// Fields with labels made unique (OpenK finds a field by its label,
/// ignoring case): a second `PIN` becomes `PIN (2)`.
#[derive(Default)]
pub(crate) struct Fields(Vec<Field>);

impl Fields {
    pub(crate) fn into_vec(self) -> Vec<Field> {
        self.0
    }

    /// Adds a field unless `value` is empty.
    pub(crate) fn push(&mut self, label: &str, value: &str, kind: FieldKind) {
        if value.is_empty() {
            return;
        }
        let taken = |l: &str| self.0.iter().any(|f| f.label.eq_ignore_ascii_case(l));
        let base = label.trim();
        let mut label = base.to_owned();
        let mut n = 2;
        while taken(&label) {
            label = format!("{base} ({n})");
            n += 1;
        }
        self.0.push(Field::new(&label, value, kind));
    }
}

/// KeePass tags → OpenK tags: trimmed, inner spaces as `-`, no empties, no
/// duplicates.
fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags.iter().flat_map(|t| t.split([';', ','])) {
        let t = t.split_whitespace().collect::<Vec<_>>().join("-");
        if !t.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&t)) {
            out.push(t);
        }
    }
    out
}

/// The otpauth URI of KeePassXC's `otp` attribute (an otpauth URI, or
/// KeeOtp's `key=…&step=…&size=…`).
fn otp_uri(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.to_ascii_lowercase().starts_with("otpauth://") {
        let query = raw.split_once('?').map_or("", |(_, q)| q);
        if query
            .split('&')
            .any(|p| p.eq_ignore_ascii_case("encoder=steam"))
        {
            return Err(steam());
        }
        return Totp::parse(raw)
            .map(|t| t.to_uri())
            .map_err(|e| e.to_string());
    }
    // KeeOtp: key=BASE32&step=30&size=6&otpHashMode=sha1
    let mut key = None;
    let (mut step, mut size) = (None, None);
    for pair in raw.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "key" => key = Some(v),
            "step" => step = Some(v),
            "size" => size = Some(v),
            "otpHashMode" if !v.eq_ignore_ascii_case("sha1") => {
                return Err(format!("hash {v} is not supported"));
            }
            _ => {}
        }
    }
    let key = key.ok_or("not an otpauth URI")?;
    build_totp(key, step.unwrap_or("30"), size.unwrap_or("6"))
}

/// The otpauth URI of the legacy `TOTP Seed` + `TOTP Settings` ("30;6",
/// "30;8"; "30;S" is Steam).
fn legacy_totp(seed: &str, settings: &str) -> Result<String, String> {
    let settings = settings.trim();
    let (period, digits) = if settings.is_empty() {
        ("30", "6")
    } else {
        settings.split_once(';').unwrap_or((settings, "6"))
    };
    // A third part (an otpauth-style algorithm) is not in KeePassXC's form.
    let digits = digits.split(';').next().unwrap_or("6");
    if digits.trim().eq_ignore_ascii_case("S") {
        return Err(steam());
    }
    build_totp(seed, period, digits)
}

fn steam() -> String {
    "Steam Guard codes are not supported by OpenK's TOTP".into()
}

fn build_totp(seed: &str, period: &str, digits: &str) -> Result<String, String> {
    let mut t = Totp::parse(seed).map_err(|e| e.to_string())?;
    t.period = period
        .trim()
        .parse()
        .map_err(|_| format!("period {:?} is not a number", period.trim()))?;
    t.digits = digits
        .trim()
        .parse()
        .map_err(|_| format!("digits {:?} is not a number", digits.trim()))?;
    let uri = t.to_uri();
    // Parsing the result checks the period and digit ranges.
    Totp::parse(&uri).map_err(|e| e.to_string())?;
    Ok(uri)
}

/// `2030-01-31T12:00:00Z`.
pub(crate) fn rfc3339(unix_seconds: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| u.host_str().is_some())
        .or_else(|| url::Url::parse(&format!("https://{url}")).ok())?;
    parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

/// The folder of an entry in the group path `groups` (the root's name
/// first) and whether it is in the Recycle Bin (`bin` is the index in
/// `groups` of the Recycle Bin group, if the entry is under it).
pub(crate) fn place(groups: &[&str], bin: Option<usize>, title: &str) -> Place {
    let below_root = groups.get(1..).unwrap_or(&[]);
    let folder_parts: &[&str] = match bin {
        Some(i) => groups.get(i + 1..).unwrap_or(&[]),
        None => below_root,
    };
    let folder = (!folder_parts.is_empty()).then(|| folder_parts.join("/"));
    let mut at = groups.join("/");
    if !at.is_empty() {
        at.push('/');
    }
    at.push_str(if title.trim().is_empty() {
        "(untitled)"
    } else {
        title
    });
    Place {
        folder,
        problem_at: format!("entry {at}"),
        at,
        trashed: bin.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(key: &str, value: &str, protected: bool) -> KpString {
        KpString {
            key: key.into(),
            value: Zeroizing::new(value.into()),
            protected,
        }
    }

    fn field<'a>(d: &'a ItemDraft, l: &str) -> Option<&'a Field> {
        d.fields.iter().find(|f| f.label == l)
    }

    #[test]
    fn empty_title_is_named_after_the_url_host_and_reported() {
        let e = KpEntry {
            strings: vec![s("Title", "", false), s("URL", "example.org/login", false)],
            ..KpEntry::default()
        };
        let item = map_entry(&e, &place(&["Root"], None, "")).expect("maps");
        assert_eq!(item.draft.name, "example.org");
        assert_eq!(item.at, "Root/(untitled)");
        assert!(item.unmapped.iter().any(|u| u.contains("empty title")));
        let e = KpEntry::default();
        let item = map_entry(&e, &place(&["Root"], None, "")).expect("maps");
        assert_eq!(item.draft.name, "Untitled");
        assert_eq!(item.draft.kind, ItemKind::Note);
    }

    #[test]
    fn legacy_totp_settings() {
        let uri = legacy_totp("JBSWY3DPEHPK3PXP", "30;8").expect("8 digits");
        assert!(
            uri.contains("digits=8") && uri.contains("period=30"),
            "{uri}"
        );
        let uri = legacy_totp("JBSWY3DPEHPK3PXP", "60;6").expect("60 s");
        assert!(uri.contains("period=60"), "{uri}");
        assert!(legacy_totp("JBSWY3DPEHPK3PXP", "30;S").is_err());
        assert!(legacy_totp("not base32 !!", "30;6").is_err());
        assert!(legacy_totp("JBSWY3DPEHPK3PXP", "30;99").is_err());
    }

    #[test]
    fn otp_forms() {
        assert!(otp_uri("otpauth://totp/X?secret=JBSWY3DPEHPK3PXP&encoder=steam").is_err());
        let uri = otp_uri("key=JBSWY3DPEHPK3PXP&step=60&size=8").expect("KeeOtp");
        assert!(
            uri.contains("period=60") && uri.contains("digits=8"),
            "{uri}"
        );
        assert!(otp_uri("garbage").is_err());
    }

    #[test]
    fn steam_and_bad_totp_are_kept_as_fields_and_reported() {
        let e = KpEntry {
            strings: vec![
                s("Title", "Steam", false),
                s("TOTP Seed", "JBSWY3DPEHPK3PXP", true),
                s("TOTP Settings", "30;S", false),
            ],
            ..KpEntry::default()
        };
        let item = map_entry(&e, &place(&["Root"], None, "Steam")).expect("maps");
        assert!(field(&item.draft, "totp").is_none());
        assert_eq!(
            field(&item.draft, "TOTP Seed").map(|f| f.kind),
            Some(FieldKind::Secret)
        );
        assert!(item.unmapped.iter().any(|u| u.contains("Steam")));
    }

    #[test]
    fn tags_labels_and_attachments() {
        let big = Zeroizing::new(vec![0u8; MAX_FILE + 1]);
        let e = KpEntry {
            strings: vec![
                s("Title", "T", false),
                s("url", "custom url attribute", false),
                s("URL", "https://a.example", false),
            ],
            tags: vec![" dev tools ".into(), "a;b,A".into(), String::new()],
            attachments: vec![
                KpAttachment {
                    name: "big.bin".into(),
                    data: Some(big),
                },
                KpAttachment {
                    name: "small.txt".into(),
                    data: Some(Zeroizing::new(b"hi".to_vec())),
                },
            ],
            ..KpEntry::default()
        };
        let item = map_entry(&e, &place(&["Root", "A", "B"], None, "T")).expect("maps");
        assert_eq!(item.draft.tags, ["dev-tools", "a", "b"]);
        assert_eq!(item.draft.folder.as_deref(), Some("A/B"));
        assert_eq!(
            field(&item.draft, "url (2)").map(|f| f.value.expose()),
            Some("custom url attribute")
        );
        assert_eq!(
            field(&item.draft, "small.txt").map(|f| (f.kind, f.value.expose())),
            Some((FieldKind::File, "aGk="))
        );
        assert!(field(&item.draft, "big.bin").is_none());
        assert!(item.unmapped.iter().any(|u| u.contains("big.bin")));
    }

    #[test]
    fn recycle_bin_place() {
        let p = place(&["Root", "Recycle Bin"], Some(1), "Old");
        assert!(p.trashed);
        assert_eq!(p.folder, None);
        assert_eq!(p.at, "Root/Recycle Bin/Old");
        let p = place(&["Root", "Recycle Bin", "Web"], Some(1), "Old");
        assert_eq!(p.folder.as_deref(), Some("Web"));
    }

    #[test]
    fn oversized_value_is_a_problem() {
        let e = KpEntry {
            strings: vec![
                s("Title", "T", false),
                s("Notes", &"x".repeat(300 * 1024), false),
            ],
            ..KpEntry::default()
        };
        let p = map_entry(&e, &place(&["Root"], None, "T")).expect_err("too big");
        assert_eq!(p.at, "entry Root/T");
    }
}

/// Checks shared by the KDBX, XML and CSV tests: the fixtures of
/// tests/fixtures/keepass (made by make.sh there) against what
/// `keepassxc-cli show -s --all` printed for each entry.
#[cfg(test)]
pub(crate) mod fixture {
    use std::path::PathBuf;

    use super::super::{ImportItem, Parsed, Source};
    use crate::engine::SecretString;
    use crate::engine::model::{FieldKind, ItemKind};

    pub(crate) const PASSWORD: &str = "fixture-pass";

    pub(crate) fn path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keepass")
            .join(name)
    }

    pub(crate) fn bytes(name: &str) -> Vec<u8> {
        std::fs::read(path(name)).expect("fixture (tests/fixtures/keepass/make.sh)")
    }

    pub(crate) fn no_progress(_: u64, _: u64) {}

    /// Parses `bytes` with `parse` given `password` / `key_file`.
    pub(crate) fn run(
        parse: fn(&Source<'_>) -> super::super::Result<Parsed>,
        name: &str,
        bytes: &[u8],
        password: Option<&str>,
        key_file: Option<&[u8]>,
    ) -> super::super::Result<Parsed> {
        let pw = password.map(|p| SecretString::from(p.to_owned()));
        let p = path(name);
        parse(&Source {
            path: &p,
            bytes,
            password: pw.as_ref(),
            key_file,
            progress: &no_progress,
        })
    }

    /// One entry of a `.show` file.
    pub(crate) struct Shown {
        pub path: String,
        pub attrs: Vec<(String, String)>,
        pub attachments: Vec<String>,
    }

    impl Shown {
        pub(crate) fn get(&self, key: &str) -> &str {
            self.attrs
                .iter()
                .find(|(k, _)| k == key)
                .map_or("", |(_, v)| v.as_str())
        }
    }

    /// Reads `keepassxc-cli show -s --all --show-attachments` output, each
    /// entry after a `### path` line (make.sh writes them).
    pub(crate) fn shown(name: &str) -> Vec<Shown> {
        let text = String::from_utf8(bytes(name)).expect("utf-8");
        let mut out: Vec<Shown> = Vec::new();
        let mut in_notes = false;
        let mut in_attachments = false;
        for line in text.lines() {
            if let Some(p) = line.strip_prefix("### ") {
                out.push(Shown {
                    path: p.to_owned(),
                    attrs: Vec::new(),
                    attachments: Vec::new(),
                });
                in_notes = false;
                in_attachments = false;
                continue;
            }
            if out.is_empty() {
                // A file of one entry, without a `### path` line.
                out.push(Shown {
                    path: String::new(),
                    attrs: Vec::new(),
                    attachments: Vec::new(),
                });
            }
            let Some(cur) = out.last_mut() else { continue };
            if line == "Attachments:" {
                in_attachments = true;
                continue;
            }
            if in_attachments {
                if let Some(a) = line.trim_start().rsplit_once(" (") {
                    cur.attachments.push(a.0.to_owned());
                }
                continue;
            }
            if line.is_empty() || line == "No attachments present." {
                in_notes = false;
                continue;
            }
            if in_notes && !line.starts_with("Uuid: ") {
                if let Some((_, v)) = cur.attrs.last_mut() {
                    v.push('\n');
                    v.push_str(line);
                }
                continue;
            }
            let (k, v) = line
                .split_once(": ")
                .unwrap_or((line.trim_end_matches(':'), ""));
            in_notes = k == "Notes";
            cur.attrs.push((k.to_owned(), v.to_owned()));
        }
        out
    }

    pub(crate) fn field<'a>(item: &'a ImportItem, label: &str) -> Option<&'a str> {
        item.draft
            .fields
            .iter()
            .find(|f| f.label == label)
            .map(|f| f.value.expose())
    }

    pub(crate) fn kind(item: &ImportItem, label: &str) -> Option<FieldKind> {
        item.draft
            .fields
            .iter()
            .find(|f| f.label == label)
            .map(|f| f.kind)
    }

    pub(crate) fn item<'a>(parsed: &'a Parsed, path: &str) -> &'a ImportItem {
        parsed
            .items
            .iter()
            .find(|i| i.at == format!("Passwords/{path}"))
            .unwrap_or_else(|| panic!("no item at Passwords/{path}"))
    }

    /// Every value `keepassxc-cli show` printed is where it belongs.
    /// `attributes`: whether the format carries custom attributes, tags
    /// and UUIDs (KDBX and XML: yes; CSV: no).
    pub(crate) fn check_against_show(parsed: &Parsed, show: &str, attributes: bool) {
        let shown = shown(show);
        assert_eq!(shown.len(), 7);
        assert_eq!(parsed.items.len(), 7, "problems: {:?}", parsed.problems);
        for s in &shown {
            let path = s.path.replace("Recycle Bin/", "");
            let it = parsed
                .items
                .iter()
                .find(|i| {
                    i.at == format!("Passwords/{}", s.path)
                        || (i.trashed && i.at.ends_with(&format!("/{path}")))
                })
                .unwrap_or_else(|| panic!("no item for {}", s.path));
            assert_eq!(it.draft.name, s.get("Title"), "{}", s.path);
            for (attr, label) in [
                ("UserName", "username"),
                ("Password", "password"),
                ("URL", "url"),
                ("Notes", "notes"),
            ] {
                let want = s.get(attr);
                let got = field(it, label).unwrap_or("");
                assert_eq!(got, want, "{} {attr}", s.path);
            }
            assert!(kind(it, "password").is_none_or(|k| k == FieldKind::Secret));
            let login = ["UserName", "Password", "URL"]
                .iter()
                .any(|a| !s.get(a).is_empty());
            assert_eq!(
                it.draft.kind,
                if login {
                    ItemKind::Login
                } else {
                    ItemKind::Note
                },
                "{}",
                s.path
            );
            if !attributes {
                continue;
            }
            assert_eq!(
                it.source_id.as_deref(),
                Some(s.get("Uuid").trim_matches(['{', '}'])),
                "{}",
                s.path
            );
            let tags: Vec<String> = s
                .get("Tags")
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| t.replace(' ', "-"))
                .collect();
            assert_eq!(it.draft.tags, tags, "{}", s.path);
            let standard = [
                "Title", "UserName", "Password", "URL", "Notes", "Uuid", "Tags",
            ];
            for (k, v) in &s.attrs {
                if standard.contains(&k.as_str()) {
                    continue;
                }
                match k.as_str() {
                    "otp" => {
                        let t = field(it, "totp").expect("totp");
                        let secret = v.split("secret=").nth(1).and_then(|r| r.split('&').next());
                        assert!(t.contains(&format!("secret={}", secret.expect("secret"))));
                    }
                    "TOTP Seed" | "TOTP Settings" if s.get("TOTP Settings").ends_with('S') => {
                        // Steam: kept as fields, reported.
                        assert_eq!(field(it, k), Some(v.as_str()));
                        assert!(it.unmapped.iter().any(|u| u.contains("Steam")));
                    }
                    "TOTP Seed" => {
                        let t = field(it, "totp").expect("legacy totp");
                        assert!(t.contains(&format!("secret={v}")), "{t}");
                    }
                    "TOTP Settings" => {
                        let digits = v.split(';').nth(1).expect("digits");
                        let t = field(it, "totp").expect("legacy totp");
                        assert!(t.contains(&format!("digits={digits}")), "{t}");
                    }
                    _ => assert_eq!(field(it, k), Some(v.as_str()), "{} {k}", s.path),
                }
            }
        }
    }

    /// The details `.show` does not print: kinds, history, expiry, times,
    /// the Recycle Bin, attachments.
    pub(crate) fn check_details(parsed: &Parsed, attachments_carried: bool) {
        let gh = item(parsed, "Web/GitHub");
        assert_eq!(gh.draft.folder.as_deref(), Some("Web"));
        assert_eq!(kind(gh, "Recovery Codes"), Some(FieldKind::Secret));
        assert_eq!(kind(gh, "Plan"), Some(FieldKind::Text));
        assert_eq!(kind(gh, "totp"), Some(FieldKind::Totp));
        assert!(gh.created_at.is_some() && gh.updated_at >= gh.created_at);
        // keepassxc-cli saved a version on attachment-import and on each
        // of the two edits.
        assert_eq!(gh.history.len(), 3, "GitHub's history");
        assert!(
            gh.history.windows(2).all(|w| w[0].1 <= w[1].1),
            "oldest first"
        );
        let f = |d: &crate::engine::ItemDraft, l: &str| {
            d.fields
                .iter()
                .find(|f| f.label == l)
                .map(|f| f.value.expose().to_owned())
        };
        let (first, second, third) = (&gh.history[0].0, &gh.history[1].0, &gh.history[2].0);
        assert_eq!(f(first, "username").as_deref(), Some("alice"));
        assert_eq!(f(first, "password").as_deref(), Some("gh-first-password"));
        assert_eq!(f(first, "readme.txt"), None, "before the attachment");
        assert_eq!(f(second, "username").as_deref(), Some("alice"));
        assert_eq!(f(third, "username").as_deref(), Some("alice-renamed"));
        assert_eq!(f(third, "password").as_deref(), Some("gh-first-password"));
        let readme = "Attachment bytes: \x00\x01\x02 and text ✓\n".as_bytes();
        if attachments_carried {
            use base64::Engine as _;
            let decode = |b64: &str| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("base64")
            };
            let b64 = field(gh, "readme.txt").expect("attachment");
            assert_eq!(decode(b64), readme);
            assert_eq!(kind(gh, "readme.txt"), Some(FieldKind::File));
            // Versions keep the attachment they had.
            assert_eq!(
                f(second, "readme.txt").map(|b| decode(&b)).as_deref(),
                Some(readme)
            );
        } else {
            assert_eq!(field(gh, "readme.txt"), None);
        }
        let bank = item(parsed, "Bank/Bank of X");
        assert_eq!(field(bank, "expires"), Some("2030-01-31T12:00:00Z"));
        assert_eq!(kind(bank, "PIN"), Some(FieldKind::Secret));
        assert_eq!(kind(bank, "Account No"), Some(FieldKind::Text));
        assert_eq!(field(bank, "TOTP Seed"), None, "consumed by the totp field");
        let steam = item(parsed, "Games/Steam");
        assert_eq!(field(steam, "totp"), None);
        let old = parsed
            .items
            .iter()
            .find(|i| i.draft.name == "Old Account")
            .expect("old account");
        assert!(old.trashed);
        assert_eq!(old.draft.folder, None);
        assert_eq!(old.at, "Passwords/Recycle Bin/Old Account");
        assert!(parsed.items.iter().filter(|i| i.trashed).count() == 1);
        let wifi = item(parsed, "Wi-Fi code");
        assert_eq!(wifi.draft.kind, ItemKind::Note);
        assert_eq!(wifi.draft.folder, None);
        let cafe = item(parsed, "Café ☕ 日本");
        assert_eq!(field(cafe, "Ключ"), Some("значение"));
        assert_eq!(cafe.draft.tags, ["ünïcode"]);
    }
}
