//! Items as the engine hands them to front ends: a kind, a name, labelled
//! fields, tags, a folder and timestamps; split on save into an encrypted
//! overview (what lists and search need) and encrypted details (every field).

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// What an item is; decides its standard fields and the default for `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    Login,
    Note,
    Card,
    Identity,
    ApiKey,
    SshKey,
    Custom,
    /// A named key (`openk key create`): made and changed only by `openk
    /// key`, never by `openk add` or `openk edit`.
    #[value(skip)]
    Key,
}

impl ItemKind {
    pub const ALL: [Self; 7] = [
        Self::Login,
        Self::Note,
        Self::Card,
        Self::Identity,
        Self::ApiKey,
        Self::SshKey,
        Self::Custom,
    ];

    /// Every kind, with the named key (which only `openk key create` makes).
    pub const EVERY: [Self; 8] = [
        Self::Login,
        Self::Note,
        Self::Card,
        Self::Identity,
        Self::ApiKey,
        Self::SshKey,
        Self::Custom,
        Self::Key,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Note => "note",
            Self::Card => "card",
            Self::Identity => "identity",
            Self::ApiKey => "api-key",
            Self::SshKey => "ssh-key",
            Self::Custom => "custom",
            Self::Key => "key",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::EVERY
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    /// The field `openk get ITEM` prints when no field is named.
    #[must_use]
    pub fn primary_field(self) -> &'static str {
        match self {
            Self::Login | Self::Custom => label::PASSWORD,
            Self::Note => label::NOTES,
            Self::Card => label::NUMBER,
            Self::Identity => label::FULL_NAME,
            Self::ApiKey => label::KEY,
            Self::SshKey => label::PRIVATE_KEY,
            Self::Key => label::KEY_MATERIAL,
        }
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Standard field labels. Custom fields use any other label.
pub mod label {
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
    pub const URL: &str = "url";
    pub const TOTP: &str = "totp";
    pub const NOTES: &str = "notes";
    pub const CARDHOLDER: &str = "cardholder";
    pub const NUMBER: &str = "number";
    pub const EXPIRY: &str = "expiry";
    pub const CVV: &str = "cvv";
    pub const PIN: &str = "pin";
    pub const FULL_NAME: &str = "full name";
    pub const EMAIL: &str = "email";
    pub const PHONE: &str = "phone";
    pub const ADDRESS: &str = "address";
    pub const BIRTHDAY: &str = "birthday";
    pub const COMPANY: &str = "company";
    pub const KEY: &str = "key";
    pub const PRIVATE_KEY: &str = "private key";
    pub const PUBLIC_KEY: &str = "public key";
    pub const FINGERPRINT: &str = "fingerprint";
    pub const PASSPHRASE: &str = "passphrase";
    /// A named key's versions (hidden; only `openk key` reads it).
    pub const KEY_MATERIAL: &str = "key material";
    pub const KEY_TYPE: &str = "type";
    pub const KEY_ID: &str = "key id";
    pub const KEY_VERSION: &str = "version";
    pub const KEY_MIN_VERSION: &str = "min version";
}

/// The standard fields of a kind, in the order forms show them (the CLI's
/// flags and the TUI's add form both follow this list).
#[must_use]
pub fn standard_fields(kind: ItemKind) -> &'static [(&'static str, FieldKind)] {
    use FieldKind::{Email, Multiline, Secret, Text, Totp, Url};
    match kind {
        ItemKind::Login => &[
            (label::USERNAME, Text),
            (label::PASSWORD, Secret),
            (label::URL, Url),
            (label::TOTP, Totp),
            (label::NOTES, Multiline),
        ],
        ItemKind::Note | ItemKind::Custom => &[(label::NOTES, Multiline)],
        ItemKind::Card => &[
            (label::CARDHOLDER, Text),
            (label::NUMBER, Secret),
            (label::EXPIRY, Text),
            (label::CVV, Secret),
            (label::PIN, Secret),
            (label::NOTES, Multiline),
        ],
        ItemKind::Identity => &[
            (label::FULL_NAME, Text),
            (label::EMAIL, Email),
            (label::PHONE, Text),
            (label::ADDRESS, Multiline),
            (label::BIRTHDAY, Text),
            (label::COMPANY, Text),
            (label::NOTES, Multiline),
        ],
        ItemKind::ApiKey => &[
            (label::USERNAME, Text),
            (label::KEY, Secret),
            (label::URL, Url),
            (label::NOTES, Multiline),
        ],
        ItemKind::SshKey => &[
            (label::PRIVATE_KEY, Secret),
            (label::PUBLIC_KEY, Text),
            (label::FINGERPRINT, Text),
            (label::PASSPHRASE, Secret),
            (label::NOTES, Multiline),
        ],
        ItemKind::Key => &[
            (label::KEY_TYPE, Text),
            (label::KEY_ID, Text),
            (label::KEY_VERSION, Text),
            (label::KEY_MIN_VERSION, Text),
            (label::KEY_MATERIAL, Secret),
        ],
    }
}

