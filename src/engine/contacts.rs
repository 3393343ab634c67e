//! Other accounts' identities (DESIGN §7): their public keys as the server
//! publishes them, checked against the account's self-signature, pinned on
//! this device the first time they are seen, and shown as a fingerprint two
//! people compare out of band. A key that differs from the pinned one is an
//! alarm: sharing to that account waits until the user confirms the new
//! fingerprint ([`Session::verify_contact`]).
//!
//! The pins live in the vault's meta table as one blob sealed with the
//! account key (like the session tokens): a file edit cannot swap a pinned
//! key without the vault reporting it as tampered.

use openk_server::api::types::{self as wire, IdentityRequest, IdentityResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{Error, Result};
use super::model::now_millis;
use super::{Session, open_json, seal_json};
use crate::crypto::{Aad, PublicKeys};

/// The meta key of the sealed pins.
pub(super) const CONTACTS_KEY: &str = "contacts";

/// The version of an account's first keys (a key rotation raises it).
pub const FIRST_KEY_VERSION: u32 = 1;

/// How far this device trusts an account's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Trust {
    /// Seen for the first time just now, and pinned: not yet compared in
    /// person.
    New,
    /// The keys this device pinned when it first saw them; not compared in
    /// person.
    Pinned,
    /// Pinned and confirmed: the user compared the fingerprint out of band.
    Verified,
    /// The server shows other keys than the pinned ones (`pinned` is the
    /// pinned fingerprint): an alarm, sharing waits for a confirmation.
    Changed { pinned: String },
    /// This account.
    Me,
}

impl Trust {
    /// The word for it in lists.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::New => "new (pinned now)",
            Self::Pinned => "pinned",
            Self::Verified => "verified",
            Self::Changed { .. } => "CHANGED",
            Self::Me => "you",
        }
    }
}

/// Another account's identity as this device sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub email: String,
    pub account_id: Uuid,
    pub key_version: u32,
    /// What two people compare: eight groups of four digits.
    pub fingerprint: String,
    pub trust: Trust,
    /// The keys shown (the fingerprint's): what sharing seals to, exactly.
    #[serde(skip)]
    pub(crate) keys: PublicKeys,
}

