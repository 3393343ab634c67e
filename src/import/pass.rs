//! A `pass` store (passwordstore.org): a directory tree of `.gpg` files,
//! each decrypted through the user's own `gpg` (`gpg --batch --quiet
//! --decrypt FILE`, `GNUPGHOME` from the environment; gpg-agent asks for a
//! key's passphrase as it always does). The plaintext is read from gpg's
//! standard output into a buffer wiped on drop.
//!
//! The first line is the password, byte for byte (only its newline
//! removed); `key: value` lines become fields, `otpauth://` lines the TOTP
//! seed, every other line the notes. `web/github.com.gpg` is the item
//! `github.com` in folder `web`. A file gpg cannot decrypt is a
//! [`Problem`] naming the key IDs it is encrypted to; the rest is imported.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::keepass_entry::Fields;
use super::{Format, ImportError, ImportItem, Parsed, Problem, Result, Source};
use crate::crypto::totp::Totp;
use crate::engine::model::{FieldKind, ItemKind, label};
use crate::engine::{ItemDraft, check_draft};

/// The program run to decrypt (found on `PATH`).
const GPG: &str = "gpg";

fn malformed(at: &str, why: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format: Format::Pass,
        at: at.into(),
        why: why.into(),
    }
}

/// Reads the store at `source.path`.
///
/// # Errors
/// [`ImportError::Malformed`] when the path is not a directory holding a
/// `pass` store, [`ImportError::Io`] when `gpg` cannot be run.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    parse_with(source, None)
}

/// [`parse`] with `gpg` run in the GnuPG home `gnupghome` instead of the
/// environment's (tests).
fn parse_with(source: &Source<'_>, gnupghome: Option<&Path>) -> Result<Parsed> {
    let root = source.path;
    if !root.is_dir() {
        return Err(malformed(
            &root.display().to_string(),
            "a pass store is a directory (e.g. ~/.password-store)",
        ));
    }
    let mut files = Vec::new();
    let mut gpg_ids = Vec::new();
    scan(root, Path::new(""), &mut files, &mut gpg_ids)
        .map_err(|e| ImportError::Io(format!("reading {}: {e}", root.display())))?;
    if gpg_ids.is_empty() && files.is_empty() {
        return Err(malformed(
            &root.display().to_string(),
            "no .gpg-id and no .gpg files: not a pass store",
        ));
    }
    let mut parsed = Parsed::default();
    for (dir, ids) in &gpg_ids {
        let dir = if dir.as_os_str().is_empty() {
            "the store".to_owned()
        } else {
            format!("{}/", slash_path(dir))
        };
        parsed.notes.push(format!(
            "{dir} is encrypted for {} (.gpg-id)",
            ids.join(", ")
        ));
    }
    if !files.is_empty() {
        check_gpg()?;
    }
    files.sort();
    let total = u64::try_from(files.len()).unwrap_or(u64::MAX);
    (source.progress)(0, total);
    for (done, rel) in files.iter().enumerate() {
        let at = slash_path(rel);
        match decrypt(&root.join(rel), gnupghome) {
            Ok(plain) => match std::str::from_utf8(&plain) {
                Ok(text) => {
                    let mtime = std::fs::metadata(root.join(rel))
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .and_then(|d| i64::try_from(d.as_millis()).ok());
                    match item_of(rel, text, &at) {
                        Ok(mut item) => {
                            item.updated_at = mtime;
                            parsed.items.push(item);
                        }
                        Err(p) => parsed.problems.push(p),
                    }
                }
                Err(_) => parsed.problems.push(Problem {
                    at,
                    why: "the decrypted entry is not UTF-8 text (binary files are not imported)"
                        .into(),
                }),
            },
            Err(why) => parsed.problems.push(Problem { at, why }),
        }
        (source.progress)(u64::try_from(done + 1).unwrap_or(u64::MAX), total);
    }
    Ok(parsed)
}

