//! The vault directory on disk: where it is, its permissions, and the Secret
//! Key file. Directories are created 0700 and files 0600. Like `ssh` with its
//! keys, OpenK refuses files other users could abuse: a vault directory or
//! database file they can write to (they could swap or roll back the vault),
//! and a Secret Key file they can read (or one that belongs to someone else);
//! the message says the `chmod` that fixes it. A vault whose directory or
//! database is not writable is opened read-only ([`is_read_only`]).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use crate::crypto::SecretKey;

/// Name of the Secret Key file inside the vault directory.
pub const SECRET_KEY_FILE: &str = "secret.key";
/// A new Secret Key while a rotation of it is under way (written before
/// the server is told, so that a crash never loses it; it replaces
/// [`SECRET_KEY_FILE`] once the vault opens with it).
pub const NEXT_SECRET_KEY_FILE: &str = "secret.key.next";

/// The database files of a vault directory (the database and its WAL files).
pub const DB_FILES: [&str; 3] = [crate::store::DB_FILE, "vault.db-wal", "vault.db-shm"];

/// Sets 0600 on the database files that exist.
///
/// # Errors
/// I/O errors.
pub fn restrict_db_files(dir: &Path) -> Result<()> {
    DB_FILES
        .iter()
        .try_for_each(|f| restrict_file(&dir.join(f)))
}

/// Removes what a failed `init` or `login` wrote (nothing was committed).
pub fn remove_partial_vault(dir: &Path) {
    for name in DB_FILES.iter().chain(&[SECRET_KEY_FILE]) {
        let _ = fs::remove_file(dir.join(name));
    }
}

/// The default vault directory: the platform data dir (e.g. `~/.local/share/openk/vault`).
#[must_use]
pub fn default_vault_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "openk").map(|d| d.data_dir().join("vault"))
}

/// The state dir for logs (e.g. `~/.local/state/openk`), falling back to the data dir.
#[must_use]
pub fn state_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "openk").map(|d| {
        d.state_dir()
            .map_or_else(|| d.data_dir().join("state"), Path::to_path_buf)
    })
}

/// Where `openk init` (and the TUI's create-vault flow) writes the
/// Emergency Kit by default: `~/openk-emergency-kit-<id8>.txt`.
#[must_use]
pub fn default_kit_path(account_id: uuid::Uuid) -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| {
        b.home_dir().join(format!(
            "openk-emergency-kit-{}.txt",
            &account_id.simple().to_string()[..8]
        ))
    })
}

/// Creates `dir` (and parents) with mode 0700, or checks an existing one.
///
/// # Errors
/// I/O errors, or [`Error::Permissions`] for an unsafe existing directory.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io(format!("cannot create {}", dir.display())))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(Error::io(format!(
            "cannot set permissions on {}",
            dir.display()
        )))?;
    }
    check_dir(dir)
}

