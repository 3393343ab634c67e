//! Device approval (issue 13): a new device signs in without the Secret Key
//! typed in; a signed-in device of the account sends it, sealed to the new
//! device's key, once a person compared the code both devices show.
//!
//! The protocol is a numeric comparison with a hash commitment (Bluetooth
//! SSP numeric comparison, ZRTP); docs/security.md ("Device approval") says
//! why each step is there. In short, with N the new device, A the approver
//! and the server relaying:
//!
//! 1. N makes a one-time X25519 key pair and a nonce `nonce_n`, and sends
//!    its public key `pub_n` with `commit = SHA-256("openk approval commit
//!    v1" ‖ pub_n ‖ nonce_n)`.
//! 2. A takes the request with a one-time key pair (`pub_a`) and `nonce_a`.
//! 3. N, having seen `pub_a` and `nonce_a`, reveals `nonce_n`.
//! 4. A checks the commitment; both compute the code from `id ‖ pub_n ‖
//!    pub_a ‖ nonce_n ‖ nonce_a`. The person compares them; on a match A
//!    seals the Secret Key to `pub_n` in HPKE Auth mode with its `pub_a`
//!    key, bound to the transcript hash of everything above.
//! 5. N opens it (only A's key can have sealed it, only for this
//!    transcript) and logs in with the typed master password.
//!
//! A server that substitutes either key makes the two codes differ (it had
//! to commit to its `pub_n` before it saw `nonce_a`, and to give N its
//! `pub_a` and `nonce_a` before it saw `nonce_n`, so it cannot search for a
//! matching pair), and a box it makes itself does not open at N.

use std::path::Path;
use std::time::{Duration, Instant};

use openk_server::api::types::{ApprovalResponse, CreateApprovalRequest};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle_eq::ct_eq;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::{Session, remote};
use crate::crypto::hpke::{EphemeralKeyPair, open_auth, seal_auth};
use crate::crypto::{SecretKey, SecretString};
use crate::sync::{Client, SyncError};

/// The HPKE `info` of the sealed Secret Key.
const INFO: &[u8] = b"openk/v1/device-approval";
const COMMIT_LABEL: &[u8] = b"openk approval commit v1";
const CODE_LABEL: &[u8] = b"openk approval code v1";
const TRANSCRIPT_LABEL: &[u8] = b"openk approval transcript v1";
/// How long each side waits for the other by default (the server's requests
/// expire after ten minutes).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10 * 60);
/// How often each side asks the server.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// Constant-time comparison of two byte strings.
mod subtle_eq {
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Why an approval ended without the Secret Key sent (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalEnd {
    /// Denied on a signed-in device.
    Denied,
    /// The server's time for the request ran out.
    Expired,
    /// This side stopped waiting (its `--timeout`).
    TimedOut,
    /// The new device gave up (Ctrl-C, its timeout).
    Cancelled,
    /// The code typed or confirmed is not the one computed here.
    CodeMismatch,
    /// Used for a login already, or approved by another device.
    Taken,
    /// Stopped on this device (Ctrl-C).
    Interrupted,
}

impl std::fmt::Display for ApprovalEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Denied => "the request was denied on a signed-in device",
            Self::Expired => "the request expired before it was approved",
            Self::TimedOut => "no approval came in the time given",
            Self::Cancelled => "the new device cancelled the request",
            Self::CodeMismatch => {
                "the codes do not match (a typo, or the server changed a key on the way)"
            }
            Self::Taken => "the request was already used or taken by another device",
            Self::Interrupted => "stopped here (Ctrl-C)",
        })
    }
}