/// `web/github.com.gpg` with `/` whatever the platform.
fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Collects the `.gpg` files (relative paths) and each directory's
/// `.gpg-id` recipients. Hidden directories (`.git`, `.extensions`) and
/// symbolic links to directories are skipped.
fn scan(
    root: &Path,
    rel: &Path,
    files: &mut Vec<PathBuf>,
    gpg_ids: &mut Vec<(PathBuf, Vec<String>)>,
) -> std::io::Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let path = rel.join(&name);
        let kind = entry.file_type()?;
        if name_str == ".gpg-id" {
            let ids = std::fs::read_to_string(entry.path())?
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect();
            gpg_ids.push((rel.to_path_buf(), ids));
        } else if kind.is_dir() {
            if !name_str.starts_with('.') {
                scan(root, &path, files, gpg_ids)?;
            }
        } else if name_str.ends_with(".gpg") && name_str.len() > 4 && !name_str.starts_with('.') {
            files.push(path);
        }
    }
    Ok(())
}

fn gpg(gnupghome: Option<&Path>) -> Command {
    let mut cmd = Command::new(GPG);
    if let Some(home) = gnupghome {
        cmd.env("GNUPGHOME", home);
    }
    cmd
}

fn check_gpg() -> Result<()> {
    Command::new(GPG)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(|e| {
            ImportError::Io(format!(
                "a pass store is read through gpg, which could not be run ({e}): install GnuPG"
            ))
        })
}

/// The plaintext of one file, or why gpg could not decrypt it.
fn decrypt(
    file: &Path,
    gnupghome: Option<&Path>,
) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let mut child = gpg(gnupghome)
        .args(["--batch", "--quiet", "--no-tty", "--decrypt", "--"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("gpg could not be run: {e}"))?;
    let mut plain = Zeroizing::new(Vec::new());
    let mut err = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut plain)
            .map_err(|e| format!("reading gpg's output: {e}"))?;
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut err);
    }
    let status = child.wait().map_err(|e| format!("gpg failed: {e}"))?;
    if status.success() {
        return Ok(plain);
    }
    let said = String::from_utf8_lossy(&err);
    let said = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .trim_start_matches("gpg: ");
    let ids = recipients(file, gnupghome);
    let to = if ids.is_empty() {
        String::new()
    } else {
        format!(" (it is encrypted to key ID {})", ids.join(", "))
    };
    Err(format!(
        "gpg could not decrypt it{to}: {}",
        crate::text::line(said)
    ))
}

/// The key IDs a file is encrypted to, as gpg lists them without
/// decrypting (`--list-only --list-packets`).
fn recipients(file: &Path, gnupghome: Option<&Path>) -> Vec<String> {
    let Ok(out) = gpg(gnupghome)
        .args(["--batch", "--no-tty", "--list-only", "--list-packets", "--"])
        .arg(file)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(":pubkey enc packet:"))
        .filter_map(|l| l.split("keyid ").nth(1))
        .map(|id| id.trim().to_owned())
        .collect()
}

/// Keys whose values are kept as secret fields.
fn secret_key(key: &str) -> bool {
    let k = key.to_lowercase();
    ["pass", "pin", "secret", "token", "key", "code", "cvv"]
        .iter()
        .any(|w| k.contains(w))
}

/// A `key: value` line: the key is one word before the first `:`
/// (letters, digits, `-`, `_`, `.`), and the colon is followed by a space
/// or ends the line, so `https://…` and prose with a colon stay notes.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.split_once(':')?;
    if key.is_empty()
        || key.chars().count() > 64
        || !key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return None;
    }
    if rest.is_empty() {
        return Some((key, ""));
    }
    rest.strip_prefix(' ').map(|value| (key, value))
}

