//! Backups of the local vault database (`openk backup FILE`) and their
//! restore (`openk restore FILE`).
//!
//! A backup is a consistent copy of `vault.db` made with SQLite's `VACUUM
//! INTO` while other processes (the TUI, another command) may have it
//! open: every transaction is wholly in it or wholly out. It needs no
//! unlock: the copy is exactly as encrypted as the vault itself (every item,
//! key and header field stays sealed; the plaintext columns are ids,
//! versions and a few times, docs/security.md "On disk"). It does not
//! hold the Secret Key file (`secret.key`): restoring needs the Secret Key
//! of the account (the one in the vault directory, or `OPENK_SECRET_KEY`),
//! like any other copy of the vault.
//!
//! A restore ([`prepare_restore`], then [`StagedRestore::commit`]) stages the backup in a private directory inside the vault
//! directory, unlocks it there with the master password and Secret Key
//! (same account as the vault it replaces), keeps the replaced database
//! aside as `vault.db.replaced-<time>` (a consistent copy, again through
//! `VACUUM INTO`, so its write-ahead log is folded in), and only then moves
//! the backup into place.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::{Session, UnlockOptions, files, has_vault_file};
use crate::crypto::SecretString;
use crate::store::{self, Store};

/// The first 16 bytes of every SQLite database.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` is a file that starts like an SQLite database.
#[must_use]
pub fn is_sqlite_file(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == SQLITE_MAGIC
}

/// Creates an empty file only the owner can read, failing if it exists.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn utf8(path: &Path) -> Result<()> {
    if path.to_str().is_none() {
        return Err(Error::Invalid(format!(
            "{} is not a UTF-8 path; choose another name",
            path.display()
        )));
    }
    Ok(())
}

/// Copies the database of the vault in `dir` into a new file `temp`
/// (0600) through `VACUUM INTO`.
async fn copy_database(dir: &Path, temp: &Path) -> Result<()> {
    utf8(temp)?;
    create_private(temp).map_err(Error::io(format!("cannot create {}", temp.display())))?;
    let copied = async {
        let store = if files::is_read_only(dir) {
            Store::open_read_only(dir).await?
        } else {
            Store::open(dir, false).await?
        };
        let done = store.backup_into(temp).await;
        store.close().await;
        done
    }
    .await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(temp);
        return Err(e.into());
    }
    // VACUUM INTO keeps an existing empty file's mode; make sure anyway.
    files::restrict_file(temp)
}

/// A temporary name beside `path`.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "backup".to_owned(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Moves `temp` to `path`: never over an existing file unless `force`
/// (a hard link fails when the name is taken).
fn place(temp: &Path, path: &Path, force: bool) -> Result<()> {
    let placed = if force {
        std::fs::rename(temp, path)
    } else {
        std::fs::hard_link(temp, path).and_then(|()| std::fs::remove_file(temp))
    };
    placed.map_err(|e| {
        let _ = std::fs::remove_file(temp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Invalid(format!(
                "{} exists; choose another file or pass --force to replace it",
                path.display()
            ))
        } else {
            Error::Io {
                context: format!("cannot write {}", path.display()),
                source: e,
            }
        }
    })
}

/// Writes a consistent copy of the vault database in `dir` to `to` (a new
/// file, 0600; an existing one only with `force`). Needs no unlock. Returns
/// the copy's size in bytes.
///
/// # Errors
/// [`Error::NoVault`]; [`Error::Invalid`] when `to` exists (without
/// `force`); database and I/O errors (nothing is left at `to`).
pub async fn backup(dir: &Path, to: &Path, force: bool) -> Result<u64> {
    if !has_vault_file(dir) {
        return Err(Error::NoVault(dir.to_path_buf()));
    }
    if !force && to.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "{} exists; choose another file or pass --force to replace it",
            to.display()
        )));
    }
    if to.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a directory; name a file",
            to.display()
        )));
    }
    let temp = temp_beside(to);
    copy_database(dir, &temp).await?;
    let size = std::fs::metadata(&temp).map_or(0, |m| m.len());
    if let Err(e) = std::fs::File::open(&temp).and_then(|f| f.sync_all()) {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io(format!("cannot write {}", to.display()))(e));
    }
    place(&temp, to, force)?;
    Ok(size)
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Where the replaced database was kept (`None` when there was none).
    pub replaced: Option<PathBuf>,
    /// Items in the restored vault (trash included).
    pub items: usize,
}

/// A backup checked and staged, not yet in place: [`StagedRestore::commit`]
/// replaces the vault; dropping it replaces nothing and removes the staged
/// copy.
#[derive(Debug)]
pub struct StagedRestore {
    dir: PathBuf,
    staging: PathBuf,
    items: usize,
}