/// Where a field goes in an item: standard fields in a familiar order,
/// custom fields next, notes last (sort key).
#[must_use]
pub fn field_rank(field_label: &str) -> u8 {
    match field_label {
        label::USERNAME | label::CARDHOLDER | label::FULL_NAME | label::PRIVATE_KEY => 0,
        label::PASSWORD | label::NUMBER | label::EMAIL | label::KEY | label::PUBLIC_KEY => 1,
        label::URL | label::EXPIRY | label::PHONE | label::FINGERPRINT => 2,
        label::TOTP | label::CVV | label::ADDRESS | label::PASSPHRASE => 3,
        label::PIN | label::BIRTHDAY | label::COMPANY => 4,
        label::NOTES => 6,
        _ => 5,
    }
}

/// How a field is shown and treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    /// Masked until revealed; never in an overview.
    Secret,
    Url,
    Email,
    /// A TOTP seed (otpauth URI); shown as the current code.
    Totp,
    Multiline,
    /// An attached file: the label is its file name, the value its bytes in
    /// standard base64 (attachments from KeePass, 1Password, Bitwarden and
    /// OpenK archives). Concealed like a secret.
    File,
}

impl FieldKind {
    /// Secret and TOTP values are masked unless the user asks for them.
    #[must_use]
    pub fn is_concealed(self) -> bool {
        matches!(self, Self::Secret | Self::Totp | Self::File)
    }
}

/// A field value; wiped from memory on drop and never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Value(Zeroizing<String>);

impl Value {
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The plaintext. Callers print it only when the user asked for it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Value(***)")
    }
}

/// One labelled value of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub label: String,
    pub value: Value,
    pub kind: FieldKind,
    /// Hidden fields are masked like secrets even when their kind is not.
    #[serde(default)]
    pub hidden: bool,
}

impl Field {
    #[must_use]
    pub fn new(label: &str, value: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            label: label.to_owned(),
            value: Value::new(value),
            kind,
            hidden: false,
        }
    }

    #[must_use]
    pub fn is_concealed(&self) -> bool {
        self.hidden || self.kind.is_concealed()
    }
}

/// A TOTP code at this moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpNow {
    pub code: String,
    pub seconds_left: u64,
    pub period: u64,
    pub digits: u32,
}

impl Field {
    /// The current code of a TOTP field.
    ///
    /// # Errors
    /// A message when the field is not TOTP or its seed does not parse.
    pub fn totp_now(&self) -> Result<TotpNow, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.totp_at(now)
    }

    /// The code of a TOTP field at `unix_seconds` (a front end with its own
    /// clock), and the seconds it stays valid.
    ///
    /// # Errors
    /// As [`Field::totp_now`].
    pub fn totp_at(&self, unix_seconds: u64) -> Result<TotpNow, String> {
        if self.kind != FieldKind::Totp {
            return Err(format!("field {:?} is not a TOTP seed", self.label));
        }
        let t = crate::crypto::totp::Totp::parse(self.value.expose())
            .map_err(|e| format!("the stored TOTP seed is invalid: {e}"))?;
        let period = t.period.max(1);
        let (code, seconds_left) = (t.code_at(unix_seconds), period - unix_seconds % period);
        Ok(TotpNow {
            code,
            seconds_left,
            period: t.period,
            digits: t.digits,
        })
    }
}

/// What lists and search need: decrypted for every item when a vault opens,
/// so it holds no secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub name: String,
    pub kind: ItemKind,
    /// Username for logins, email for identities, last four digits for cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    #[serde(default)]
    pub favorite: bool,
    #[serde(default)]
    pub has_totp: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trashed_at: Option<i64>,
    /// The device that saved this version (breaks ties when two devices
    /// changed the same field at the same millisecond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<Uuid>,
    /// Set when a sync had to choose between two devices' edits; cleared by
    /// the next edit (`openk edit ITEM --resolve` clears it alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<SyncConflict>,
    /// Where an imported item came from: `FORMAT:ID` with the other tool's
    /// id for it (`kdbx:…`, `bitwarden-json:…`), so that importing the same
    /// file again adds nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Overview {
    /// An overview with a name and a kind and nothing else: no fields
    /// derived, no tags, no folder, no times.
    #[must_use]
    pub fn new(name: impl Into<String>, kind: ItemKind) -> Self {
        Self {
            name: name.into(),
            kind,
            subtitle: None,
            urls: Vec::new(),
            tags: Vec::new(),
            folder: None,
            favorite: false,
            has_totp: false,
            created_at: 0,
            updated_at: 0,
            trashed_at: None,
            updated_by: None,
            conflict: None,
            source: None,
        }
    }
}