/// The six-digit code both devices show, as `123 456`.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    fn compute(id: Uuid, pub_n: &[u8], pub_a: &[u8], nonce_n: &[u8], nonce_a: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(CODE_LABEL);
        h.update(id.as_bytes());
        h.update(pub_n);
        h.update(pub_a);
        h.update(nonce_n);
        h.update(nonce_a);
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        let n = u64::from_be_bytes(first) % 1_000_000;
        Self(format!("{:03} {:03}", n / 1000, n % 1000))
    }

    /// `123 456`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `typed` is this code, spaces and dashes ignored (constant time).
    #[must_use]
    pub fn matches(&self, typed: &str) -> bool {
        let want: String = self.0.chars().filter(char::is_ascii_digit).collect();
        let got: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        ct_eq(want.as_bytes(), got.as_bytes())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({})", self.0)
    }
}

fn commitment(pub_n: &[u8], nonce_n: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(COMMIT_LABEL);
    h.update(pub_n);
    h.update(nonce_n);
    h.finalize().into()
}

/// What both sides saw, hashed: the sealed box's associated data.
struct Transcript<'a> {
    id: Uuid,
    email: &'a str,
    device_name: &'a str,
    platform: &'a str,
    pub_n: &'a [u8],
    commit: &'a [u8],
    pub_a: &'a [u8],
    nonce_a: &'a [u8],
    nonce_n: &'a [u8],
}

impl Transcript<'_> {
    fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(TRANSCRIPT_LABEL);
        h.update(self.id.as_bytes());
        for part in [self.email, self.device_name, self.platform] {
            h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            h.update(part.as_bytes());
        }
        for part in [
            self.pub_n,
            self.commit,
            self.pub_a,
            self.nonce_a,
            self.nonce_n,
        ] {
            h.update(part);
        }
        h.finalize().into()
    }
}

fn random32() -> Zeroizing<[u8; 32]> {
    use rand::RngCore as _;
    let mut b = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(b.as_mut_slice());
    b
}

fn exactly32(b: &[u8], what: &str) -> Result<[u8; 32]> {
    b.try_into().map_err(|_| {
        Error::Untrusted(format!(
            "the server sent a {what} of {} bytes, not 32; refused, nothing was sent",
            b.len()
        ))
    })
}

/// What the sealed box carries.
#[derive(Serialize, serde::Deserialize)]
struct Payload {
    v: u8,
    secret_key: Zeroizing<String>,
}

/// How long to wait and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    /// Give up after this long (in all).
    pub timeout: Duration,
    /// Ask the server this often.
    pub poll: Duration,
}

impl Default for Waiting {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_WAIT,
            poll: DEFAULT_POLL,
        }
    }
}

/// The state a server answer names, as an end (`None`: still going).
fn ended(state: &str) -> Option<ApprovalEnd> {
    match state {
        "denied" => Some(ApprovalEnd::Denied),
        "expired" => Some(ApprovalEnd::Expired),
        "cancelled" => Some(ApprovalEnd::Cancelled),
        "used" => Some(ApprovalEnd::Taken),
        _ => None,
    }
}

// ------------------------------------------------------------- new device

/// A new device's request, from `openk login --approve`: made by
/// [`request_approval`], then [`NewDevice::wait_for_code`],
/// [`NewDevice::wait_for_secret`] and [`NewDevice::login`].
pub struct NewDevice {
    client: Client,
    server: String,
    email: String,
    device_name: String,
    platform: String,
    id: Uuid,
    keys: EphemeralKeyPair,
    nonce_n: Zeroizing<[u8; 32]>,
    commit: [u8; 32],
    expires_in: Duration,
    /// The approver's key and nonce as first seen (never replaced).
    claim: Option<([u8; 32], [u8; 32])>,
    code: Option<Code>,
}

/// The Secret Key an approver sent (opened and checked), for
/// [`NewDevice::login`].
pub struct Approved {
    secret_key: Zeroizing<String>,
}