impl Drop for StagedRestore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Checks the backup `file` for the vault in `dir`: that it unlocks with
/// `password` and the account's Secret Key (`dir`'s `secret.key`, else
/// `secret_key_fallback`) and is of the same account. The check runs on a
/// copy in a private directory inside `dir`; the vault is not touched.
///
/// # Errors
/// [`Error::Invalid`] for a file that is not an OpenK backup or is of
/// another account; [`Error::WrongPassword`] and the other unlock errors of
/// the backup; I/O and database errors.
pub async fn prepare_restore(
    dir: &Path,
    file: &Path,
    password: SecretString,
    secret_key_fallback: Option<&str>,
) -> Result<StagedRestore> {
    if !is_sqlite_file(file) {
        return Err(Error::Invalid(format!(
            "{} is not an OpenK backup (not an SQLite database); make one with `openk backup FILE`",
            file.display()
        )));
    }
    files::create_private_dir(dir)?;
    let secret_key = files::read_secret_key(dir, secret_key_fallback)?;
    let current_account = if has_vault_file(dir) {
        let store = Store::open(dir, false).await?;
        let header = store.header().await;
        store.close().await;
        header?.map(|h| h.account_id)
    } else {
        None
    };
    let staging = dir.join(format!(".restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    files::create_private_dir(&staging)?;
    let mut staged = StagedRestore {
        dir: dir.to_path_buf(),
        staging,
        items: 0,
    };
    staged.items = stage(
        &staged.staging,
        file,
        &secret_key,
        password,
        current_account,
    )
    .await?;
    Ok(staged)
}

impl StagedRestore {
    /// Items in the backup (trash included).
    #[must_use]
    pub fn items(&self) -> usize {
        self.items
    }

    /// Keeps the current database aside and moves the backup into place.
    /// The caller has stopped the vault's agent and made sure no TUI has
    /// the vault open (SQLite cannot tell; a TUI left open would go on
    /// writing to the replaced database).
    ///
    /// # Errors
    /// I/O and database errors; the vault is left as it was when keeping
    /// it aside fails.
    pub async fn commit(self) -> Result<Restored> {
        let dir = &self.dir;
        let replaced = keep_aside(dir).await?;
        // The replaced database is safe aside; its write-ahead files must
        // go before the backup takes its name, or SQLite would replay them
        // into it.
        for stale in &files::DB_FILES[1..] {
            match std::fs::remove_file(dir.join(stale)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("cannot remove {stale}"))(e)),
            }
        }
        std::fs::rename(self.staging.join(store::DB_FILE), dir.join(store::DB_FILE))
            .map_err(Error::io("cannot move the backup into place"))?;
        files::restrict_db_files(dir)?;
        // A restore onto a new machine (the Secret Key from
        // `OPENK_SECRET_KEY`): the vault directory gets its key file.
        let key_file = dir.join(files::SECRET_KEY_FILE);
        if !key_file.exists() {
            std::fs::rename(self.staging.join(files::SECRET_KEY_FILE), &key_file)
                .map_err(Error::io("cannot write the Secret Key file"))?;
        }
        Ok(Restored {
            replaced,
            items: self.items,
        })
    }
}

/// Copies the backup into `staging` with the Secret Key and unlocks it
/// there; returns its item count.
async fn stage(
    staging: &Path,
    file: &Path,
    secret_key: &crate::crypto::SecretKey,
    password: SecretString,
    current_account: Option<uuid::Uuid>,
) -> Result<usize> {
    let db = staging.join(store::DB_FILE);
    {
        let mut from = std::fs::File::open(file)
            .map_err(Error::io(format!("cannot read {}", file.display())))?;
        let mut to =
            create_private(&db).map_err(Error::io(format!("cannot create {}", db.display())))?;
        std::io::copy(&mut from, &mut to)
            .map_err(Error::io(format!("cannot copy {}", file.display())))?;
        to.sync_all()
            .map_err(Error::io(format!("cannot copy {}", file.display())))?;
    }
    files::write_secret_key(staging, secret_key)?;
    let mut session =
        match Session::unlock_with(staging, password, None, UnlockOptions::default()).await {
            Ok(s) => s,
            Err(Error::StoreDamaged(e)) => {
                return Err(Error::Invalid(format!(
                    "{} is not a readable OpenK backup: {e}",
                    file.display()
                )));
            }
            Err(e) => return Err(e),
        };
    if let Some(account) = current_account
        && account != session.account_id()
    {
        session.close().await;
        return Err(Error::Invalid(format!(
            "{} is a backup of another account; nothing was replaced",
            file.display()
        )));
    }
    let items = session.entries().await.map(|(e, d)| e.len() + d.len());
    // Closing folds the write-ahead log into the staged vault.db.
    session.close().await;
    items
}

/// Keeps a consistent copy of the current database as
/// `vault.db.replaced-<UTC time>` (0600); `None` when there is none.
async fn keep_aside(dir: &Path) -> Result<Option<PathBuf>> {
    if !has_vault_file(dir) {
        return Ok(None);
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let mut aside = dir.join(format!("{}.replaced-{stamp}", store::DB_FILE));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = dir.join(format!("{}.replaced-{stamp}-{n}", store::DB_FILE));
    }
    copy_database(dir, &aside).await?;
    Ok(Some(aside))
}
