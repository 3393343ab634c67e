//! SSH keys as items: Ed25519 key pairs generated in OpenSSH format, and
//! imports of existing OpenSSH private keys (kept byte for byte, encrypted
//! or not), with the public key and SHA-256 fingerprint beside them.

use super::error::{Error, Result};
use super::model::{Field, FieldKind, label};

/// An SSH key as stored: private key text, public key line, fingerprint.
struct SshKey {
    private: zeroize::Zeroizing<String>,
    public: String,
    fingerprint: String,
}

fn ssh_key_fields(k: &SshKey) -> Vec<Field> {
    vec![
        Field::new(label::PRIVATE_KEY, k.private.as_str(), FieldKind::Secret),
        Field::new(label::PUBLIC_KEY, k.public.as_str(), FieldKind::Text),
        Field::new(label::FINGERPRINT, k.fingerprint.as_str(), FieldKind::Text),
    ]
}

fn generate_ssh_key(comment: Option<&str>) -> Result<SshKey> {
    let seed = zeroize::Zeroizing::new(crate::crypto::secret::random_array::<32>());
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let mut key = ssh_key::PrivateKey::from(pair);
    key.set_comment(comment.unwrap_or("openk"));
    describe_ssh_key(&key)
}

fn describe_ssh_key(key: &ssh_key::PrivateKey) -> Result<SshKey> {
    let private = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| Error::Invalid(format!("cannot encode the SSH key: {e}")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::Invalid(format!("cannot encode the SSH public key: {e}")))?;
    Ok(SshKey {
        private: zeroize::Zeroizing::new(private.to_string()),
        public,
        fingerprint: key
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string(),
    })
}

fn import_ssh_key(path: &std::path::Path) -> Result<SshKey> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?,
    );
    let key = ssh_key::PrivateKey::from_openssh(text.as_bytes()).map_err(|_| {
        Error::Invalid(format!(
            "{} is not an OpenSSH private key (expected -----BEGIN OPENSSH PRIVATE KEY-----; convert with `ssh-keygen -p -f FILE`)",
            path.display()
        ))
    })?;
    // Keep the file's text exactly (it may be encrypted); derive the public parts.
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::Invalid(format!("cannot encode the SSH public key: {e}")))?;
    Ok(SshKey {
        private: zeroize::Zeroizing::new(text.trim_end().to_owned() + "\n"),
        public,
        fingerprint: key
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string(),
    })
}

/// The fields of a new Ed25519 key pair.
///
/// # Errors
/// Encoding errors (not expected).
pub fn generate(comment: Option<&str>) -> Result<Vec<Field>> {
    Ok(ssh_key_fields(&generate_ssh_key(comment)?))
}

/// The fields of an OpenSSH private key file.
///
/// # Errors
/// [`Error::Invalid`] for an unreadable file or one that is not an OpenSSH key.
pub fn import(path: &std::path::Path) -> Result<Vec<Field>> {
    Ok(ssh_key_fields(&import_ssh_key(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_import() {
        let fields = generate(Some("me@host")).expect("generates");
        let private = &fields[0];
        assert!(
            private
                .value
                .expose()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        assert!(
            fields[1].value.expose().starts_with("ssh-ed25519 ")
                && fields[1].value.expose().ends_with(" me@host")
        );
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("id");
        std::fs::write(&path, private.value.expose()).expect("write");
        let again = import(&path).expect("imports");
        assert_eq!(again[2].value, fields[2].value, "same fingerprint");
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(import(&path), Err(Error::Invalid(_))));
    }
}