/// Asks the server for an approval: `email`'s signed-in devices will see
/// `device_name` and this platform. The answer is the same whether the
/// account exists or not (a request to an unknown email just expires).
///
/// # Errors
/// A bad device name or email (usage), the server's refusals (rate limits),
/// network errors.
pub async fn request_approval(server: &str, email: &str, device_name: &str) -> Result<NewDevice> {
    let device_name = remote::check_device_name(device_name)?;
    let email = openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
    let client = Client::new(server).map_err(Error::from)?;
    let keys = EphemeralKeyPair::generate();
    let nonce_n = random32();
    let pub_n = keys.public();
    let commit = commitment(&pub_n, nonce_n.as_slice());
    let platform = remote::platform();
    let created = client
        .create_approval(&CreateApprovalRequest {
            email: email.clone(),
            device_name: device_name.clone(),
            platform: platform.clone(),
            pub_n: openk_server::api::types::B64(pub_n.to_vec()),
            commit: openk_server::api::types::B64(commit.to_vec()),
        })
        .await?;
    Ok(NewDevice {
        client: client.with_token(Some(created.poll_token)),
        server: server.to_owned(),
        email,
        device_name,
        platform,
        id: created.id,
        keys,
        nonce_n,
        commit,
        expires_in: Duration::from_secs(created.expires_in),
        claim: None,
        code: None,
    })
}

impl NewDevice {
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// How long the server keeps the request open.
    #[must_use]
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    #[must_use]
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    #[must_use]
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// Waits until a signed-in device takes the request, then reveals this
    /// device's nonce and returns the code to show.
    ///
    /// # Errors
    /// [`Error::ApprovalEnded`] when it is denied, expires, is cancelled or
    /// `until` passes (the request is then cancelled); a malformed claim
    /// ([`Error::Untrusted`]); network errors.
    pub async fn wait_for_code(&mut self, waiting: Waiting, started: Instant) -> Result<Code> {
        loop {
            if let Some(code) = &self.code {
                return Ok(code.clone());
            }
            let a = self.poll(waiting, started).await?;
            if let (Some(pub_a), Some(nonce_a)) = (&a.pub_a, &a.nonce_a) {
                let pub_a = exactly32(&pub_a.0, "approver key")?;
                let nonce_a = exactly32(&nonce_a.0, "approver nonce")?;
                // Only now, with the approver's key and nonce fixed, is the
                // nonce revealed: the server cannot pick them to fit it.
                self.claim = Some((pub_a, nonce_a));
                if a.state == "claimed" {
                    self.client
                        .reveal_approval(self.id, self.nonce_n.as_slice())
                        .await?;
                }
                let code = Code::compute(
                    self.id,
                    &self.keys.public(),
                    &pub_a,
                    self.nonce_n.as_slice(),
                    &nonce_a,
                );
                self.code = Some(code);
                continue;
            }
            tokio::time::sleep(waiting.poll).await;
        }
    }

    /// After [`Self::wait_for_code`]: waits for the approver's sealed box and
    /// opens it.
    ///
    /// # Errors
    /// [`Error::ApprovalEnded`] (denied, expired, timed out: the request is
    /// then cancelled); [`Error::Untrusted`] for a box that does not open
    /// with the approver's key for this transcript (nothing is used).
    pub async fn wait_for_secret(
        &mut self,
        waiting: Waiting,
        started: Instant,
    ) -> Result<Approved> {
        let (pub_a, nonce_a) = self.claim.ok_or_else(|| {
            Error::Invalid("no signed-in device has taken the request yet".into())
        })?;
        loop {
            let a = self.poll(waiting, started).await?;
            let Some(sealed) = a.sealed.filter(|_| a.state == "approved") else {
                tokio::time::sleep(waiting.poll).await;
                continue;
            };
            let transcript = Transcript {
                id: self.id,
                email: &self.email,
                device_name: &self.device_name,
                platform: &self.platform,
                pub_n: &self.keys.public(),
                commit: &self.commit,
                pub_a: &pub_a,
                nonce_a: &nonce_a,
                nonce_n: self.nonce_n.as_slice(),
            }
            .hash();
            let opened =
                open_auth(&self.keys, &pub_a, INFO, &transcript, &sealed.0).map_err(|_| {
                    Error::Untrusted(
                    "the approval does not open with the approving device's key for this request \
                     (the server sent something else); refused"
                        .into(),
                )
                })?;
            let payload: Payload = serde_json::from_slice(&opened)
                .ok()
                .filter(|p: &Payload| p.v == 1)
                .ok_or_else(|| {
                    Error::Untrusted("the approval's contents are not understood; refused".into())
                })?;
            SecretKey::parse(payload.secret_key.trim()).map_err(|_| {
                Error::Untrusted("the approval does not carry a valid Secret Key; refused".into())
            })?;
            return Ok(Approved {
                secret_key: payload.secret_key,
            });
        }
    }