/// Refuses a vault directory that another user owns or can write to.
///
/// # Errors
/// [`Error::Permissions`] saying how to fix it.
pub fn check_dir(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(Error::io(format!("cannot read {}", dir.display())))?;
    if !meta.is_dir() {
        return Err(Error::Permissions {
            path: dir.to_path_buf(),
            why: "is not a directory".into(),
        });
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(Error::Permissions {
            path: dir.to_path_buf(),
            why: format!(
                "the vault directory belongs to another user (uid {}); use a directory you own",
                meta.uid()
            ),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::Permissions {
            path: dir.to_path_buf(),
            why: format!(
                "the vault directory is writable by other users (mode {:o}), so they could replace your vault; fix it with: chmod 700 '{}'",
                meta.mode() & 0o777,
                dir.display()
            ),
        });
    }
    Ok(())
}

/// Refuses database files (`vault.db` and its WAL files) that other users
/// can write to, or that belong to another user (root excepted).
///
/// # Errors
/// [`Error::Permissions`] saying how to fix it.
pub fn check_db_files(dir: &Path) -> Result<()> {
    let uid = rustix::process::geteuid().as_raw();
    for name in DB_FILES {
        let path = dir.join(name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            return Err(Error::Permissions {
                path,
                why: "is not a regular file; the vault's database files must be plain files".into(),
            });
        }
        if meta.uid() != uid && meta.uid() != 0 {
            return Err(Error::Permissions {
                path,
                why: format!(
                    "belongs to another user (uid {}), who could replace your vault; the vault's files must be yours",
                    meta.uid()
                ),
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(Error::Permissions {
                why: format!(
                    "is writable by other users (mode {:o}), so they could replace or roll back your vault; it is not used. Fix it with: chmod 600 '{}'",
                    meta.mode() & 0o777,
                    path.display()
                ),
                path,
            });
        }
    }
    Ok(())
}

/// Whether the vault in `dir` is to be opened read-only: its directory or
/// `vault.db` is not writable by this process (`access(2)` with the
/// effective ids: permissions, a read-only mount), or has no write
/// permission bit at all. The bits matter for root, whom `access(2)` lets
/// write anything: a vault its owner made read-only stays read-only.
#[must_use]
pub fn is_read_only(dir: &Path) -> bool {
    let not_writable = |p: &Path| {
        let no_bits = fs::metadata(p).is_ok_and(|m| m.mode() & 0o222 == 0);
        no_bits
            || rustix::fs::accessat(
                rustix::fs::CWD,
                p,
                rustix::fs::Access::WRITE_OK,
                rustix::fs::AtFlags::EACCESS,
            )
            .is_err()
    };
    not_writable(dir) || not_writable(&dir.join(crate::store::DB_FILE))
}

/// Sets 0600 on a file if it exists (the database and its WAL files).
///
/// # Errors
/// I/O errors other than a missing file.
pub fn restrict_file(path: &Path) -> Result<()> {
    match fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(Error::io(format!(
            "cannot set permissions on {}",
            path.display()
        ))),
    }
}

/// Writes a file atomically (temporary file, fsync, rename) with mode 0600.
/// With `create_new`, refuses to replace an existing file.
///
/// # Errors
/// I/O errors; the target is untouched on error.
pub fn write_private_file(path: &Path, contents: &[u8], create_new: bool) -> Result<()> {
    if create_new && path.exists() {
        return Err(Error::Invalid(format!(
            "{} already exists; choose another path",
            path.display()
        )));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::Io {
            context: format!("cannot write {}", path.display()),
            source: e,
        }
    })
}

/// Writes the Secret Key file.
///
/// # Errors
/// I/O errors.
pub fn write_secret_key(dir: &Path, key: &SecretKey) -> Result<()> {
    let mut text = key.display();
    text.push('\n');
    write_private_file(&dir.join(SECRET_KEY_FILE), text.as_bytes(), false)
}

/// The Secret Key of a rotation under way ([`NEXT_SECRET_KEY_FILE`]), if
/// there is one that parses.
#[must_use]
pub fn read_next_secret_key(dir: &Path) -> Option<SecretKey> {
    let text = read_private(&dir.join(NEXT_SECRET_KEY_FILE)).ok()?;
    SecretKey::parse(text.trim()).ok()
}

/// Makes `key` the vault's Secret Key (the file), and drops a pending
/// next one.
///
/// # Errors
/// I/O errors.
pub fn promote_secret_key(dir: &Path, key: &SecretKey) -> Result<()> {
    write_secret_key(dir, key)?;
    let _ = fs::remove_file(dir.join(NEXT_SECRET_KEY_FILE));
    Ok(())
}

/// Writes the Secret Key of a rotation under way.
///
/// # Errors
/// I/O errors.
pub fn write_next_secret_key(dir: &Path, key: &SecretKey) -> Result<()> {
    let mut text = key.display();
    text.push('\n');
    write_private_file(&dir.join(NEXT_SECRET_KEY_FILE), text.as_bytes(), false)
}

/// Reads the Secret Key: the file in the vault directory, else `fallback`
/// (from `OPENK_SECRET_KEY`).
///
/// # Errors
/// [`Error::Locked`] when neither is there, [`Error::Invalid`] when malformed.
pub fn read_secret_key(dir: &Path, fallback: Option<&str>) -> Result<SecretKey> {
    let path = dir.join(SECRET_KEY_FILE);
    match read_private(&path) {
        Ok(text) => SecretKey::parse(text.trim()).map_err(|e| {
            Error::Damaged(format!(
                "{} is not a valid Secret Key file: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fallback {
            Some(text) => Ok(SecretKey::parse(text)?),
            None => Err(Error::Locked(format!(
                "the Secret Key file {} is missing; set OPENK_SECRET_KEY to the Secret Key from your Emergency Kit",
                path.display()
            ))),
        },
        Err(ReadError::Unsafe(e)) => Err(e),
        Err(e) => Err(Error::Io {
            context: format!("cannot read {}", path.display()),
            source: e.into_io(),
        }),
    }
}

enum ReadError {
    Io(std::io::Error),
    Unsafe(Error),
}

impl ReadError {
    fn kind(&self) -> std::io::ErrorKind {
        match self {
            Self::Io(e) => e.kind(),
            Self::Unsafe(_) => std::io::ErrorKind::PermissionDenied,
        }
    }

    fn into_io(self) -> std::io::Error {
        match self {
            Self::Io(e) => e,
            Self::Unsafe(e) => std::io::Error::other(e.to_string()),
        }
    }
}

/// Reads a file only this user may read, as `ssh` does for private keys:
/// the permissions are checked on the opened file (no race with a swap).
fn read_private(path: &Path) -> std::result::Result<zeroize::Zeroizing<String>, ReadError> {
    use std::io::Read as _;
    let mut file = fs::File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(ReadError::Unsafe(Error::Permissions {
            path: path.to_path_buf(),
            why: format!(
                "the Secret Key file belongs to another user (uid {}), so it is not used; it must be yours (chown, then chmod 600 '{}')",
                meta.uid(),
                path.display()
            ),
        }));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(ReadError::Unsafe(Error::Permissions {
            path: path.to_path_buf(),
            why: format!(
                "UNPROTECTED SECRET KEY FILE: other users can access it (mode {:o}), and with it your master password is all that guards the vault, so it is not used. Fix it with: chmod 600 '{}'",
                meta.mode() & 0o777,
                path.display()
            ),
        }));
    }
    // Room for the whole file up front: no reallocation leaves a copy behind.
    let size = usize::try_from(meta.len()).unwrap_or(0).min(64 * 1024);
    let mut text = zeroize::Zeroizing::new(String::with_capacity(size + 1));
    file.read_to_string(&mut text).map_err(ReadError::Io)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_and_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).expect("create");
        assert_eq!(fs::metadata(&dir).expect("meta").mode() & 0o777, 0o700);
        let f = dir.join("x");
        write_private_file(&f, b"hi", true).expect("write");
        assert_eq!(fs::metadata(&f).expect("meta").mode() & 0o777, 0o600);
        assert!(
            write_private_file(&f, b"again", true).is_err(),
            "create_new refuses to overwrite"
        );
        assert_eq!(fs::read(&f).expect("read"), b"hi");
        write_private_file(&f, b"new", false).expect("replace");
        assert_eq!(fs::read(&f).expect("read"), b"new");
    }

    #[test]
    fn writable_by_others_is_refused_with_a_fix() {
        let tmp = tempfile::tempdir().expect("tmp");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = check_dir(tmp.path()).expect_err("refused");
        assert!(err.to_string().contains("chmod 700"), "{err}");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        check_dir(tmp.path()).expect("accepted");
    }

    #[test]
    fn read_only_comes_from_access_or_the_permission_bits() {
        let tmp = tempfile::tempdir().expect("tmp");
        let db = tmp.path().join(crate::store::DB_FILE);
        fs::write(&db, b"x").expect("write");
        assert!(!is_read_only(tmp.path()));
        // Even for root, whom access(2) lets write: the bits decide too.
        fs::set_permissions(&db, fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(is_read_only(tmp.path()));
        fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o500)).expect("chmod");
        assert!(is_read_only(tmp.path()));
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
    }

    #[test]
    fn database_files_others_can_write_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        check_db_files(tmp.path()).expect("no files yet");
        let wal = tmp.path().join("vault.db-wal");
        fs::write(&wal, b"").expect("write");
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o646)).expect("chmod");
        let err = check_db_files(tmp.path()).expect_err("refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o644)).expect("chmod");
        check_db_files(tmp.path()).expect("readable is fine");
    }

    #[test]
    fn a_secret_key_others_can_read_is_not_used() {
        let tmp = tempfile::tempdir().expect("tmp");
        write_secret_key(tmp.path(), &SecretKey::generate()).expect("write");
        let path = tmp.path().join(SECRET_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = read_secret_key(tmp.path(), None).expect_err("refused");
        assert!(matches!(err, Error::Permissions { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // Not even with a fallback: the file is there and unsafe.
        assert!(read_secret_key(tmp.path(), Some("OK1-x")).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        read_secret_key(tmp.path(), None).expect("accepted");
    }

    #[test]
    fn secret_key_file_round_trip_and_fallback() {
        let tmp = tempfile::tempdir().expect("tmp");
        let sk = SecretKey::generate();
        assert!(matches!(
            read_secret_key(tmp.path(), None),
            Err(Error::Locked(_))
        ));
        let text = sk.display();
        read_secret_key(tmp.path(), Some(&text)).expect("fallback parses");
        write_secret_key(tmp.path(), &sk).expect("write");
        let back = read_secret_key(tmp.path(), None).expect("read");
        assert_eq!(back.display().as_str(), text.as_str());
    }
}
