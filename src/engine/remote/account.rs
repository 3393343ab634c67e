//! Registering this account with a server, logging in again and out, and
//! telling the server about a new password.

use openk_server::api::types::{
    self as wire, ChangePasswordRequest, CreateVaultRequest, DeviceInfo, LoginRequest,
    RegisterRequest,
};
use uuid::Uuid;

use super::super::Session;
use super::super::contacts::FIRST_KEY_VERSION;
use super::super::error::{Error, Result};
use super::*;
use crate::crypto::{self, Key};
use crate::store::Header;
use crate::sync::Client;

impl Session {
    /// Uploads this account to a server (keys stay wrapped; the server gets
    /// the auth key, never the password or the Secret Key) and its vaults.
    ///
    /// # Errors
    /// Already registered, server unreachable (exit 7), email taken.
    pub async fn register(&mut self, server: &str, email: &str, device_name: &str) -> Result<()> {
        self.register_invited(server, email, device_name, None)
            .await
    }

    /// [`Session::register`] with a one-time invite code, for a server whose
    /// registration is invite-only.
    ///
    /// # Errors
    /// As [`Session::register`]; an email the server's rule refuses (exit 2);
    /// a missing, unknown or used invite code (the server says which).
    pub async fn register_invited(
        &mut self,
        server: &str,
        email: &str,
        device_name: &str,
        invite: Option<&secrecy::SecretString>,
    ) -> Result<()> {
        use secrecy::ExposeSecret as _;
        // The one email rule, shared with the server (openk_server::email).
        let email =
            openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
        let device_name = check_device_name(device_name)?;
        let device_name = device_name.as_str();
        if let Some(r) = &self.remote {
            return Err(Error::Invalid(format!(
                "this vault is already registered with {} as {}",
                r.server, r.email
            )));
        }
        let client = Client::new(server).map_err(Error::from)?;
        let device_key = new_device_key();
        let h = &self.header;
        let public = self.keypair.public();
        let t = client
            .register(&RegisterRequest {
                account_id: h.account_id,
                email: email.clone(),
                kdf: kdf_to_wire(h.kdf),
                salt: wire::B64(h.salt.clone()),
                auth_key: wire::B64(self.auth_key.expose().to_vec()),
                // The server's form of the wrap, made afresh (the header keeps its own).
                wrapped_account_key: wire::B64(super::super::state::server_wrap(
                    &self.unlock_key,
                    h,
                    &self.account_key,
                )),
                // Derived from the private keys, never read from a plain column.
                public_x25519: wire::B64(public.x25519.to_vec()),
                public_ed25519: wire::B64(public.ed25519.to_vec()),
                wrapped_private_keys: wire::B64(h.wrapped_private_keys.clone()),
                identity_signature: Some(wire::B64(
                    self.keypair
                        .sign_identity(h.account_id, &email, FIRST_KEY_VERSION)
                        .to_vec(),
                )),
                device: DeviceInfo {
                    platform: Some(super::platform()),
                    id: h.device_id,
                    name: device_name.to_owned(),
                },
                invite: invite.map(|c| c.expose_secret().trim().to_owned()),
                device_proof: Some(wire::B64(device_key.to_vec())),
            })
            .await?;
        self.save_registration(client.base(), email, device_name, &device_key, &t)
            .await?;
        self.upload_vaults().await?;
        self.record_security(
            crate::engine::security::SecurityKind::DeviceAdded,
            crate::engine::security::detail([("device", device_name), ("how", "register")]),
        )
        .await;
        tracing::info!(account = %self.header.account_id, "registered with server");
        Ok(())
    }

    /// Creates on the server every local vault it does not have yet.
    async fn upload_vaults(&mut self) -> Result<()> {
        let records = self.store.vaults().await?;
        let on_server: Vec<Uuid> = self
            .authed(|c| async move { c.vaults().await })
            .await?
            .iter()
            .map(|v| v.id)
            .collect();
        for v in records.into_iter().filter(|v| !on_server.contains(&v.id)) {
            let req = CreateVaultRequest {
                id: v.id,
                wrapped_key: wire::B64(v.wrapped_key),
                meta: wire::B64(v.meta),
            };
            self.authed(|c| {
                let req = req.clone();
                async move { c.create_vault(&req).await }
            })
            .await?;
        }
        Ok(())
    }