impl Contact {
    /// Whether keys can be shared to this account now.
    ///
    /// # Errors
    /// [`Error::KeyChanged`] while its keys differ from the pinned ones.
    pub fn check_shareable(&self) -> Result<()> {
        match &self.trust {
            Trust::Changed { pinned } => Err(Error::KeyChanged {
                email: self.email.clone(),
                pinned: pinned.clone(),
                now: self.fingerprint.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// One pinned account, as sealed in the vault.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pin {
    email: String,
    account_id: Uuid,
    key_version: u32,
    x25519: wire::B64,
    ed25519: wire::B64,
    verified: bool,
    pinned_at: i64,
}

impl Pin {
    fn keys(&self) -> Option<PublicKeys> {
        Some(PublicKeys {
            x25519: self.x25519.0.as_slice().try_into().ok()?,
            ed25519: self.ed25519.0.as_slice().try_into().ok()?,
        })
    }

    fn of(c: &Contact, verified: bool) -> Self {
        Self {
            email: c.email.clone(),
            account_id: c.account_id,
            key_version: c.key_version,
            x25519: wire::B64(c.keys.x25519.to_vec()),
            ed25519: wire::B64(c.keys.ed25519.to_vec()),
            verified,
            pinned_at: now_millis(),
        }
    }

    fn contact(&self) -> Option<Contact> {
        let keys = self.keys()?;
        Some(Contact {
            email: self.email.clone(),
            account_id: self.account_id,
            key_version: self.key_version,
            fingerprint: keys.fingerprint(),
            trust: if self.verified {
                Trust::Verified
            } else {
                Trust::Pinned
            },
            keys,
        })
    }
}

/// The digits of a fingerprint as typed (spaces, dashes and case aside).
pub(super) fn digits(fp: &str) -> String {
    fp.chars().filter(char::is_ascii_digit).collect()
}

/// The identity the server answered for `email`, checked: the address
/// asked for, keys of the right length, and a self-signature that verifies
/// with the Ed25519 key it names. Trust in those keys is the pin's business.
fn checked(email: &str, r: &IdentityResponse) -> Result<Contact> {
    let untrusted = |why: &str| Error::Untrusted(format!("the server's keys for {email} {why}"));
    if r.email != email {
        return Err(untrusted("name another address"));
    }
    let keys = PublicKeys {
        x25519: r
            .public_x25519
            .0
            .as_slice()
            .try_into()
            .map_err(|_| untrusted("are malformed"))?,
        ed25519: r
            .public_ed25519
            .0
            .as_slice()
            .try_into()
            .map_err(|_| untrusted("are malformed"))?,
    };
    let Some(signature) = &r.signature else {
        return Err(untrusted(
            "carry no self-signature (its owner's OpenK publishes one at their next login)",
        ));
    };
    keys.verify_identity(r.account_id, email, r.key_version, &signature.0)
        .map_err(|_| untrusted("do not carry a valid self-signature"))?;
    Ok(Contact {
        email: email.to_owned(),
        account_id: r.account_id,
        key_version: r.key_version,
        fingerprint: keys.fingerprint(),
        trust: Trust::New,
        keys,
    })
}

impl Session {
    /// This account's fingerprint (what `openk status` shows, to compare
    /// with the people one shares with).
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.keypair.public().fingerprint()
    }

    /// The contacts pinned on this device, by email.
    ///
    /// # Errors
    /// [`Error::Tampered`] when the sealed pins do not open; database errors.
    pub async fn contacts(&self) -> Result<Vec<Contact>> {
        let mut out: Vec<Contact> = self.pins().await?.iter().filter_map(Pin::contact).collect();
        out.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(out)
    }

    /// The account with this email, as the server shows it and as this
    /// device trusts it: pinned now if it was never seen here
    /// ([`Trust::New`]), [`Trust::Changed`] if the server shows other keys
    /// than the pinned ones (the pin is kept).
    ///
    /// # Errors
    /// [`Error::NoSuchAccount`]; [`Error::Untrusted`] for keys without a
    /// valid self-signature; not logged in; network errors.
    pub async fn contact(&mut self, email: &str) -> Result<Contact> {
        let mut current = self.fetch_identity(email).await?;
        if current.trust == Trust::Me {
            return Ok(current);
        }
        let mut pins = self.pins().await?;
        match pins.iter().find(|p| p.email == current.email) {
            None => {
                pins.push(Pin::of(&current, false));
                self.save_pins(&pins).await?;
                tracing::info!(contact = %current.account_id, "pinned a contact's keys");
            }
            Some(pin) => {
                let same = pin.account_id == current.account_id
                    && pin.keys() == Some(current.keys.clone());
                current.trust = if !same {
                    tracing::warn!(contact = %current.account_id, "a contact's keys changed");
                    Trust::Changed {
                        pinned: pin.keys().map_or_else(String::new, |k| k.fingerprint()),
                    }
                } else if pin.verified {
                    Trust::Verified
                } else {
                    Trust::Pinned
                };
            }
        }
        Ok(current)
    }

    /// Confirms the account's current keys with the fingerprint its owner
    /// read out: pins them (replacing a changed pin) as verified.
    ///
    /// # Errors
    /// [`Error::FingerprintMismatch`] when `fingerprint` is not the one of
    /// the keys the server shows (nothing is pinned); as [`Self::contact`].
    pub async fn verify_contact(&mut self, email: &str, fingerprint: &str) -> Result<Contact> {
        let mut current = self.fetch_identity(email).await?;
        if digits(fingerprint) != digits(&current.fingerprint) {
            return Err(Error::FingerprintMismatch {
                email: current.email,
                actual: current.fingerprint,
            });
        }
        if current.trust == Trust::Me {
            return Ok(current);
        }
        let mut pins = self.pins().await?;
        pins.retain(|p| p.email != current.email);
        pins.push(Pin::of(&current, true));
        self.save_pins(&pins).await?;
        tracing::info!(contact = %current.account_id, "verified a contact's keys");
        current.trust = Trust::Verified;
        Ok(current)
    }

    /// Publishes this account's self-signature when the server has none
    /// (an account registered before identities were signed).
    pub(super) async fn publish_identity(&mut self, published: Option<&wire::B64>) -> Result<()> {
        if published.is_some() {
            return Ok(());
        }
        let email = self.remote_or_err()?.email.clone();
        let signature =
            self.keypair
                .sign_identity(self.header.account_id, &email, FIRST_KEY_VERSION);
        let req = IdentityRequest {
            key_version: FIRST_KEY_VERSION,
            signature: wire::B64(signature.to_vec()),
        };
        self.authed(|c| {
            let req = req.clone();
            async move { c.put_identity(&req).await }
        })
        .await?;
        tracing::info!("published the account's identity signature");
        Ok(())
    }

    /// One fetch of the identity the server shows for `email`, checked
    /// ([`checked`]); this account's own is compared with its own keys.
    async fn fetch_identity(&mut self, email: &str) -> Result<Contact> {
        let email =
            openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
        let asked = email.clone();
        let answer = self
            .authed(|c| {
                let email = asked.clone();
                async move { c.identity(&email).await }
            })
            .await
            .map_err(|e| match e {
                // The lookup's only 404.
                Error::NotFound(_) | Error::Remote(crate::sync::SyncError::NotFound) => {
                    Error::NoSuchAccount(email.clone())
                }
                other => other,
            })?;
        let mut contact = checked(&email, &answer)?;
        if contact.account_id == self.header.account_id {
            if contact.keys != self.keypair.public() {
                return Err(Error::Untrusted(
                    "the server shows other keys for this account than its own".into(),
                ));
            }
            contact.trust = Trust::Me;
        }
        Ok(contact)
    }

    async fn pins(&self) -> Result<Vec<Pin>> {
        let Some(blob) = self.store.meta(CONTACTS_KEY).await? else {
            return Ok(Vec::new());
        };
        open_json(
            &self.account_key,
            &Aad::contacts(self.header.account_id),
            &blob,
        )
        .map_err(|_| Error::Tampered("the pinned contacts".into()))
    }

    async fn save_pins(&mut self, pins: &[Pin]) -> Result<()> {
        let blob = seal_json(
            &self.account_key,
            &Aad::contacts(self.header.account_id),
            &pins,
        );
        self.store.set_meta(CONTACTS_KEY, Some(&blob)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AccountKeyPair;

    fn answer(pair: &AccountKeyPair, id: Uuid, email: &str) -> IdentityResponse {
        let keys = pair.public();
        IdentityResponse {
            account_id: id,
            email: email.into(),
            key_version: 1,
            public_x25519: wire::B64(keys.x25519.to_vec()),
            public_ed25519: wire::B64(keys.ed25519.to_vec()),
            signature: Some(wire::B64(pair.sign_identity(id, email, 1).to_vec())),
        }
    }

    #[test]
    fn a_signed_identity_is_taken_and_a_doctored_one_refused() {
        let pair = AccountKeyPair::generate();
        let id = Uuid::now_v7();
        let good = answer(&pair, id, "bob@example.org");
        let c = checked("bob@example.org", &good).expect("valid");
        assert_eq!(c.fingerprint, pair.public().fingerprint());
        // Another address than the one asked for.
        assert!(checked("eve@example.org", &good).is_err());
        // A key swapped under the signature.
        let mut swapped = good.clone();
        swapped.public_x25519 = wire::B64(AccountKeyPair::generate().public().x25519.to_vec());
        assert!(matches!(
            checked("bob@example.org", &swapped),
            Err(Error::Untrusted(_))
        ));
        // No signature, a short key, another account id.
        let mut unsigned = good.clone();
        unsigned.signature = None;
        assert!(checked("bob@example.org", &unsigned).is_err());
        let mut short = good.clone();
        short.public_ed25519 = wire::B64(vec![1; 31]);
        assert!(checked("bob@example.org", &short).is_err());
        let mut moved = good;
        moved.account_id = Uuid::now_v7();
        assert!(checked("bob@example.org", &moved).is_err());
    }

    #[test]
    fn fingerprints_compare_by_their_digits() {
        assert_eq!(digits("0412-7730 1234"), "041277301234");
        assert_eq!(digits(" 0412 7730 "), digits("04127730"));
    }
}
