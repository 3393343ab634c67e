//! What the CLI makes of an engine error: its exit code (DESIGN §8,
//! docs/errors.md) and the text it prints, which is the engine's statement
//! of what happened followed by what to do about it (the `openk` command or
//! flag to use). The engine's messages never name a command; this is the
//! one place that does for them. `openk unlock`'s agent answers with the
//! same code and text.

use std::borrow::Cow;

use super::exit;
use crate::engine::Error;

/// The end of every message about a server answer that fails
/// verification ([`Error::is_untrusted`]); the hint goes before it.
const NOTHING_LOCAL_CHANGED: &str = "; nothing local was changed";

/// The process exit code for `e`.
#[must_use]
pub fn exit_code(e: &Error) -> i32 {
    match e {
        Error::BatchLine { source, .. } => exit_code(source),
        Error::WrongPassword
        | Error::WrongRecoveryCode
        | Error::WrongPasswordRegistered(_)
        | Error::Locked(_)
        | Error::Session(_)
        | Error::LoggedOut
        | Error::SessionEnded
        | Error::TokenRejected
        | Error::PasswordChanged
        | Error::EmergencyWaiting { .. }
        | Error::NoEmergencyRequest(_) => exit::LOCKED,
        Error::NotFound(_)
        | Error::NotFoundIn { .. }
        | Error::NoSuchVault { .. }
        | Error::NoVault(_)
        | Error::NoVersion { .. }
        | Error::NoSuchAccount(_)
        | Error::NoEmergencyGrant(_)
        | Error::ShareGone
        | Error::NoShare(_) => exit::NOT_FOUND,
        Error::Ambiguous { .. } | Error::AmbiguousVault { .. } => exit::AMBIGUOUS,
        Error::Conflict(_) | Error::HeadMoved | Error::KeyRotated | Error::KeptMoving(_) => {
            exit::CONFLICT
        }
        Error::Unreachable(_) | Error::NotAnswering(_) => exit::UNREACHABLE,
        Error::Tls(_) => exit::TLS,
        Error::ApprovalEnded(_) => exit::NOT_APPROVED,
        Error::Invalid(_)
        | Error::NameTaken { .. }
        | Error::NoName
        | Error::BadDeviceName { .. }
        | Error::NotConnected
        | Error::BadKeyInput(_)
        | Error::KdfBelowFloor(_)
        | Error::PlainHttp { .. }
        | Error::BadShareLink(_) => exit::USAGE,
        Error::VaultExists(_)
        | Error::DamagedItem { .. }
        | Error::Damaged(_)
        | Error::StoreDamaged(_)
        | Error::Crypto(_)
        | Error::Tampered(_)
        | Error::Permissions { .. }
        | Error::NeedsWrite { .. }
        | Error::ReadOnly(_)
        | Error::SessionUnreadable { .. }
        | Error::Remote(_)
        | Error::Untrusted(_)
        | Error::KeyChanged { .. }
        | Error::FingerprintMismatch { .. }
        | Error::Fork { .. }
        | Error::HistoryTampered(_)
        | Error::UnlinkedManifest { .. }
        | Error::ManifestMismatch { .. }
        | Error::WeakKdfOffered(_)
        | Error::ShareUndecryptable
        | Error::KeyRetired { .. }
        | Error::KeyRefused(_)
        | Error::Store(_)
        | Error::Io { .. } => exit::ERROR,
    }
}

