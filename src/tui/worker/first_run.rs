//! The first run: creating the vault and writing its Emergency Kit.

use super::{Reply, Worker};
use crate::engine::{Error, ExposeSecret, SecretString, Session, files};

impl Worker {
    /// Creates the vault and writes its Emergency Kit.
    pub(super) async fn create(&mut self, password: SecretString) -> Result<Vec<Reply>, Error> {
        if password.expose_secret().is_empty() {
            return Ok(vec![Reply::UnlockFailed(
                "the master password cannot be empty".into(),
            )]);
        }
        let vault = match Session::init(&self.dir, password, self.kdf).await {
            Ok(v) => v,
            Err(e) => return Ok(vec![Reply::UnlockFailed(self.message(&e))]),
        };
        let kit_text = vault.emergency_kit();
        let secret_key = vault.secret_key_display();
        let kit_path = files::default_kit_path(vault.account_id()).map(|p| {
            match (&self.kit_dir, p.file_name()) {
                (Some(dir), Some(name)) => dir.join(name),
                _ => p,
            }
        });
        let kit = match kit_path {
            Some(path) => files::write_private_file(&path, kit_text.as_bytes(), true)
                .map(|()| path)
                .map_err(|e| e.to_string()),
            None => Err("cannot find the home directory".into()),
        };
        self.vault = Some(vault);
        let _ = self.vault()?.catch_up().await;
        let entries = self.entries().await?;
        Ok(vec![Reply::Created {
            entries,
            secret_key,
            kit,
        }])
    }
}
