//! The flags of `add` and `edit` turned into fields.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A flag's value: literal text, or where to read a secret from.
#[derive(Clone, Copy)]
pub(super) enum FlagValue<'a> {
    Text(&'a String),
    Secret(&'a SecretSource),
}

pub(super) struct FlagSpec<'a> {
    flag: &'static str,
    value: Option<FlagValue<'a>>,
    label: &'static str,
    kind: FieldKind,
    kinds: &'static [ItemKind],
}

impl FieldArgs {
    pub(super) fn standard(&self) -> Vec<FlagSpec<'_>> {
        use ItemKind::{ApiKey, Card, Identity, Login};
        let spec = |flag, value, label, kind, kinds| FlagSpec {
            flag,
            value,
            label,
            kind,
            kinds,
        };
        vec![
            spec(
                "--username",
                self.username.as_ref().map(FlagValue::Text),
                label::USERNAME,
                FieldKind::Text,
                &[Login, ApiKey],
            ),
            spec(
                "--password",
                self.password.as_ref().map(FlagValue::Secret),
                label::PASSWORD,
                FieldKind::Secret,
                &[Login],
            ),
            spec(
                "--totp",
                self.totp.as_ref().map(FlagValue::Secret),
                label::TOTP,
                FieldKind::Totp,
                &[Login],
            ),
            spec(
                "--cardholder",
                self.cardholder.as_ref().map(FlagValue::Text),
                label::CARDHOLDER,
                FieldKind::Text,
                &[Card],
            ),
            spec(
                "--number",
                self.number.as_ref().map(FlagValue::Secret),
                label::NUMBER,
                FieldKind::Secret,
                &[Card],
            ),
            spec(
                "--expiry",
                self.expiry.as_ref().map(FlagValue::Text),
                label::EXPIRY,
                FieldKind::Text,
                &[Card],
            ),
            spec(
                "--cvv",
                self.cvv.as_ref().map(FlagValue::Secret),
                label::CVV,
                FieldKind::Secret,
                &[Card],
            ),
            spec(
                "--pin",
                self.pin.as_ref().map(FlagValue::Secret),
                label::PIN,
                FieldKind::Secret,
                &[Card],
            ),
            spec(
                "--full-name",
                self.full_name.as_ref().map(FlagValue::Text),
                label::FULL_NAME,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--email",
                self.email.as_ref().map(FlagValue::Text),
                label::EMAIL,
                FieldKind::Email,
                &[Identity],
            ),
            spec(
                "--phone",
                self.phone.as_ref().map(FlagValue::Text),
                label::PHONE,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--address",
                self.address.as_ref().map(FlagValue::Text),
                label::ADDRESS,
                FieldKind::Multiline,
                &[Identity],
            ),
            spec(
                "--birthday",
                self.birthday.as_ref().map(FlagValue::Text),
                label::BIRTHDAY,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--company",
                self.company.as_ref().map(FlagValue::Text),
                label::COMPANY,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--key",
                self.key.as_ref().map(FlagValue::Secret),
                label::KEY,
                FieldKind::Secret,
                &[ApiKey],
            ),
            spec(
                "--passphrase",
                self.passphrase.as_ref().map(FlagValue::Secret),
                label::PASSPHRASE,
                FieldKind::Secret,
                &[ItemKind::SshKey],
            ),
        ]
    }

    /// Turns the flags into fields for an item of `kind`, refusing flags that
    /// do not belong to that kind.
    pub(super) fn to_fields(&self, kind: ItemKind) -> CliResult<Vec<Field>> {
        let mut fields = Vec::new();
        for s in self.standard() {
            let Some(value) = s.value else { continue };
            if !s.kinds.contains(&kind) {
                return Err(wrong_kind(s.flag, s.kinds, kind));
            }
            let multiline = s.kind == FieldKind::Multiline;
            let text = match value {
                FlagValue::Text(v) => value_or_stdin(s.flag, v, multiline)?,
                // A value typed at a prompt is new, so it is asked twice: a
                // typo would be saved.
                FlagValue::Secret(src) => src.read(s.flag, s.label, Ask::Twice, multiline)?,
            };
            fields.push(Field::new(s.label, text.as_str(), s.kind));
        }
        if !self.urls.is_empty() && !matches!(kind, ItemKind::Login | ItemKind::ApiKey) {
            return Err(wrong_kind(
                "--url",
                &[ItemKind::Login, ItemKind::ApiKey],
                kind,
            ));
        }
        if self.generate {
            match kind {
                ItemKind::Login => {
                    if self.password.is_some() {
                        return Err(CliError::usage(
                            "give either --password or --generate, not both",
                        ));
                    }
                    fields.push(Field::new(
                        label::PASSWORD,
                        generate_password(self)?.as_str(),
                        FieldKind::Secret,
                    ));
                }
                ItemKind::SshKey => fields.extend(sshkey::generate(self.comment.as_deref())?),
                other => {
                    return Err(wrong_kind(
                        "--generate",
                        &[ItemKind::Login, ItemKind::SshKey],
                        other,
                    ));
                }
            }
        }
        if let Some(path) = &self.private_key_file {
            if kind != ItemKind::SshKey {
                return Err(wrong_kind("--private-key-file", &[ItemKind::SshKey], kind));
            }
            fields.extend(sshkey::import(path)?);
        }
        if self.comment.is_some() && !(kind == ItemKind::SshKey && self.generate) {
            return Err(CliError::usage(
                "--comment is for `--generate` of ssh-key items",
            ));
        }
        if let Some(notes) = &self.notes {
            let text = value_or_stdin("--notes", notes, true)?;
            fields.push(Field::new(
                label::NOTES,
                text.as_str(),
                FieldKind::Multiline,
            ));
        }
        for spec in &self.fields {
            let Some((label, value)) = spec.split_once('=') else {
                return Err(CliError::usage(
                    "--field takes LABEL=VALUE, e.g. --field 'Account=12345'",
                ));
            };
            let text = value_or_stdin("--field", value, false)?;
            fields.push(Field::new(label, text.as_str(), FieldKind::Text));
        }
        for f in &self.secret_fields {
            let flag = format!("--secret-field {}=", f.label);
            let text = f.source.read(&flag, &f.label, Ask::Twice, false)?;
            fields.push(Field::new(&f.label, text.as_str(), FieldKind::Secret));
        }
        fields.extend(
            self.urls
                .iter()
                .map(|u| Field::new(label::URL, u.as_str(), FieldKind::Url)),
        );
        // Standard fields in a familiar order, custom fields next, notes last.
        fields.sort_by_key(|f| crate::engine::model::field_rank(&f.label));
        Ok(fields)
    }
}

pub(super) fn wrong_kind(flag: &str, kinds: &[ItemKind], kind: ItemKind) -> CliError {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    CliError::usage(format!(
        "{flag} is for {} items, not {kind}",
        names.join(" and ")
    ))
}

pub(super) fn generate_password(args: &FieldArgs) -> CliResult<zeroize::Zeroizing<String>> {
    let generated = match args.words {
        Some(words) => generator::passphrase(&generator::PassphraseSpec {
            words,
            ..Default::default()
        }),
        None => generator::password(&PasswordSpec {
            length: args.length.unwrap_or(PasswordSpec::default().length),
            ..Default::default()
        }),
    }
    .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(zeroize::Zeroizing::new(
        generated.value.expose_secret().to_owned(),
    ))
}
