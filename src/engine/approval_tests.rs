//! Device approval through a real server (in-process, random port), with a
//! lying server (a proxy that rewrites what one device sees) in front of it
//! for the attacks: a substituted key of either device, a relayed wrong
//! code, a swapped sealed box. Each must be refused with nothing sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::approval::{ApprovalEnd, Code, NewDevice, Waiting, request_approval};
use super::test_fixtures::{FAST_KDF as FAST, password as pw};
use super::test_server::{LyingProxy, Tamper, TestServer, Way};
use super::*;
use crate::crypto::hpke::{EphemeralKeyPair, seal_auth, seal_to};

const EMAIL: &str = "approve@example.org";

fn quick() -> Waiting {
    Waiting {
        timeout: Duration::from_secs(20),
        poll: Duration::from_millis(50),
    }
}

fn honest() -> Tamper {
    Arc::new(|_, _, _, _| {})
}

fn b64(v: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
}

fn to_b64(b: &[u8]) -> Value {
    use base64::Engine as _;
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// The signed-in device A, registered through `url` (a proxy or the server).
async fn approver(tmp: &tempfile::TempDir, url: &str) -> Session {
    let mut a = Session::init(&tmp.path().join("a"), pw(), FAST)
        .await
        .expect("init");
    a.register(url, EMAIL, "laptop").await.expect("register");
    a
}

/// The one request A sees.
async fn only_request(a: &mut Session) -> Uuid {
    let requests = a.approval_requests().await.expect("requests");
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests[0].id
}

/// N's side in a task: the code it shows (sent on `codes`), then the
/// outcome of waiting for the Secret Key.
fn run_new_device(
    mut n: NewDevice,
    codes: tokio::sync::mpsc::UnboundedSender<Code>,
) -> tokio::task::JoinHandle<(NewDevice, Result<approval::Approved>)> {
    tokio::spawn(async move {
        let started = Instant::now();
        let outcome = match n.wait_for_code(quick(), started).await {
            Ok(code) => {
                let _ = codes.send(code);
                n.wait_for_secret(quick(), started).await
            }
            Err(e) => Err(e),
        };
        (n, outcome)
    })
}

fn ended(r: &Result<approval::Approved>) -> Option<ApprovalEnd> {
    match r {
        Err(Error::ApprovalEnded(e)) => Some(*e),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_device_signs_in_and_the_list_says_who_approved_it() {
    let server = TestServer::start("memory").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &server.url).await;
    let n = request_approval(&server.url, EMAIL, "new phone")
        .await
        .expect("request");
    let (tx, mut codes) = tokio::sync::mpsc::unbounded_channel();
    let task = run_new_device(n, tx);

    let id = only_request(&mut a).await;
    let listed = a.approval_requests().await.expect("requests");
    assert_eq!(listed[0].device_name, "new phone");
    assert_eq!(listed[0].platform, remote::platform());
    let claim = a.claim_approval(id, quick()).await.expect("claim");
    let shown = codes.recv().await.expect("the new device shows a code");
    assert_eq!(claim.code(), &shown, "both devices show the same code");
    a.approve_if_code(claim, shown.as_str())
        .await
        .expect("approve");

    let (n, approved) = task.await.expect("task");
    let approved = approved.expect("the Secret Key arrives");
    let mut b = n
        .login(&tmp.path().join("n"), &approved, pw(), true)
        .await
        .expect("login with the approved Secret Key");
    assert_eq!(b.account_id(), a.account_id());
    let devices = b.devices().await.expect("devices");
    let mine = devices.iter().find(|d| d.current).expect("this device");
    assert_eq!(mine.approved_by, Some(a.device_id()));
    assert_eq!(mine.platform.as_deref(), Some(remote::platform().as_str()));
    let first = devices.iter().find(|d| d.id == a.device_id()).expect("a");
    assert_eq!(first.approved_by, None);
    // Nothing stays open, and the approval cannot be used twice.
    assert!(a.approval_requests().await.expect("requests").is_empty());
    assert!(
        remote::login_with(
            &tmp.path().join("again"),
            &server.url,
            EMAIL,
            pw(),
            a.secret_key.display().as_ref(),
            true,
            "again",
            Some(id),
        )
        .await
        .is_err(),
        "a used approval is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_refused_and_nothing_is_sent() {
    let server = TestServer::start("memory").await;
    let proxy = LyingProxy::start(&server.url, honest()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &proxy.url).await;
    let n = request_approval(&server.url, EMAIL, "new")
        .await
        .expect("request");
    let (tx, mut codes) = tokio::sync::mpsc::unbounded_channel();
    let task = run_new_device(n, tx);
    let id = only_request(&mut a).await;
    let claim = a.claim_approval(id, quick()).await.expect("claim");
    let shown = codes.recv().await.expect("code");
    let digits: String = shown
        .as_str()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let n_num: u32 = digits.parse().expect("digits");
    let wrong = format!("{:06}", (n_num + 1) % 1_000_000);
    let e = a.approve_if_code(claim, &wrong).await.expect_err("refused");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::CodeMismatch)),
        "{e}"
    );
    assert!(!proxy.saw("POST", "/approve"), "nothing was sent");
    let (_, outcome) = task.await.expect("task");
    assert_eq!(ended(&outcome), Some(ApprovalEnd::Denied));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_substituted_new_device_key_is_caught() {
    // The server shows A its own key for the new device, with a commitment
    // it made for that key (a careful liar): the codes differ.
    let server = TestServer::start("memory").await;
    let evil = Arc::new(EphemeralKeyPair::generate());
    let evil_nonce = [7u8; 32];
    let mut commit_input = b"openk approval commit v1".to_vec();
    commit_input.extend_from_slice(&evil.public());
    commit_input.extend_from_slice(&evil_nonce);
    let evil_commit: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&commit_input).into()
    };
    let evil_pub = evil.public();
    let tamper: Tamper = Arc::new(move |_, path, way, v| {
        if way != Way::Response || !path.starts_with("/v1/approvals") {
            return;
        }
        let rewrite = |o: &mut Value| {
            if o.get("pub_n").is_some() {
                o["pub_n"] = to_b64(&evil_pub);
                o["commit"] = to_b64(&evil_commit);
            }
            if o.get("nonce_n").is_some() {
                o["nonce_n"] = to_b64(&evil_nonce);
            }
        };
        match v {
            Value::Array(list) => list.iter_mut().for_each(rewrite),
            other => rewrite(other),
        }
    });
    let proxy = LyingProxy::start(&server.url, tamper).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &proxy.url).await;
    let n = request_approval(&server.url, EMAIL, "new")
        .await
        .expect("request");
    let (tx, mut codes) = tokio::sync::mpsc::unbounded_channel();
    let task = run_new_device(n, tx);
    let id = only_request(&mut a).await;
    let claim = a.claim_approval(id, quick()).await.expect("claim");
    let shown = codes.recv().await.expect("code");
    assert_ne!(claim.code(), &shown, "the codes differ");
    let e = a
        .approve_if_code(claim, shown.as_str())
        .await
        .expect_err("refused");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::CodeMismatch)),
        "{e}"
    );
    assert!(!proxy.saw("POST", "/approve"), "nothing was sent");
    let (_, outcome) = task.await.expect("task");
    assert_eq!(ended(&outcome), Some(ApprovalEnd::Denied));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_changed_without_its_commitment_is_refused_before_any_code() {
    // A lazy liar swaps only the key: the commitment does not open.
    let server = TestServer::start("memory").await;
    let evil_pub = EphemeralKeyPair::generate().public();
    let tamper: Tamper = Arc::new(move |_, path, way, v| {
        if way == Way::Response && path.starts_with("/v1/approvals") {
            let rewrite = |o: &mut Value| {
                if o.get("pub_n").is_some() {
                    o["pub_n"] = to_b64(&evil_pub);
                }
            };
            match v {
                Value::Array(list) => list.iter_mut().for_each(rewrite),
                other => rewrite(other),
            }
        }
    });
    let proxy = LyingProxy::start(&server.url, tamper).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &proxy.url).await;
    let n = request_approval(&server.url, EMAIL, "new")
        .await
        .expect("request");
    let (tx, _codes) = tokio::sync::mpsc::unbounded_channel();
    let task = run_new_device(n, tx);
    let id = only_request(&mut a).await;
    let e = a.claim_approval(id, quick()).await.expect_err("refused");
    assert!(matches!(e, Error::Untrusted(_)), "{e}");
    assert!(e.to_string().contains("nothing was sent"), "{e}");
    assert!(!proxy.saw("POST", "/approve"));
    let (_, outcome) = task.await.expect("task");
    assert_eq!(ended(&outcome), Some(ApprovalEnd::Denied));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_substituted_approver_key_changes_the_new_devices_code() {
    // The server shows N another approver key: N's code is not A's, so the
    // person (or `--code`) refuses.
    let server = TestServer::start("memory").await;
    let evil_pub = EphemeralKeyPair::generate().public();
    let tamper: Tamper = Arc::new(move |_, path, way, v| {
        if way == Way::Response && path.starts_with("/v1/approvals/") && v.get("pub_a").is_some() {
            v["pub_a"] = to_b64(&evil_pub);
        }
    });
    let n_proxy = LyingProxy::start(&server.url, tamper).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &server.url).await;
    let n = request_approval(&n_proxy.url, EMAIL, "new")
        .await
        .expect("request");
    let (tx, mut codes) = tokio::sync::mpsc::unbounded_channel();
    let task = run_new_device(n, tx);
    let id = only_request(&mut a).await;
    let claim = a.claim_approval(id, quick()).await.expect("claim");
    let shown = codes.recv().await.expect("code");
    assert_ne!(claim.code(), &shown);
    let e = a
        .approve_if_code(claim, shown.as_str())
        .await
        .expect_err("refused");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::CodeMismatch)),
        "{e}"
    );
    let (_, outcome) = task.await.expect("task");
    assert_eq!(ended(&outcome), Some(ApprovalEnd::Denied));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_box_swapped_by_the_server_is_refused() {
    // The server knows every public value of the transcript, so it can seal
    // a Secret Key of its choosing to pub_n; without the approver's private
    // key its box does not open in Auth mode, and nothing is used.
    let server = TestServer::start("memory").await;
    let evil = Arc::new(EphemeralKeyPair::generate());
    let tamper: Tamper = {
        let evil = evil.clone();
        Arc::new(move |_, path, way, v| {
            if way == Way::Response
                && path.starts_with("/v1/approvals/")
                && v.get("sealed").is_some()
            {
                let pub_n: [u8; 32] = b64(&v["pub_n"]).try_into().expect("32");
                // Whatever aad it uses, the box is not the approver's.
                let forged = if v["id"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(['0', '2', '4', '6', '8', 'a', 'c', 'e']))
                {
                    seal_auth(&evil, &pub_n, b"openk/v1/device-approval", b"", b"{}").expect("seal")
                } else {
                    seal_to(&pub_n, b"openk/v1/device-approval", b"", b"{}").expect("seal")
                };
                v["sealed"] = to_b64(&forged);
            }
        })
    };
    let n_proxy = LyingProxy::start(&server.url, tamper).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &server.url).await;
    let n = request_approval(&n_proxy.url, EMAIL, "new")
        .await
        .expect("request");
    let (tx, mut codes) = tokio::sync::mpsc::unbounded_channel();
    let task = run_new_device(n, tx);
    let id = only_request(&mut a).await;
    let claim = a.claim_approval(id, quick()).await.expect("claim");
    let shown = codes.recv().await.expect("code");
    a.approve_if_code(claim, shown.as_str())
        .await
        .expect("approved");
    let (_, outcome) = task.await.expect("task");
    let Err(Error::Untrusted(why)) = outcome else {
        panic!("a swapped box must be refused");
    };
    assert!(why.contains("refused"), "{why}");
    assert!(!tmp.path().join("n").exists(), "nothing was made of it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_or_timed_out_sends_nothing() {
    let server = TestServer::start("memory").await;
    let proxy = LyingProxy::start(&server.url, honest()).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &proxy.url).await;

    // Denied before any claim: the new device's wait ends.
    let n = request_approval(&server.url, EMAIL, "one")
        .await
        .expect("request");
    let (tx, _codes) = tokio::sync::mpsc::unbounded_channel();
    let task = run_new_device(n, tx);
    let id = only_request(&mut a).await;
    a.deny_approval(id).await.expect("deny");
    let (_, outcome) = task.await.expect("task");
    assert_eq!(ended(&outcome), Some(ApprovalEnd::Denied));
    assert!(a.approval_requests().await.expect("requests").is_empty());
    let e = a.claim_approval(id, quick()).await.expect_err("closed");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::Denied)),
        "{e}"
    );

    // The new device stops waiting: the request is cancelled, and an
    // approver that comes late gets nothing to approve.
    let mut n = request_approval(&server.url, EMAIL, "two")
        .await
        .expect("request");
    let short = Waiting {
        timeout: Duration::from_millis(200),
        poll: Duration::from_millis(50),
    };
    let e = n
        .wait_for_code(short, Instant::now())
        .await
        .expect_err("timed out");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::TimedOut)),
        "{e}"
    );
    assert!(a.approval_requests().await.expect("requests").is_empty());
    let e = a.claim_approval(n.id(), quick()).await.expect_err("closed");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::Cancelled)),
        "{e}"
    );

    // An approver that waits in vain for the new device's nonce gives up
    // and denies.
    let n = request_approval(&server.url, EMAIL, "three")
        .await
        .expect("request");
    let id = only_request(&mut a).await;
    let e = a.claim_approval(id, short).await.expect_err("timed out");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::TimedOut)),
        "{e}"
    );
    drop(n);
    assert!(!proxy.saw("POST", "/approve"), "nothing was ever sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_an_unknown_email_looks_the_same_and_is_never_listed() {
    let server = TestServer::start("memory").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = approver(&tmp, &server.url).await;
    let mut n = request_approval(&server.url, "nobody@example.org", "x")
        .await
        .expect("answered like any other");
    assert!(n.expires_in() > Duration::from_secs(60));
    assert!(a.approval_requests().await.expect("requests").is_empty());
    let short = Waiting {
        timeout: Duration::from_millis(150),
        poll: Duration::from_millis(50),
    };
    let e = n
        .wait_for_code(short, Instant::now())
        .await
        .expect_err("never approved");
    assert!(
        matches!(e, Error::ApprovalEnded(ApprovalEnd::TimedOut)),
        "{e}"
    );
}