/// What to do about `e`, as the words that follow its message (with their
/// leading punctuation); `None` when the message says it all.
#[must_use]
pub fn hint(e: &Error) -> Option<Cow<'static, str>> {
    const RESTORE: &str = "; restore the vault directory from a backup";
    const SYNC_AGAIN: &str = "; run `openk sync` again";
    let h: Cow<'static, str> = match e {
        Error::BatchLine { source, .. } => return hint(source),
        Error::NoVault(_) => ": run `openk init` to create one (or pass --home DIR)".into(),
        Error::NotFound(_) => "; `openk ls` lists items and `openk search` finds them".into(),
        Error::NotFoundIn { vault, .. } => format!(
            "; `openk ls --vault {}` lists its items (without --vault every vault is searched)",
            shell_word(vault)
        )
        .into(),
        Error::NoSuchVault { .. } => "; `openk vault ls` lists the vaults".into(),
        Error::Ambiguous {
            across_vaults: true,
            ..
        } => "\n(or name the vault: --vault VAULT)".into(),
        Error::NameTaken { .. } => ": choose another name, or rename that item first (`openk \
                                   edit ITEM --name NEW`)"
            .into(),
        Error::NoVersion { .. } => "; `openk history ITEM` lists its versions".into(),
        Error::NoName => " (--name)".into(),
        Error::BadDeviceName { .. } => " (pass --device-name NAME)".into(),
        Error::NotConnected => "; run `openk register` or `openk login`".into(),
        Error::Damaged(_) | Error::StoreDamaged(_) | Error::Crypto(_) => RESTORE.into(),
        Error::SessionUnreadable { .. } => format!("; run `openk login`{RESTORE}").into(),
        Error::Tampered(_) => ". Restore the vault directory from a backup, or log in again as a \
                               new device (`openk login --home NEW_DIR`)"
            .into(),
        Error::NeedsWrite { .. } => {
            ": run one command with write permission on the directory and vault.db".into()
        }
        Error::ReadOnly(dir) if dir.as_os_str().is_empty() => {
            "; read commands still work; give yourself write access to change it".into()
        }
        Error::ReadOnly(dir) => format!(
            "; read commands (ls, show, get, search, …) still work; to change it: chmod u+w '{}' '{}'",
            dir.display(),
            dir.join(crate::engine::files::DB_FILES[0]).display()
        )
        .into(),
        Error::Conflict(_) => "; run the command again".into(),
        Error::LoggedOut => "; run `openk login`".into(),
        Error::SessionEnded => "; run `openk login` again".into(),
        Error::TokenRejected => "; `openk sync` renews the session or says that it ended".into(),
        Error::PasswordChanged => "; type the new one in `openk login --server URL` (URL: this \
                                   vault's server, as `openk status` shows it); if the Secret Key \
                                   was rotated, add `--secret-key` with the new one from the new \
                                   Emergency Kit"
            .into(),
        Error::WrongPasswordRegistered(server) => format!(
            ". If the master password was changed on another device, fetch it with `openk login \
             --server {server}` (the server this vault's file names: check it before you type the \
             password)"
        )
        .into(),
        Error::HeadMoved | Error::KeyRotated | Error::KeptMoving(_) => SYNC_AGAIN.into(),
        Error::Fork { .. } => "; `openk sync --verify` compares everything item by item".into(),
        Error::HistoryTampered(_) => ". The server altered or withheld the account's signed \
            security history; do not trust it until its operator explains it (docs/security.md)"
            .into(),
        Error::NoEmergencyGrant(_) => "; `openk emergency ls` lists the grants you gave and hold".into(),
        Error::NoEmergencyRequest(_) => {
            "; the contact asks first with `openk emergency request OWNER`".into()
        }
        Error::EmergencyWaiting { .. } => "; run the same command again then".into(),
        Error::NoSuchAccount(_) => "; check the address with its owner (they `openk register` first)".into(),
        Error::KeyChanged { email, .. } => format!(
            ". Compare the new fingerprint with {email} in person or on a call, then run `openk \
             contact verify {email} --fingerprint FP`"
        )
        .into(),
        Error::FingerprintMismatch { .. } => "; check the digits with the person (their `openk status` shows it); if they match what they read you, the server is substituting keys".into(),
        Error::UnlinkedManifest { .. } => {
            ". Update OpenK on every device of the account and run `openk sync` again".into()
        }
        Error::ManifestMismatch { .. } => {
            "; run `openk sync --verify` for an item-by-item check".into()
        }
        Error::WeakKdfOffered(_) => ". If you chose them yourself and trust this server, run \
                                      `openk login --allow-weak-kdf` on this device"
            .into(),
        Error::KdfBelowFloor(_) => {
            ". If you set them yourself and trust this server, pass --allow-weak-kdf".into()
        }
        Error::PlainHttp { .. } => ". Use https://, or pass --insecure-http (config: \
                                    insecure_http = true) only on a network you trust"
            .into(),
        Error::BadShareLink(_) => {
            ". A share link looks like https://SERVER/s/ID#KEY; pass it whole (quote it), or `-` \
             to read it from standard input"
                .into()
        }
        Error::ApprovalEnded(_) => {
            ". Start again with `openk login --approve` on the new device, and approve it with \
             `openk device approve` on a signed-in one"
                .into()
        }
        Error::ShareGone => "; ask the sender for a new one".into(),
        Error::WrongRecoveryCode => "; check the code (or the shares) and the email; nothing was \
                                     changed"
            .into(),
        Error::KeyRetired { name, .. } => format!(
            "; `openk key show {}` lists its versions and which are retired",
            shell_word(name)
        )
        .into(),
        Error::NoShare(_) => "; `openk share ls` lists the live ones".into(),
        Error::ShareUndecryptable => {
            "; copy the whole link again, or ask the sender for a new one".into()
        }
        Error::WrongPassword
        | Error::Locked(_)
        | Error::VaultExists(_)
        | Error::Ambiguous { .. }
        | Error::AmbiguousVault { .. }
        | Error::Invalid(_)
        | Error::KeyRefused(_)
        | Error::BadKeyInput(_)
        | Error::DamagedItem { .. }
        | Error::Permissions { .. }
        | Error::Session(_)
        | Error::Unreachable(_)
        | Error::NotAnswering(_)
        | Error::Tls(_)
        | Error::Remote(_)
        | Error::Untrusted(_)
        | Error::Store(_)
        | Error::Io { .. } => return None,
    };
    Some(h)
}

