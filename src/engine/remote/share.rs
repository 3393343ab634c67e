//! Share links (DESIGN §7): one item snapshot, encrypted under a fresh key
//! that exists only in the link's URL fragment (`SERVER/s/ID#KEY`), so the
//! server stores ciphertext it cannot read; browsers never send a fragment
//! to a server. The envelope is AES-256-GCM (`crypto::share`),
//! which the page the server serves can open with WebCrypto.
//!
//! Making, listing and revoking a link needs this vault's server session;
//! opening one ([`open_link`]) needs only the link.

use std::time::Duration;

use base64::Engine as _;
use openk_server::api::types::{CreateShareRequest, ShareResponse};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::super::error::{Error, Result};
use super::super::model::Value;
use super::super::{Session, open_json, seal_json};
use crate::crypto::share::{open_link as open_envelope, seal_link};
use crate::crypto::{Aad, CryptoError, Key};
use crate::sync::{Client, SyncError};

/// The shortest expiry a link may be given.
pub const MIN_EXPIRY: Duration = Duration::from_secs(3600);
/// The longest (the server refuses more).
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
/// What `openk share link` uses without `--expires`.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most views a link may allow (the server's limit).
pub const MAX_VIEWS: u32 = 1000;
/// The largest ciphertext the server keeps for a link.
pub const MAX_CIPHERTEXT: usize = 32 * 1024;
/// The snapshot format this build writes and reads.
const SNAPSHOT_FORMAT: u32 = 1;
/// The meta key of the sealed notes on the links this device made.
pub(in crate::engine) const NOTES_KEY: &str = "share_links";

/// An expiry as typed: `90m`, `12h`, `7d`, `2w` (units `s`, `m`, `h`, `d`,
/// `w`; a bare number is hours), within [`MIN_EXPIRY`]..=[`MAX_EXPIRY`].
///
/// # Errors
/// A message saying what to type instead.
pub fn parse_expiry(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 1h, 12h, 7d or 30d"))?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "" | "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use s, m, h, d or w (e.g. 7d)"
            ));
        }
    };
    let d = Duration::from_secs(n.saturating_mul(secs));
    if !(MIN_EXPIRY..=MAX_EXPIRY).contains(&d) {
        return Err(format!("{text}: a share link expires after 1h to 30d"));
    }
    Ok(d)
}

/// What to share and for how long.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    /// Between [`MIN_EXPIRY`] and [`MAX_EXPIRY`].
    pub expires: Duration,
    /// The link is gone after this many opens (1 to [`MAX_VIEWS`]).
    pub max_views: Option<u32>,
    /// Only the fields with these labels (case-insensitive); `None`: all.
    pub fields: Option<Vec<String>>,
}

impl Default for ShareOptions {
    fn default() -> Self {
        Self {
            expires: DEFAULT_EXPIRY,
            max_views: None,
            fields: None,
        }
    }
}

/// A link just made. `url` carries the key: show it to the user only
/// (`Debug` leaves it out).
#[derive(Serialize)]
pub struct ShareLink {
    pub id: String,
    pub url: Zeroizing<String>,
    /// RFC 3339.
    pub expires_at: String,
    pub max_views: Option<u32>,
    /// The item's name and the labels of the fields the link holds.
    pub item: String,
    pub fields: Vec<String>,
}

impl std::fmt::Debug for ShareLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareLink")
            .field("id", &self.id)
            .field("url", &"[redacted: holds the key]")
            .field("expires_at", &self.expires_at)
            .field("max_views", &self.max_views)
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

/// One of the account's live links, as the server lists it (no key: the
/// server never had it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShareInfo {
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    pub max_views: Option<u32>,
    /// `None`: no limit but the expiry.
    pub views_left: Option<u32>,
    /// The item's name when this device made the link (the server never
    /// knows it); `None` for a link made on another device.
    pub item: Option<String>,
    /// The labels of the fields it holds (`None` as for `item`).
    pub fields: Option<Vec<String>>,
}

impl From<ShareResponse> for ShareInfo {
    fn from(s: ShareResponse) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            max_views: s.max_views,
            views_left: s.views_left,
            item: None,
            fields: None,
        }
    }
}