    /// One look at the request; an end, or `until` passed, is an error
    /// (after the latter the request is cancelled).
    async fn poll(&self, waiting: Waiting, started: Instant) -> Result<ApprovalResponse> {
        if started.elapsed() >= waiting.timeout {
            self.cancel().await;
            return Err(Error::ApprovalEnded(ApprovalEnd::TimedOut));
        }
        let a = match self.client.approval(self.id).await {
            Ok(a) => a,
            // A poll that got no answer is tried again at the next one.
            Err(SyncError::Unreachable { .. } | SyncError::NotAnswering { .. }) => {
                return Ok(ApprovalResponse {
                    state: "pending".into(),
                    pub_a: None,
                    nonce_a: None,
                    sealed: None,
                    ..self.placeholder()
                });
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(end) = ended(&a.state) {
            return Err(Error::ApprovalEnded(end));
        }
        Ok(a)
    }

    fn placeholder(&self) -> ApprovalResponse {
        ApprovalResponse {
            id: self.id,
            state: String::new(),
            device_name: String::new(),
            platform: String::new(),
            created_at: String::new(),
            expires_in: 0,
            pub_n: openk_server::api::types::B64::default(),
            commit: openk_server::api::types::B64::default(),
            pub_a: None,
            nonce_a: None,
            nonce_n: None,
            sealed: None,
            claimed_by: None,
        }
    }

    /// Gives up: the request closes on the server (best effort).
    pub async fn cancel(&self) {
        if let Err(e) = self.client.cancel_approval(self.id).await {
            tracing::debug!(error = %e, "the approval request could not be cancelled; it expires on its own");
        }
    }

    /// Signs in with the master password and the Secret Key the approver
    /// sent, as [`remote::login`] does, naming this approval so that the
    /// device list shows who approved this device.
    ///
    /// # Errors
    /// As [`remote::login`].
    pub async fn login(
        &self,
        dir: &Path,
        approved: &Approved,
        password: SecretString,
        allow_weak_kdf: bool,
    ) -> Result<Session> {
        remote::login_with(
            dir,
            &self.server,
            &self.email,
            password,
            &approved.secret_key,
            allow_weak_kdf,
            &self.device_name,
            Some(self.id),
        )
        .await
    }
}

// --------------------------------------------------------------- approver

/// A new device's request as a signed-in device lists it. The strings are
/// the new device's words relayed by the server: strip terminal controls
/// before showing them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub id: Uuid,
    pub device_name: String,
    pub platform: String,
    /// RFC 3339.
    pub created_at: String,
    /// Seconds left.
    pub expires_in: u64,
    /// `pending`, or `claimed`/`revealed` when a device is comparing codes.
    pub state: String,
}

impl From<&ApprovalResponse> for Request {
    fn from(a: &ApprovalResponse) -> Self {
        Self {
            id: a.id,
            device_name: a.device_name.clone(),
            platform: a.platform.clone(),
            created_at: a.created_at.clone(),
            expires_in: a.expires_in,
            state: a.state.clone(),
        }
    }
}

/// A request this device took, with the code to compare: pass it to
/// [`Session::approve`] once the person confirmed the code, or to
/// [`Session::approve_if_code`] with the code they typed.
pub struct Claim {
    pub request: Request,
    code: Code,
    keys: EphemeralKeyPair,
    pub_n: [u8; 32],
    transcript: [u8; 32],
}

impl Claim {
    #[must_use]
    pub fn code(&self) -> &Code {
        &self.code
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("request", &self.request)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The account's requests waiting for a decision, oldest first.
    pub async fn approval_requests(&mut self) -> Result<Vec<Request>> {
        let open = self.authed(|c| async move { c.approvals().await }).await?;
        Ok(open.iter().map(Request::from).collect())
    }

    /// Takes request `id` with a one-time key and nonce, waits for the new
    /// device to open its commitment, checks it and computes the code.
    /// Nothing secret is sent.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such open request; [`Error::Untrusted`]
    /// when the commitment does not open (the server changed the new
    /// device's key or nonce: the request is denied); [`Error::ApprovalEnded`]
    /// when it ends or `waiting` runs out first.
    pub async fn claim_approval(&mut self, id: Uuid, waiting: Waiting) -> Result<Claim> {
        let started = Instant::now();
        let email = self.remote_or_err()?.email.clone();
        let seen = self.authed(|c| async move { c.approval(id).await }).await;
        let seen = match seen {
            Err(Error::NotFound(_)) => {
                return Err(Error::NotFound(format!("approval request {id}")));
            }
            other => other?,
        };
        if let Some(end) = ended(&seen.state) {
            return Err(Error::ApprovalEnded(end));
        }
        if seen.state != "pending" {
            return Err(Error::ApprovalEnded(ApprovalEnd::Taken));
        }
        // The new device's key and commitment as they were before this
        // device's nonce exists: later answers cannot change them.
        let pub_n = exactly32(&seen.pub_n.0, "new device key")?;
        let commit = exactly32(&seen.commit.0, "commitment")?;
        let request = Request::from(&seen);
        let keys = EphemeralKeyPair::generate();
        let nonce_a = random32();
        let pub_a = keys.public();
        let claim_nonce = *nonce_a;
        self.authed(|c| async move { c.claim_approval(id, pub_a, claim_nonce).await })
            .await
            .map_err(|e| match e {
                Error::Remote(SyncError::Conflict(_)) => Error::ApprovalEnded(ApprovalEnd::Taken),
                other => other,
            })?;
        let nonce_n = loop {
            if started.elapsed() >= waiting.timeout {
                self.deny_quietly(id).await;
                return Err(Error::ApprovalEnded(ApprovalEnd::TimedOut));
            }
            let a = self.authed(|c| async move { c.approval(id).await }).await?;
            if let Some(end) = ended(&a.state) {
                return Err(Error::ApprovalEnded(end));
            }
            if let Some(n) = a.nonce_n {
                break exactly32(&n.0, "new device nonce")?;
            }
            tokio::time::sleep(waiting.poll).await;
        };
        if !ct_eq(&commitment(&pub_n, &nonce_n), &commit) {
            self.deny_quietly(id).await;
            return Err(Error::Untrusted(
                "the new device's key or nonce was changed on the way (its commitment does not \
                 open): the request was refused and nothing was sent"
                    .into(),
            ));
        }
        let code = Code::compute(id, &pub_n, &pub_a, &nonce_n, nonce_a.as_slice());
        let transcript = Transcript {
            id,
            email: &email,
            device_name: &request.device_name,
            platform: &request.platform,
            pub_n: &pub_n,
            commit: &commit,
            pub_a: &pub_a,
            nonce_a: nonce_a.as_slice(),
            nonce_n: &nonce_n,
        }
        .hash();
        Ok(Claim {
            request,
            code,
            keys,
            pub_n,
            transcript,
        })
    }

    /// Sends this account's Secret Key to the claimed request's device,
    /// sealed to its key and bound to the transcript. Call it only once the
    /// person confirmed that both devices show the claim's code.
    ///
    /// # Errors
    /// Server refusals (the request ended meanwhile), network errors.
    pub async fn approve(&mut self, claim: Claim) -> Result<()> {
        let payload = Payload {
            v: 1,
            secret_key: Zeroizing::new(self.secret_key.display().to_string()),
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&payload).map_err(|e| Error::Damaged(e.to_string()))?,
        );
        let sealed = seal_auth(&claim.keys, &claim.pub_n, INFO, &claim.transcript, &plain)
            .map_err(|_| {
                Error::Untrusted(
                    "the new device's key is not a usable X25519 key; refused, nothing was sent"
                        .into(),
                )
            })?;
        let id = claim.request.id;
        self.authed(|c| {
            let sealed = sealed.clone();
            async move { c.approve_approval(id, sealed).await }
        })
        .await
        .map_err(|e| match e {
            Error::Remote(SyncError::Conflict(_)) => Error::ApprovalEnded(ApprovalEnd::Taken),
            other => other,
        })?;
        tracing::info!(approval = %id, "approved a new device");
        let d = super::security::detail([
            ("device", claim.request.device_name.as_str()),
            ("platform", claim.request.platform.as_str()),
        ]);
        self.record_security(super::security::SecurityKind::DeviceApproved, d)
            .await;
        Ok(())
    }