/// The item of one decrypted file at `rel` (`web/github.com.gpg`).
fn item_of(rel: &Path, text: &str, at: &str) -> std::result::Result<ImportItem, Problem> {
    let mut lines = text.split('\n');
    let password = lines.next().unwrap_or("");
    let mut rest: Vec<&str> = lines.collect();
    // The newline that ends the last line is not an empty line of notes.
    if rest.last() == Some(&"") {
        rest.pop();
    }
    let mut username: Option<&str> = None;
    let mut email: Option<&str> = None;
    let mut url: Option<&str> = None;
    let mut totp: Option<String> = None;
    let mut custom: Vec<(&str, &str)> = Vec::new();
    let mut notes: Vec<&str> = Vec::new();
    let mut unmapped = Vec::new();
    for line in rest {
        if line
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("otpauth://")
            && totp.is_none()
        {
            match Totp::parse(line) {
                Ok(t) if !line.to_ascii_lowercase().contains("encoder=steam") => {
                    totp = Some(t.to_uri());
                    continue;
                }
                Ok(_) => unmapped.push("a Steam TOTP line (kept in the notes)".into()),
                Err(e) => unmapped.push(format!("an otpauth line ({e}; kept in the notes)")),
            }
            notes.push(line);
            continue;
        }
        let Some((key, value)) = key_value(line) else {
            notes.push(line);
            continue;
        };
        match key.to_lowercase().as_str() {
            "username" | "login" | "user" if username.is_none() => username = Some(value),
            "email" | "e-mail" if email.is_none() => email = Some(value),
            "url" | "website" if url.is_none() => url = Some(value),
            _ => custom.push((key, value)),
        }
    }
    let (username, email) = match (username, email) {
        (None, Some(e)) => (Some(e), None),
        other => other,
    };
    let mut fields = Fields::default();
    fields.push(label::USERNAME, username.unwrap_or(""), FieldKind::Text);
    fields.push(label::PASSWORD, password, FieldKind::Secret);
    fields.push(label::URL, url.unwrap_or(""), FieldKind::Url);
    fields.push(label::EMAIL, email.unwrap_or(""), FieldKind::Email);
    fields.push(label::TOTP, totp.as_deref().unwrap_or(""), FieldKind::Totp);
    for (key, value) in custom {
        let kind = if secret_key(key) {
            FieldKind::Secret
        } else {
            FieldKind::Text
        };
        fields.push(key, value, kind);
    }
    let notes = notes.join("\n");
    fields.push(label::NOTES, &notes, FieldKind::Multiline);

    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".gpg").to_owned())
        .unwrap_or_default();
    let folder = rel
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(slash_path);
    let kind = if password.is_empty() && username.is_none() && url.is_none() {
        ItemKind::Note
    } else {
        ItemKind::Login
    };
    let draft = ItemDraft {
        kind,
        name,
        fields: fields.into_vec(),
        tags: Vec::new(),
        folder,
        favorite: false,
    };
    check_draft(&draft).map_err(|(_, why)| Problem {
        at: at.to_owned(),
        why,
    })?;
    let mut item = ImportItem::new(draft, at);
    item.source_id = Some(at.trim_end_matches(".gpg").to_owned());
    item.unmapped = unmapped;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(item: &'a ImportItem, l: &str) -> Option<&'a str> {
        item.draft
            .fields
            .iter()
            .find(|f| f.label == l)
            .map(|f| f.value.expose())
    }

    #[test]
    fn lines_map_to_fields() {
        let text = "pw  \nusername: alice\nURL: https://x.example\nhttps://not.a.field\n\
                    pin: 12\nemail: a@x.example\nfree text\n";
        let item = item_of(Path::new("web/x.gpg"), text, "web/x.gpg").expect("item");
        assert_eq!(item.draft.name, "x");
        assert_eq!(item.draft.folder.as_deref(), Some("web"));
        assert_eq!(value(&item, "password"), Some("pw  "));
        assert_eq!(value(&item, "username"), Some("alice"));
        assert_eq!(value(&item, "url"), Some("https://x.example"));
        assert_eq!(value(&item, "email"), Some("a@x.example"));
        assert_eq!(value(&item, "pin"), Some("12"));
        assert_eq!(
            value(&item, "notes"),
            Some("https://not.a.field\nfree text")
        );
        assert_eq!(item.source_id.as_deref(), Some("web/x"));
    }

    #[test]
    fn email_is_the_username_when_there_is_none() {
        let item = item_of(Path::new("m.gpg"), "p\nemail: e@x.example\n", "m.gpg").expect("item");
        assert_eq!(value(&item, "username"), Some("e@x.example"));
        assert_eq!(value(&item, "email"), None);
    }

    #[test]
    fn empty_password_line_without_fields_is_a_note() {
        let item = item_of(Path::new("n.gpg"), "\nhello\n", "n.gpg").expect("item");
        assert_eq!(item.draft.kind, ItemKind::Note);
        assert_eq!(value(&item, "password"), None);
        assert_eq!(value(&item, "notes"), Some("hello"));
    }

    #[test]
    fn bad_otpauth_stays_in_the_notes() {
        let item = item_of(
            Path::new("t.gpg"),
            "p\notpauth://totp/x?secret=!!\n",
            "t.gpg",
        )
        .expect("item");
        assert_eq!(value(&item, "totp"), None);
        assert_eq!(value(&item, "notes"), Some("otpauth://totp/x?secret=!!"));
        assert_eq!(item.unmapped.len(), 1);
    }

    #[test]
    fn key_value_rules() {
        assert_eq!(key_value("a: b "), Some(("a", "b ")));
        assert_eq!(key_value("a:"), Some(("a", "")));
        assert_eq!(key_value("https://x"), None);
        assert_eq!(key_value(" a: b"), None);
        assert_eq!(key_value("a:b"), None);
        assert_eq!(key_value("two words: no"), None);
        assert_eq!(key_value("e-mail: x"), Some(("e-mail", "x")));
    }
}

