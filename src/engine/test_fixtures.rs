//! What the crate's own tests share: the cheapest key derivation, the test
//! password and item drafts.

use super::model::{Field, FieldKind, ItemKind, label};
use super::{ItemDraft, KdfParams, SecretString};

/// Argon2id at its cheapest, so that a test vault opens at once. Below the
/// floor on purpose: never for a real vault.
pub(crate) const FAST_KDF: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// The master password of the tests' vaults.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// [`PASSWORD`] as the engine takes it.
pub(crate) fn password() -> SecretString {
    SecretString::from(PASSWORD.to_owned())
}

/// A draft of `kind` with these fields, no tags, no folder.
pub(crate) fn draft(kind: ItemKind, name: &str, fields: Vec<Field>) -> ItemDraft {
    ItemDraft {
        kind,
        name: name.to_owned(),
        fields,
        tags: Vec::new(),
        folder: None,
        favorite: false,
    }
}

/// A login draft with a username and a password.
pub(crate) fn login(name: &str, user: &str, password: &str) -> ItemDraft {
    draft(
        ItemKind::Login,
        name,
        vec![
            Field::new(label::USERNAME, user, FieldKind::Text),
            Field::new(label::PASSWORD, password, FieldKind::Secret),
        ],
    )
}