    /// [`Session::approve`] if `typed` is the claim's code; otherwise
    /// nothing is sent and the request is denied.
    ///
    /// # Errors
    /// [`Error::ApprovalEnded`] with [`ApprovalEnd::CodeMismatch`], or as
    /// [`Session::approve`].
    pub async fn approve_if_code(&mut self, claim: Claim, typed: &str) -> Result<()> {
        if claim.code.matches(typed) {
            return self.approve(claim).await;
        }
        self.deny_quietly(claim.request.id).await;
        Err(Error::ApprovalEnded(ApprovalEnd::CodeMismatch))
    }

    /// Denies request `id`: nothing is ever sent for it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such open request of the account.
    pub async fn deny_approval(&mut self, id: Uuid) -> Result<()> {
        self.authed(|c| async move { c.deny_approval(id).await })
            .await
            .map_err(|e| match e {
                Error::NotFound(_) | Error::Remote(SyncError::Conflict(_)) => {
                    Error::NotFound(format!("open approval request {id}"))
                }
                other => other,
            })
    }

    async fn deny_quietly(&mut self, id: Uuid) {
        if let Err(e) = self.deny_approval(id).await {
            tracing::debug!(error = %e, "could not deny the approval request");
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_compare_loosely() {
        let id = Uuid::now_v7();
        let c = Code::compute(id, &[1; 32], &[2; 32], &[3; 32], &[4; 32]);
        assert_eq!(c.as_str().len(), 7);
        assert!(c.matches(c.as_str()));
        assert!(c.matches(&c.as_str().replace(' ', "")));
        assert!(c.matches(&c.as_str().replace(' ', "-")));
        assert!(!c.matches("000 000") || c.as_str() == "000 000");
        assert!(!c.matches(""));
        // Every input counts.
        for other in [
            Code::compute(Uuid::now_v7(), &[1; 32], &[2; 32], &[3; 32], &[4; 32]),
            Code::compute(id, &[9; 32], &[2; 32], &[3; 32], &[4; 32]),
            Code::compute(id, &[1; 32], &[9; 32], &[3; 32], &[4; 32]),
            Code::compute(id, &[1; 32], &[2; 32], &[9; 32], &[4; 32]),
            Code::compute(id, &[1; 32], &[2; 32], &[3; 32], &[9; 32]),
        ] {
            assert_ne!(other, c);
        }
    }

    #[test]
    fn the_commitment_binds_key_and_nonce() {
        let c = commitment(&[1; 32], &[2; 32]);
        assert_eq!(c, commitment(&[1; 32], &[2; 32]));
        assert_ne!(c, commitment(&[3; 32], &[2; 32]));
        assert_ne!(c, commitment(&[1; 32], &[3; 32]));
    }
}