/// The store of tests/fixtures/pass (made by make.sh there) read with a
/// temporary copy of its GnuPG home.
#[cfg(test)]
mod fixture_tests {
    use std::path::PathBuf;

    use super::*;
    use crate::engine::model::FieldKind;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pass")
    }

    /// A copy of the fixture's GnuPG home (gpg-agent puts its sockets
    /// there), its agent stopped when dropped.
    struct Home(tempfile::TempDir);

    impl Home {
        fn new() -> Self {
            let tmp = tempfile::Builder::new()
                .prefix("okgpg")
                .tempdir()
                .expect("tempdir");
            copy(&dir().join("gnupghome"), tmp.path());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700))
                    .expect("chmod");
            }
            Self(tmp)
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(self.0.path())
                .args(["--kill", "gpg-agent"])
                .status();
        }
    }

    fn copy(from: &Path, to: &Path) {
        for e in std::fs::read_dir(from).expect("read_dir") {
            let e = e.expect("entry");
            let target = to.join(e.file_name());
            if e.file_type().expect("type").is_dir() {
                std::fs::create_dir_all(&target).expect("mkdir");
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).expect("copy");
            }
        }
    }

    fn no_progress(_: u64, _: u64) {}

    fn read(home: &Home) -> Parsed {
        let store = dir().join("store");
        parse_with(
            &Source {
                path: &store,
                bytes: &[],
                password: None,
                key_file: None,
                progress: &no_progress,
            },
            Some(home.0.path()),
        )
        .expect("store reads")
    }

    fn item<'a>(p: &'a Parsed, at: &str) -> &'a ImportItem {
        p.items
            .iter()
            .find(|i| i.at == at)
            .unwrap_or_else(|| panic!("no item {at}: {:?}", p.problems))
    }

    fn value<'a>(i: &'a ImportItem, l: &str) -> Option<&'a str> {
        i.draft
            .fields
            .iter()
            .find(|f| f.label == l)
            .map(|f| f.value.expose())
    }

    fn kind(i: &ImportItem, l: &str) -> Option<FieldKind> {
        i.draft.fields.iter().find(|f| f.label == l).map(|f| f.kind)
    }

    #[test]
    fn the_fixture_store() {
        if Command::new(GPG).arg("--version").output().is_err() {
            panic!("gpg is needed for the pass tests (.ci/run installs gnupg)");
        }
        let home = Home::new();
        let p = read(&home);
        let mut ats: Vec<&str> = p.items.iter().map(|i| i.at.as_str()).collect();
        ats.sort_unstable();
        assert_eq!(
            ats,
            [
                "notes/plain-note.gpg",
                "team/shared.gpg",
                "unicode/café.gpg",
                "web/both.example.gpg",
                "web/github.com.gpg",
                "web/mail.example.gpg",
                "wifi.gpg",
            ]
        );

        let gh = item(&p, "web/github.com.gpg");
        assert_eq!(gh.draft.name, "github.com");
        assert_eq!(gh.draft.folder.as_deref(), Some("web"));
        assert_eq!(gh.draft.kind, ItemKind::Login);
        assert_eq!(
            value(gh, "password"),
            Some("gh-pass with trailing spaces  ")
        );
        assert_eq!(value(gh, "username"), Some("alice"));
        assert_eq!(value(gh, "url"), Some("https://github.com"));
        assert_eq!(kind(gh, "totp"), Some(FieldKind::Totp));
        assert!(value(gh, "totp").is_some_and(|t| t.contains("secret=JBSWY3DPEHPK3PXP")));
        assert_eq!(value(gh, "pin"), Some("1234"));
        assert_eq!(kind(gh, "pin"), Some(FieldKind::Secret));
        assert_eq!(
            value(gh, "notes"),
            Some("Recovery notes line one\nline two: not a field because it is prose\nlast line")
        );
        assert_eq!(gh.source_id.as_deref(), Some("web/github.com"));
        assert!(gh.updated_at.is_some());

        let mail = item(&p, "web/mail.example.gpg");
        assert_eq!(value(mail, "username"), Some("bob@example.com"));
        assert_eq!(value(mail, "email"), None);
        assert_eq!(value(mail, "url"), Some("https://mail.example"));
        let both = item(&p, "web/both.example.gpg");
        assert_eq!(value(both, "username"), Some("carol"));
        assert_eq!(value(both, "email"), Some("carol@example.com"));

        let cafe = item(&p, "unicode/café.gpg");
        assert_eq!(cafe.draft.name, "café");
        assert_eq!(value(cafe, "password"), Some("pässwörd ☕ 日本"));
        assert_eq!(value(cafe, "username"), Some("josé"));
        assert_eq!(value(cafe, "Ключ"), Some("значение"));
        assert_eq!(value(cafe, "notes"), Some("Ünïcödé notes ✓"));

        let wifi = item(&p, "wifi.gpg");
        assert_eq!(wifi.draft.folder, None);
        assert_eq!(value(wifi, "password"), Some("wifi-pass"));
        let note = item(&p, "notes/plain-note.gpg");
        assert_eq!(note.draft.kind, ItemKind::Note);
        assert_eq!(value(note, "notes"), Some("Only notes here."));

        // Encrypted to a key this GnuPG home lacks: a problem, rest imported.
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        let prob = &p.problems[0];
        assert_eq!(prob.at, "team/secret-team/vault.gpg");
        let id = prob
            .why
            .split("key ID ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .expect("key id named");
        assert_eq!(id.len(), 16, "{}", prob.why);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));

        // Each .gpg-id is reported: the store, team/ (two keys), team/secret-team/.
        let read_key = |n: &str| {
            std::fs::read_to_string(dir().join(n))
                .expect("keys file")
                .trim()
                .to_owned()
        };
        assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
        assert!(
            p.notes
                .iter()
                .any(|n| n.starts_with("the store ") && n.contains(&read_key("keys.main")))
        );
        assert!(p.notes.iter().any(|n| n.starts_with("team/ ")
            && n.contains(&read_key("keys.main"))
            && n.contains(&read_key("keys.team"))));
        assert!(
            p.notes.iter().any(
                |n| n.starts_with("team/secret-team/ ") && n.contains(&read_key("keys.absent"))
            )
        );
    }

    #[test]
    fn not_a_store_is_malformed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = parse(&Source {
            path: tmp.path(),
            bytes: &[],
            password: None,
            key_file: None,
            progress: &no_progress,
        });
        assert!(matches!(
            r,
            Err(ImportError::Malformed {
                format: Format::Pass,
                ..
            })
        ));
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        let r = parse(&Source {
            path: &file,
            bytes: b"x",
            password: None,
            key_file: None,
            progress: &no_progress,
        });
        assert!(matches!(
            r,
            Err(ImportError::Malformed {
                format: Format::Pass,
                ..
            })
        ));
    }

    #[test]
    fn garbage_gpg_file_is_a_problem() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join(".gpg-id"), "nobody@example.invalid\n").expect("write");
        std::fs::write(tmp.path().join("junk.gpg"), b"\x00garbage, not OpenPGP").expect("write");
        let home = Home::new();
        let p = parse_with(
            &Source {
                path: tmp.path(),
                bytes: &[],
                password: None,
                key_file: None,
                progress: &no_progress,
            },
            Some(home.0.path()),
        )
        .expect("reads");
        assert!(p.items.is_empty());
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].at, "junk.gpg");
    }
}
