//! The Emergency Kit.

use std::path::Path;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::Session;
use crate::crypto::SecretKey;

impl Session {
    /// The Secret Key as the user writes it down (`OK1-…`), for a front end
    /// that shows it once after `init`, or next to the Emergency Kit.
    #[must_use]
    pub fn secret_key_display(&self) -> Zeroizing<String> {
        self.secret_key.display()
    }

    /// The Emergency Kit: everything besides the master password needed to
    /// open this vault elsewhere.
    #[must_use]
    pub fn emergency_kit(&self) -> Zeroizing<String> {
        emergency_kit_text(
            &self.secret_key,
            self.header.account_id,
            &self.dir,
            self.header.created_at,
        )
    }
}

/// The Emergency Kit text.
#[must_use]
pub fn emergency_kit_text(
    secret_key: &SecretKey,
    account_id: Uuid,
    dir: &Path,
    created_at: i64,
) -> Zeroizing<String> {
    let created = time::OffsetDateTime::from_unix_timestamp(created_at / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let sk = secret_key.display();
    Zeroizing::new(format!(
        "OpenK Emergency Kit
===================

Account ID:   {account_id}
Created:      {created}
Vault:        {dir}
Secret Key:   {sk}

Master password: ________________________________
(write it here by hand only if this sheet is kept somewhere safe)

Opening your vault needs BOTH your master password and this Secret Key.
Nobody, not even OpenK, can recover them for you.

- Print this kit or write it down, and keep it offline: a safe, a locked
  drawer, with your important papers. Delete any digital copy you do not need.
- On a new computer, copy the vault directory, then either put the Secret Key
  into <vault>/secret.key or set OPENK_SECRET_KEY=<Secret Key> once (the
  first unlock saves it to <vault>/secret.key).
- `openk kit` shows this kit again (after unlocking).
",
        dir = dir.display(),
        sk = sk.as_str(),
    ))
}