/// What a sync merge decided for the user to check: the labels of the
/// fields both devices changed, and the version in history that holds the
/// other side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncConflict {
    /// Field labels (or `name`, `tags`, `folder`, `favorite`, `trash`).
    pub fields: Vec<String>,
    /// The version whose values lost (kept in history).
    pub other_version: u64,
    /// What happened, in words.
    pub note: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// Every field of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub fields: Vec<Field>,
}

/// Where an item lives and which version this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemRef {
    pub id: Uuid,
    pub vault_id: Uuid,
    pub version: u64,
}

/// A listed item: its place and its decrypted overview.
#[derive(Debug, Clone)]
pub struct Entry {
    pub r: ItemRef,
    pub overview: Overview,
}

/// A whole decrypted item.
#[derive(Debug, Clone)]
pub struct Item {
    pub r: ItemRef,
    pub overview: Overview,
    pub details: Details,
}

impl Item {
    /// The first field with this label (case-insensitive).
    #[must_use]
    pub fn field(&self, label: &str) -> Option<&Field> {
        self.details
            .fields
            .iter()
            .find(|f| f.label.eq_ignore_ascii_case(label))
    }

    /// Every field with this label (case-insensitive), e.g. all URLs.
    pub fn fields_named<'a>(&'a self, label: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.details
            .fields
            .iter()
            .filter(move |f| f.label.eq_ignore_ascii_case(label))
    }
}

/// Builds the overview fields that derive from the details.
pub(crate) fn derive_overview(kind: ItemKind, details: &Details, overview: &mut Overview) {
    let first = |label: &str| {
        details
            .fields
            .iter()
            .find(|f| f.label.eq_ignore_ascii_case(label))
            .map(|f| f.value.expose().to_owned())
            .filter(|v| !v.is_empty())
    };
    overview.kind = kind;
    overview.subtitle = match kind {
        ItemKind::Card => first(label::NUMBER).map(|n| {
            let digits: Vec<char> = n.chars().filter(char::is_ascii_digit).collect();
            let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("•••• {tail}")
        }),
        ItemKind::Identity => first(label::EMAIL).or_else(|| first(label::FULL_NAME)),
        ItemKind::SshKey => first(label::FINGERPRINT),
        ItemKind::Key => first(label::KEY_TYPE).map(|t| match first(label::KEY_VERSION) {
            Some(v) => format!("{t} · v{v}"),
            None => t,
        }),
        _ => first(label::USERNAME),
    };
    overview.urls = details
        .fields
        .iter()
        .filter(|f| f.kind == FieldKind::Url && !f.value.expose().is_empty())
        .map(|f| f.value.expose().to_owned())
        .collect();
    overview.has_totp = details.fields.iter().any(|f| f.kind == FieldKind::Totp);
}

pub use crate::util::time::now_millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_debug_is_redacted() {
        let f = Field::new("password", "hunter2", FieldKind::Secret);
        assert!(!format!("{f:?}").contains("hunter2"));
    }

    #[test]
    fn kinds_round_trip_through_text() {
        for k in ItemKind::EVERY {
            assert_eq!(ItemKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(ItemKind::parse("API-KEY"), Some(ItemKind::ApiKey));
        assert_eq!(ItemKind::parse("nope"), None);
    }

    #[test]
    fn overview_derives_subtitle_without_secrets() {
        let details = Details {
            fields: vec![
                Field::new(label::NUMBER, "4111 1111 1111 4242", FieldKind::Secret),
                Field::new(label::CVV, "123", FieldKind::Secret),
            ],
        };
        let mut o = Overview::new("Visa", ItemKind::Card);
        derive_overview(ItemKind::Card, &details, &mut o);
        assert_eq!(o.subtitle.as_deref(), Some("•••• 4242"));
        let json = serde_json::to_string(&o).expect("json");
        assert!(!json.contains("4111") && !json.contains("123"));
    }
}
