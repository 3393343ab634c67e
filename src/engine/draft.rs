//! Checking drafts and patches before they are sealed, and describing
//! what changed between two versions.

use super::error::{Error, Result};
use super::model::{self, Details, Field, FieldKind, Item, Overview, label};
use super::{ItemDraft, ItemPatch};
use crate::crypto::totp::Totp;

/// Longest item name, field label and field value accepted.
const MAX_NAME: usize = 1024;
pub(super) const MAX_LABEL: usize = 256;
const MAX_VALUE: usize = 256 * 1024;
/// Largest attachment (decoded bytes): an item's details must fit the
/// server's 1 MiB record limit once base64 and sealed.
pub const MAX_FILE: usize = 512 * 1024;

pub(super) fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::NoName);
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::Invalid(format!(
            "the name is longer than {MAX_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

pub(super) fn clean_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() {
            return Err(Error::Invalid("a tag cannot be empty".into()));
        }
        if t.chars().any(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "tag {t:?} contains a space; use - or _ instead"
            )));
        }
        if t.chars().count() > MAX_LABEL {
            return Err(Error::Invalid(format!(
                "a tag is longer than {MAX_LABEL} characters"
            )));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

pub(super) fn clean_folder(folder: Option<&str>) -> Result<Option<String>> {
    match folder.map(str::trim) {
        None | Some("") => Ok(None),
        Some(f) if f.chars().count() > MAX_LABEL => Err(Error::Invalid(format!(
            "the folder name is longer than {MAX_LABEL} characters"
        ))),
        Some(f) => Ok(Some(f.to_owned())),
    }
}

/// The part of an item that a validation error is about, so that a form
/// can put the cursor on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemPart {
    Name,
    Tags,
    Folder,
    /// The field with this label.
    Field(String),
}

/// Checks a draft exactly as [`Session::add`](super::Session::add) would, without a vault:
/// `Err` names the part that is wrong and says why.
///
/// # Errors
/// The first invalid part and the engine's message for it.
pub fn check_draft(draft: &ItemDraft) -> std::result::Result<(), (ItemPart, String)> {
    let at = |part: ItemPart| move |e: Error| (part, e.to_string());
    clean_name(&draft.name).map_err(at(ItemPart::Name))?;
    clean_tags(&draft.tags).map_err(at(ItemPart::Tags))?;
    clean_folder(draft.folder.as_deref()).map_err(at(ItemPart::Folder))?;
    for f in &draft.fields {
        clean_field(f.clone()).map_err(at(ItemPart::Field(f.label.clone())))?;
    }
    Ok(())
}

/// Checks a field and brings TOTP seeds to their canonical otpauth URI.
pub(super) fn clean_field(mut f: Field) -> Result<Field> {
    f.label = f.label.trim().to_owned();
    if f.label.is_empty() {
        return Err(Error::Invalid("a field needs a label (LABEL=VALUE)".into()));
    }
    if f.label.chars().count() > MAX_LABEL {
        return Err(Error::Invalid(format!(
            "field label is longer than {MAX_LABEL} characters"
        )));
    }
    if f.kind == FieldKind::File {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f.value.expose())
            .map_err(|_| {
                Error::Invalid(format!("attachment {:?} is not valid base64", f.label))
            })?;
        if bytes.len() > MAX_FILE {
            return Err(Error::Invalid(format!(
                "attachment {:?} is larger than {} KiB",
                f.label,
                MAX_FILE / 1024
            )));
        }
        return Ok(f);
    }
    if f.value.expose().len() > MAX_VALUE {
        return Err(Error::Invalid(format!(
            "the value of field {:?} is larger than {} KiB",
            f.label,
            MAX_VALUE / 1024
        )));
    }
    if f.kind == FieldKind::Totp {
        let totp = Totp::parse(f.value.expose())
            .map_err(|e| Error::Invalid(format!("the TOTP secret is not valid: {e}")))?;
        f.value = model::Value::new(totp.to_uri());
    }
    Ok(f)
}

pub(super) fn apply_patch(item: &Item, patch: &ItemPatch) -> Result<(Overview, Details)> {
    let mut overview = item.overview.clone();
    let mut fields = item.details.fields.clone();
    for label in &patch.remove_fields {
        let before = fields.len();
        fields.retain(|f| !f.label.eq_ignore_ascii_case(label.trim()));
        if fields.len() == before {
            return Err(Error::Invalid(format!(
                "the item has no field {label:?} to remove"
            )));
        }
    }
    if let Some(urls) = &patch.urls {
        let at = fields
            .iter()
            .position(|f| f.kind == FieldKind::Url)
            .unwrap_or(fields.len());
        fields.retain(|f| f.kind != FieldKind::Url);
        let new: Vec<Field> = urls
            .iter()
            .map(|u| Field::new(label::URL, u.trim(), FieldKind::Url))
            .collect();
        let at = at.min(fields.len());
        fields.splice(at..at, new);
    }
    for f in &patch.set_fields {
        let f = clean_field(f.clone())?;
        match fields
            .iter_mut()
            .find(|o| o.label.eq_ignore_ascii_case(&f.label))
        {
            Some(existing) => *existing = f,
            None => fields.push(f),
        }
    }
    if let Some(name) = &patch.name {
        overview.name = clean_name(name)?;
    }
    if let Some(tags) = &patch.tags {
        overview.tags = clean_tags(tags)?;
    }
    if let Some(folder) = &patch.folder {
        overview.folder = clean_folder(folder.as_deref())?;
    }
    if let Some(fav) = patch.favorite {
        overview.favorite = fav;
    }
    let details = Details { fields };
    model::derive_overview(item.overview.kind, &details, &mut overview);
    Ok((overview, details))
}

/// What changed between two versions, by field label (never values).
pub(super) fn describe_changes(old: &Item, new: &Item) -> Vec<String> {
    let mut out = Vec::new();
    let (o, n) = (&old.overview, &new.overview);
    if o.name != n.name {
        out.push("renamed".to_owned());
    }
    match (o.trashed_at, n.trashed_at) {
        (None, Some(_)) => out.push("moved to trash".to_owned()),
        (Some(_), None) => out.push("restored from trash".to_owned()),
        _ => {}
    }
    if o.tags != n.tags {
        out.push("tags changed".to_owned());
    }
    if o.folder != n.folder {
        out.push("folder changed".to_owned());
    }
    if o.favorite != n.favorite {
        out.push(
            if n.favorite {
                "marked favorite"
            } else {
                "unmarked favorite"
            }
            .to_owned(),
        );
    }
    let labels = |item: &Item| {
        let mut l: Vec<String> = item
            .details
            .fields
            .iter()
            .map(|f| f.label.to_lowercase())
            .collect();
        l.dedup();
        l
    };
    let (ol, nl) = (labels(old), labels(new));
    for l in &nl {
        let before: Vec<&Field> = old.fields_named(l).collect();
        let after: Vec<&Field> = new.fields_named(l).collect();
        if before.is_empty() {
            out.push(format!("added {l}"));
        } else if before != after {
            out.push(format!("changed {l}"));
        }
    }
    for l in ol.iter().filter(|l| !nl.contains(l)) {
        out.push(format!("removed {l}"));
    }
    if out.is_empty() {
        out.push("no visible change".to_owned());
    }
    out
}