    /// Logs in again on this device (after `logout`), proving the password
    /// and Secret Key this vault was unlocked with.
    ///
    /// # Errors
    /// Not registered, unreachable, rate limited, or the account changed.
    pub async fn relogin(&mut self) -> Result<()> {
        let record = self.remote_or_err()?.clone();
        let client = self.client()?;
        let pre = client.prelogin(&record.email).await?;
        if pre.account_id == self.header.account_id
            && (kdf_from_wire(pre.kdf) != self.header.kdf || pre.salt.0 != self.header.salt)
        {
            // This vault opened with the old password (a new one would have
            // been adopted at unlock).
            return Err(Error::PasswordChanged);
        }
        let stored = self.device_key();
        let device_key = stored.clone().unwrap_or_else(new_device_key);
        let t = client
            .login(&LoginRequest {
                email: record.email.clone(),
                auth_key: wire::B64(self.auth_key.expose().to_vec()),
                device: DeviceInfo {
                    platform: Some(super::platform()),
                    id: self.header.device_id,
                    // A name an older version saved from a server's echo
                    // may not pass the check: this machine's name instead.
                    name: check_device_name(&record.device_name)
                        .or_else(|_| check_device_name(&default_device_name()))
                        .unwrap_or_else(|_| "openk device".to_owned()),
                },
                device_proof: Some(wire::B64(device_key.to_vec())),
                approval: None,
            })
            .await?;
        if stored.is_none() {
            let mut record = self.remote_or_err()?.clone();
            record.device_key = Some(seal_device_key(
                &self.account_key,
                self.header.account_id,
                self.header.device_id,
                &device_key,
            ));
            self.save_remote(record).await?;
        }
        self.save_tokens(Some(&Tokens::from_response(&t))).await?;
        // Sessions end when another device rotates the account key: this
        // login is when this device takes it.
        self.take_rotated_account_key().await?;
        Ok(())
    }

    /// Ends this device's server session (the local vault stays).
    /// Returns false when the server could not be told (tokens are dropped anyway).
    ///
    /// # Errors
    /// Not registered; local database errors.
    pub async fn logout(&mut self) -> Result<bool> {
        self.remote_or_err()?;
        let told = match self.tokens() {
            Ok(_) => match self.authed(|c| async move { c.logout().await }).await {
                Ok(()) => true,
                Err(e) if e.is_session_over() => true,
                Err(e) => {
                    tracing::warn!(error = %e, "logout: server not told");
                    false
                }
            },
            Err(_) => true,
        };
        if self.remote.as_ref().is_some_and(|r| r.tokens.is_some()) {
            self.save_tokens(None).await?;
        }
        Ok(told)
    }

    /// Tells the server about a new password: logs in afresh with the old
    /// auth key (the server wants a recent login), then sends the new auth
    /// key, the re-wrapped account key and the MAC (under the account key)
    /// that lets the other devices check the change before adopting it.
    pub(in crate::engine) async fn change_password_on_server(
        &mut self,
        header: &Header,
        server_wrap: &[u8],
        new_auth: &Key,
    ) -> Result<()> {
        self.relogin().await?;
        let mac = crypto::keys::password_change_mac(
            &self.account_key,
            header.account_id,
            &header.kdf,
            &header.salt,
            server_wrap,
        )?;
        let req = ChangePasswordRequest {
            kdf: kdf_to_wire(header.kdf),
            salt: wire::B64(header.salt.clone()),
            auth_key: wire::B64(new_auth.expose().to_vec()),
            wrapped_account_key: wire::B64(server_wrap.to_vec()),
            mac: wire::B64(mac.to_vec()),
        };
        self.authed(|c| {
            let req = req.clone();
            async move { c.change_password(&req).await }
        })
        .await
    }
}