/// What this device remembers of a link it made, sealed with the account
/// key in the vault: which item it holds, and its URL, so that the link can
/// be named in lists and copied again. The URL carries the link's key;
/// whoever can open this note can read the item itself anyway.
#[derive(Serialize, Deserialize)]
struct LinkNote {
    id: String,
    item_id: uuid::Uuid,
    item: String,
    fields: Vec<String>,
    url: Zeroizing<String>,
}

/// What a link holds: the snapshot of one item. Its strings came from
/// whoever made the link: data, to be stripped of terminal controls before
/// they are shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedItem {
    pub format: u32,
    pub name: String,
    pub kind: String,
    pub fields: Vec<SharedField>,
}

/// One field of a shared item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedField {
    pub label: String,
    pub value: Value,
    /// The field's kind (`text`, `secret`, `url`, `email`, `totp`, `multiline`).
    pub kind: String,
    /// Masked until revealed (secrets, TOTP seeds, hidden fields).
    pub concealed: bool,
}

/// A link's parts: the server's base URL, the id and the key.
struct ParsedLink {
    base: String,
    id: String,
    key: Key,
}

fn parse_link(link: &str) -> Result<ParsedLink> {
    let bad = |why: &str| Error::BadShareLink(why.to_owned());
    let url = url::Url::parse(link.trim())
        .map_err(|_| bad("it is not a URL (https://SERVER/s/ID#KEY)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("it is not an http(s) URL"));
    }
    let fragment = url
        .fragment()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| bad("the key (the part after #) is missing"))?;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(fragment.trim_end_matches('='))
        .ok()
        .and_then(|bytes| Key::from_slice(&Zeroizing::new(bytes)))
        .ok_or_else(|| bad("the key (the part after #) is cut short or damaged"))?;
    let path = url.path();
    let (prefix, id) = path
        .rsplit_once("/s/")
        .filter(|(_, id)| {
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(|| bad("its path does not end in /s/ID"))?;
    let mut base = url.clone();
    base.set_fragment(None);
    base.set_query(None);
    base.set_path(prefix);
    Ok(ParsedLink {
        base: base.as_str().trim_end_matches('/').to_owned(),
        id: id.to_owned(),
        key,
    })
}

/// Opens a share link: asks its server for the ciphertext (which counts one
/// view) and decrypts it with the key in the link. Needs no vault.
///
/// # Errors
/// [`Error::BadShareLink`] for text that is not a link (nothing is sent),
/// [`Error::ShareGone`] when the server no longer has it,
/// [`Error::ShareUndecryptable`] for a wrong key or altered data, and the
/// usual server errors ([`Error::Unreachable`], …).
pub async fn open_link(link: &str) -> Result<SharedItem> {
    let parsed = parse_link(link)?;
    let client = Client::new(&parsed.base)?;
    let answer = client.open_share(&parsed.id).await.map_err(|e| match e {
        SyncError::NotFound => Error::ShareGone,
        other => other.into(),
    })?;
    let plain = open_envelope(&parsed.key, &answer.ciphertext.0).map_err(|e| match e {
        CryptoError::Decrypt | CryptoError::Malformed | CryptoError::UnsupportedVersion(_) => {
            Error::ShareUndecryptable
        }
        other => other.into(),
    })?;
    let item: SharedItem = serde_json::from_slice(&plain).map_err(|_| Error::ShareUndecryptable)?;
    if item.format != SNAPSHOT_FORMAT {
        return Err(Error::Invalid(format!(
            "this share link was made by a newer OpenK (snapshot format {}); update OpenK to open it",
            item.format
        )));
    }
    Ok(item)
}

/// The snapshot of `item`'s chosen fields, as JSON padded with spaces to a
/// multiple of 64 bytes (so the ciphertext's length says less about it).
fn snapshot(item: &super::super::model::Item, fields: Option<&[String]>) -> Result<SharedItem> {
    let all = &item.details.fields;
    let chosen: Vec<&super::super::model::Field> = match fields {
        None => all.iter().collect(),
        Some(labels) => {
            let mut out = Vec::new();
            for label in labels {
                let label = label.trim();
                let matching: Vec<_> = all
                    .iter()
                    .filter(|f| f.label.eq_ignore_ascii_case(label))
                    .collect();
                if matching.is_empty() {
                    let have: Vec<&str> = all.iter().map(|f| f.label.as_str()).collect();
                    return Err(Error::Invalid(format!(
                        "item {:?} has no field {label:?} (it has: {})",
                        item.overview.name,
                        if have.is_empty() {
                            "none".to_owned()
                        } else {
                            have.join(", ")
                        }
                    )));
                }
                for f in matching {
                    if !out
                        .iter()
                        .any(|o: &&super::super::model::Field| std::ptr::eq(*o, f))
                    {
                        out.push(f);
                    }
                }
            }
            out
        }
    };
    Ok(SharedItem {
        format: SNAPSHOT_FORMAT,
        name: item.overview.name.clone(),
        kind: item.overview.kind.as_str().to_owned(),
        fields: chosen
            .into_iter()
            .map(|f| SharedField {
                label: f.label.clone(),
                value: f.value.clone(),
                kind: serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                concealed: f.is_concealed(),
            })
            .collect(),
    })
}

fn padded_json(item: &SharedItem) -> Result<Zeroizing<Vec<u8>>> {
    let mut json = Zeroizing::new(
        serde_json::to_vec(item).map_err(|e| Error::Damaged(format!("snapshot: {e}")))?,
    );
    let padded = json.len().div_ceil(64) * 64;
    json.resize(padded, b' ');
    Ok(json)
}

impl Session {
    /// Makes a share link for one item (a full id, an id prefix or a name):
    /// a snapshot of its name, kind and fields (all, or those named),
    /// encrypted under a fresh key that only the returned URL carries.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an expiry or view count out of range, a
    /// field the item does not have or a snapshot too large for a link;
    /// [`Error::NotConnected`] without a server; the item and server errors.
    pub async fn share_link(&mut self, query: &str, options: &ShareOptions) -> Result<ShareLink> {
        if !(MIN_EXPIRY..=MAX_EXPIRY).contains(&options.expires) {
            return Err(Error::Invalid(
                "a share link expires after 1 hour to 30 days".into(),
            ));
        }
        if let Some(n) = options.max_views
            && !(1..=MAX_VIEWS).contains(&n)
        {
            return Err(Error::Invalid(format!(
                "a share link allows 1 to {MAX_VIEWS} views"
            )));
        }
        let server = self.remote_or_err()?.server.clone();
        let r = self.resolve(query, false).await?;
        let item = self.item(r.id).await?;
        if item.overview.kind == crate::engine::model::ItemKind::Key {
            return Err(Error::Invalid(format!(
                "{:?} is a named key: a share link would hand out its bytes; share the vault it \
                 is in, or export it deliberately with `openk key show NAME --export`",
                item.overview.name
            )));
        }
        let shared = snapshot(&item, options.fields.as_deref())?;
        let key = Key::random();
        let ciphertext = seal_link(&key, &padded_json(&shared)?);
        if ciphertext.len() > MAX_CIPHERTEXT {
            return Err(Error::Invalid(format!(
                "item {:?} is too large for a share link ({} KiB encrypted; a link holds {} KiB): \
                 choose fewer fields",
                item.overview.name,
                ciphertext.len().div_ceil(1024),
                MAX_CIPHERTEXT / 1024
            )));
        }
        let request = CreateShareRequest {
            ciphertext: openk_server::api::types::B64(ciphertext),
            expires_in: options.expires.as_secs(),
            max_views: options.max_views,
        };
        let made = self
            .authed(|c| {
                let request = request.clone();
                async move { c.create_share(&request).await }
            })
            .await?;
        let key_text =
            Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.expose()));
        let url = Zeroizing::new(format!("{server}/s/{}#{}", made.id, key_text.as_str()));
        let link = ShareLink {
            id: made.id,
            url,
            expires_at: made.expires_at,
            max_views: made.max_views,
            item: item.overview.name.clone(),
            fields: shared.fields.iter().map(|f| f.label.clone()).collect(),
        };
        let mut notes = self.link_notes().await?;
        notes.push(LinkNote {
            id: link.id.clone(),
            item_id: item.r.id,
            item: link.item.clone(),
            fields: link.fields.clone(),
            url: link.url.clone(),
        });
        self.save_link_notes(&notes).await?;
        Ok(link)
    }

    /// The account's live share links, newest first, with the item of
    /// those this device made. Notes on links that are gone are dropped.
    ///
    /// # Errors
    /// Server errors; [`Error::Tampered`] when the sealed notes do not open.
    pub async fn share_links(&mut self) -> Result<Vec<ShareInfo>> {
        let shares = self.authed(|c| async move { c.shares().await }).await?;
        let mut notes = self.link_notes().await?;
        let before = notes.len();
        notes.retain(|n| shares.iter().any(|s| s.id == n.id));
        if notes.len() != before {
            self.save_link_notes(&notes).await?;
        }
        Ok(shares
            .into_iter()
            .map(|s| {
                let mut info = ShareInfo::from(s);
                if let Some(n) = notes.iter().find(|n| n.id == info.id) {
                    info.item = Some(n.item.clone());
                    info.fields = Some(n.fields.clone());
                }
                info
            })
            .collect())
    }

    /// The URL (with its key) of a link this device made, to copy again;
    /// `None` for a link made elsewhere (its key never left that device).
    ///
    /// # Errors
    /// [`Error::Tampered`] when the sealed notes do not open.
    pub async fn share_url(&self, id: &str) -> Result<Option<Zeroizing<String>>> {
        Ok(self
            .link_notes()
            .await?
            .into_iter()
            .find(|n| n.id == id)
            .map(|n| n.url))
    }

    async fn link_notes(&self) -> Result<Vec<LinkNote>> {
        let Some(blob) = self.store.meta(NOTES_KEY).await? else {
            return Ok(Vec::new());
        };
        open_json(
            &self.account_key,
            &Aad::share_links(self.header.account_id),
            &blob,
        )
        .map_err(|_| Error::Tampered("the notes on this device's share links".into()))
    }

    async fn save_link_notes(&self, notes: &[LinkNote]) -> Result<()> {
        let blob = seal_json(
            &self.account_key,
            &Aad::share_links(self.header.account_id),
            &notes,
        );
        self.store.set_meta(NOTES_KEY, Some(&blob)).await?;
        Ok(())
    }

    /// Revokes one of the account's links: it is deleted on the server at once.
    ///
    /// # Errors
    /// [`Error::NoShare`] when the account has no live link of that id.
    pub async fn revoke_share(&mut self, id: &str) -> Result<()> {
        let id = id.trim().to_owned();
        let wanted = id.clone();
        self.authed(|c| {
            let id = id.clone();
            async move { c.revoke_share(&id).await }
        })
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::NoShare(wanted),
            other => other,
        })?;
        let mut notes = self.link_notes().await?;
        notes.retain(|n| n.id != id);
        self.save_link_notes(&notes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn links_parse_into_server_id_and_key() {
        let p = parse_link(&format!("https://keys.example.org/s/AbC-_12#{KEY}")).expect("parses");
        assert_eq!(p.base, "https://keys.example.org");
        assert_eq!(p.id, "AbC-_12");
        assert_eq!(p.key.expose()[31], 31);
        // A server under a path prefix, padding and white space around.
        let p =
            parse_link(&format!("  http://127.0.0.1:8080/openk/s/xyz#{KEY}=\n")).expect("parses");
        assert_eq!(p.base, "http://127.0.0.1:8080/openk");
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        for (link, says) in [
            ("not a url".to_owned(), "not a URL"),
            (format!("ftp://h/s/x#{KEY}"), "http(s)"),
            ("https://h/s/abc".to_owned(), "missing"),
            ("https://h/s/abc#".to_owned(), "missing"),
            ("https://h/s/abc#AAEC".to_owned(), "cut short"),
            (format!("https://h/s/abc#{}", &KEY[..40]), "cut short"),
            (format!("https://h/x/abc#{KEY}"), "/s/ID"),
            (format!("https://h/s/#{KEY}"), "/s/ID"),
            (format!("https://h/s/a%20b#{KEY}"), "/s/ID"),
        ] {
            match parse_link(&link) {
                Err(Error::BadShareLink(why)) => assert!(why.contains(says), "{link}: {why}"),
                Err(e) => panic!("{link}: {e}"),
                Ok(_) => panic!("{link}: accepted"),
            }
        }
    }

    /// The device that made a link names its item and copies it again;
    /// another device of the account lists it without either; revoking
    /// forgets the note.
    #[tokio::test]
    async fn this_device_remembers_its_links_item_and_url() {
        use crate::engine::test_fixtures::{FAST_KDF, login, password};
        let server = crate::engine::test_server::TestServer::start("memory").await;
        let tmp = tempfile::tempdir().expect("tmp");
        let mut s = Session::init(&tmp.path().join("a"), password(), FAST_KDF)
            .await
            .expect("init");
        s.register(&server.url, "links@example.org", "laptop")
            .await
            .expect("register");
        s.add(login("GitHub", "octo", "pw")).await.expect("add");
        let options = ShareOptions {
            fields: Some(vec!["username".into()]),
            ..ShareOptions::default()
        };
        let made = s.share_link("GitHub", &options).await.expect("link");
        let listed = s.share_links().await.expect("links");
        assert_eq!(listed[0].item.as_deref(), Some("GitHub"));
        assert_eq!(listed[0].fields, Some(vec!["username".to_owned()]));
        let url = s.share_url(&made.id).await.expect("notes");
        assert_eq!(url.as_deref().map(String::as_str), Some(made.url.as_str()));

        let secret_key = s
            .emergency_kit()
            .lines()
            .find_map(|l| l.strip_prefix("Secret Key:"))
            .map(|k| k.trim().to_owned())
            .expect("secret key");
        let mut other = super::super::login(
            &tmp.path().join("b"),
            &server.url,
            "links@example.org",
            password(),
            &secret_key,
            true,
            "phone",
        )
        .await
        .expect("second device");
        let there = other.share_links().await.expect("links");
        assert_eq!(
            (there[0].id.as_str(), there[0].item.as_ref()),
            (made.id.as_str(), None)
        );
        assert!(other.share_url(&made.id).await.expect("notes").is_none());

        s.revoke_share(&made.id).await.expect("revoke");
        assert!(s.share_url(&made.id).await.expect("notes").is_none());
        assert!(s.share_links().await.expect("links").is_empty());
    }

    #[test]
    fn expiries() {
        assert_eq!(parse_expiry("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_expiry("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_expiry("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_expiry("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_expiry("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_expiry("24"), Ok(Duration::from_secs(86400)));
        for bad in ["31d", "59m", "0h", "5y", "h", "", "-1h", "1.5h"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_link() {
        let link = ShareLink {
            id: "abc".into(),
            url: Zeroizing::new(format!("https://h/s/abc#{KEY}")),
            expires_at: "2026-12-11T00:00:00Z".into(),
            max_views: Some(1),
            item: "GitHub".into(),
            fields: vec!["password".into()],
        };
        let shown = format!("{link:?} {link:#?}");
        assert!(!shown.contains(KEY) && !shown.contains("GitHub"), "{shown}");
        assert!(shown.contains("abc"), "{shown}");
    }

    #[test]
    fn the_snapshot_round_trips_padded() {
        let item = SharedItem {
            format: SNAPSHOT_FORMAT,
            name: "GitHub".into(),
            kind: "login".into(),
            fields: vec![SharedField {
                label: "password".into(),
                value: Value::new("hunter2"),
                kind: "secret".into(),
                concealed: true,
            }],
        };
        let json = padded_json(&item).expect("json");
        assert_eq!(json.len() % 64, 0);
        let key = Key::random();
        let blob = seal_link(&key, &json);
        let back: SharedItem =
            serde_json::from_slice(&open_envelope(&key, &blob).expect("opens")).expect("parses");
        assert_eq!(back.fields[0].value.expose(), "hunter2");
        assert!(back.fields[0].concealed);
    }
}