/// `s` as one shell word in a hint: as it is when it is plain, else in
/// single quotes.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '/'))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The text the CLI prints for `e`: what happened, then what to do.
#[must_use]
pub fn message(e: &Error) -> String {
    let fact = e.to_string();
    let Some(hint) = hint(e) else {
        return fact;
    };
    if e.is_untrusted()
        && let Some(head) = fact.strip_suffix(NOTHING_LOCAL_CHANGED)
    {
        return format!("{head}{hint}{NOTHING_LOCAL_CHANGED}");
    }
    format!("{fact}{hint}")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use uuid::Uuid;

    use super::*;
    use crate::engine::KdfParams;

    /// The text and code of each error the engine words without a command:
    /// the CLI says what it said before the hints moved here.
    #[test]
    fn messages_and_codes() {
        let id = Uuid::from_u128(7);
        let dir = PathBuf::from("/v");
        let floor = KdfParams::FLOOR;
        let weak_kdf_offered = format!(
            "the server says the master password was changed on another device, but offers key derivation \
             parameters below the recommended floor ({floor}); refusing. If you chose them yourself and trust \
             this server, run `openk login --allow-weak-kdf` on this device; nothing local was changed"
        );
        let below_floor = format!(
            "the server offers key derivation parameters below the recommended floor ({floor}); refusing. \
             If you set them yourself and trust this server, pass --allow-weak-kdf"
        );
        let cases: Vec<(Error, &str, i32)> = vec![
            (
                Error::NoVault(dir.clone()),
                "no vault at /v: run `openk init` to create one (or pass --home DIR)",
                4,
            ),
            (
                Error::NotFound("x".into()),
                "no item matches \"x\"; `openk ls` lists items and `openk search` finds them",
                4,
            ),
            (
                Error::NoVersion { id, version: 3 },
                "item 00000000-0000-0000-0000-000000000007 has no version 3; `openk history ITEM` lists its versions",
                4,
            ),
            (Error::NoName, "an item needs a name (--name)", 2),
            (
                Error::BadDeviceName {
                    why: "be 1 to 100 characters".into(),
                },
                "a device name must be 1 to 100 characters (pass --device-name NAME)",
                2,
            ),
            (
                Error::NotConnected,
                "this vault is not connected to a server; run `openk register` or `openk login`",
                2,
            ),
            (
                Error::Damaged("the vault could not be loaded".into()),
                "the vault could not be loaded; restore the vault directory from a backup",
                1,
            ),
            (
                Error::SessionUnreadable {
                    why: "decryption failed".into(),
                },
                "the stored server session cannot be read (decryption failed); run `openk login`; restore the vault directory from a backup",
                1,
            ),
            (
                Error::Tampered("the vault header".into()),
                "vault damaged or tampered: the vault header does not match its authentication code; nothing was sent \
                 anywhere. Restore the vault directory from a backup, or log in again as a new device \
                 (`openk login --home NEW_DIR`)",
                1,
            ),
            (
                Error::NeedsWrite {
                    dir: dir.clone(),
                    why: "must be upgraded",
                },
                "/v: the vault is read-only, but its database must be upgraded, which needs write access: \
                 run one command with write permission on the directory and vault.db",
                1,
            ),
            (
                Error::ReadOnly(PathBuf::new()),
                "the vault is read-only (no write permission on its directory or vault.db), so nothing was changed; \
                 read commands still work; give yourself write access to change it",
                1,
            ),
            (
                Error::ReadOnly(dir.clone()),
                "the vault /v is read-only (no write permission on the directory or vault.db), so nothing was changed; \
                 read commands (ls, show, get, search, …) still work; to change it: chmod u+w '/v' '/v/vault.db'",
                1,
            ),
            (
                Error::Conflict(id),
                "item 00000000-0000-0000-0000-000000000007 was changed by another openk process; run the command again",
                6,
            ),
            (
                Error::LoggedOut,
                "logged out of the server; run `openk login`",
                3,
            ),
            (
                Error::SessionEnded,
                "the server session has ended (logged out, revoked or expired); run `openk login` again",
                3,
            ),
            (
                Error::TokenRejected,
                "the server did not accept this device's access token; `openk sync` renews the session or says that it ended",
                3,
            ),
            (
                Error::PasswordChanged,
                "the master password was changed on another device; type the new one in \
                 `openk login --server URL` (URL: this vault's server, as `openk status` shows it); \
                 if the Secret Key was rotated, add `--secret-key` with the new one from the new \
                 Emergency Kit",
                3,
            ),
            (
                Error::WrongPasswordRegistered("https://s.example".into()),
                "wrong master password or Secret Key (or the vault header was tampered with). If the \
                 master password was changed on another device, fetch it with `openk login --server https://s.example` \
                 (the server this vault's file names: check it before you type the password)",
                3,
            ),
            (
                Error::HeadMoved,
                "the vault changed on the server while this device was pushing; run `openk sync` again",
                6,
            ),
            (
                Error::KeptMoving("Personal".into()),
                "vault \"Personal\" kept changing on the server during the sync; run `openk sync` again",
                6,
            ),
            (
                Error::Fork {
                    vault_id: id,
                    what: "WHAT".into(),
                },
                "fork detected on vault 00000000-0000-0000-0000-000000000007: WHAT. The server is showing the devices of this account \
                 different histories (a server restored from an old copy, a split database, or an attack); \
                 nothing was applied. Do not trust this server's copy until its operator explains it; \
                 `openk sync --verify` compares everything item by item; nothing local was changed",
                1,
            ),
            (
                Error::UnlinkedManifest {
                    vault_id: id,
                    counter: 9,
                },
                "vault 00000000-0000-0000-0000-000000000007: the server's manifest number 9 has no link to the manifest before it \
                 (it was made by an OpenK older than this one), and this device has already accepted a \
                 linked one, so it cannot tell this from a fork; nothing was applied. Update OpenK on every \
                 device of the account and run `openk sync` again; nothing local was changed",
                1,
            ),
            (
                Error::ManifestMismatch {
                    vault_id: id,
                    manifest_items: 2,
                    manifest_head: 5,
                    items: 1,
                    head: 5,
                },
                "vault 00000000-0000-0000-0000-000000000007: the server's records do not match the vault manifest \
                 (manifest: 2 items at revision 5; received state: 1 items at revision 5); \
                 run `openk sync --verify` for an item-by-item check; nothing local was changed",
                1,
            ),
            (
                Error::WeakKdfOffered(KdfParams::FLOOR),
                &weak_kdf_offered,
                1,
            ),
            (Error::KdfBelowFloor(KdfParams::FLOOR), &below_floor, 2),
            (
                Error::Untrusted("server state went backwards: x".into()),
                "server state went backwards: x; nothing local was changed",
                1,
            ),
            (
                Error::PlainHttp {
                    host: "example.org".into(),
                },
                "refusing plain http:// to example.org: the login key and the session tokens would cross the network \
                 unencrypted, where anyone on the path can read them and answer in the server's place. \
                 Use https://, or pass --insecure-http (config: insecure_http = true) only on a network you trust",
                2,
            ),
            (Error::Invalid("bad".into()), "bad", 2),
            (
                Error::WrongPassword,
                "wrong master password or Secret Key (or the vault header was tampered with)",
                3,
            ),
            (Error::Unreachable("down".into()), "down", 7),
            (Error::NotAnswering("slow".into()), "slow", 7),
            (Error::Tls("tls".into()), "tls", 8),
            (
                Error::Ambiguous {
                    query: "a".into(),
                    candidates: vec!["1".into(), "2".into()],
                    across_vaults: false,
                },
                "\"a\" matches 2 items; use an id (or id prefix) instead:\n1\n2",
                5,
            ),
            (
                Error::Ambiguous {
                    query: "a".into(),
                    candidates: vec!["1".into(), "2".into()],
                    across_vaults: true,
                },
                "\"a\" matches 2 items; use an id (or id prefix) instead:\n1\n2\n(or name the vault: --vault VAULT)",
                5,
            ),
            (
                Error::NotFoundIn {
                    query: "a".into(),
                    vault: "Team A".into(),
                },
                "no item matches \"a\" in vault \"Team A\"; `openk ls --vault 'Team A'` lists its items \
                 (without --vault every vault is searched)",
                4,
            ),
            (
                Error::NoSuchVault {
                    query: "Tem".into(),
                    known: vec!["Personal".into(), "Team".into()],
                },
                "no vault is named \"Tem\" or has an id starting with it (the vaults here: Personal, \
                 Team); `openk vault ls` lists the vaults",
                4,
            ),
            (
                Error::NameTaken {
                    name: "GitHub".into(),
                    kind: "login".into(),
                    id,
                    vault: Some("Team".into()),
                },
                "an item named \"GitHub\" already exists in vault \"Team\" (login, id \
                 00000000-0000-0000-0000-000000000007); names must differ in more than letter case \
                 within a vault; nothing was changed: choose another name, or rename that item first \
                 (`openk edit ITEM --name NEW`)",
                2,
            ),
        ];
        for (e, text, code) in &cases {
            assert_eq!(message(e), *text, "{e:?}");
            assert_eq!(exit_code(e), *code, "{e:?}");
            assert!(!e.to_string().contains("`openk "), "{e:?}: {e}");
            assert!(!e.to_string().contains(" --"), "{e:?}: {e}");
        }
    }
}
