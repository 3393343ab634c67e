//! `GET /v1/events`: what a device hears when its account's vaults move.
//!
//! In process (`router(state).oneshot(..)`, the body read as it streams)
//! for the event contents, filtering and authentication; on a real socket
//! for what the middleware must not break (request timeout, compression)
//! and for shutdown. The Redis bus runs when `OPENK_TEST_REDIS_URL` is set,
//! and two nodes on one PostgreSQL database when `OPENK_TEST_POSTGRES_URL`
//! is set too; each test has its own key prefix (removed at the end) and
//! database (dropped). A variable that is set but names an unreachable
//! service fails the test; an unset one prints "skipped".

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{Server, b64, batch, blob, change, random_bytes};
use futures::StreamExt as _;
use openk_server::Settings;
use openk_server::events::VaultChanged;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use uuid::Uuid;

const EVENTS: &str = "/v1/events";
/// How long an event may take to arrive.
const PROMPT: Duration = Duration::from_secs(2);

// ------------------------------------------------------------------ reading a stream

/// One server-sent event or comment.
#[derive(Debug, Clone, PartialEq)]
enum Sse {
    Event { name: String, data: Value },
    Comment(String),
}

/// Where stream bytes come from.
enum Source {
    /// An in-process response body.
    Body(Box<dyn futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Send + Unpin>),
    /// A socket, after the response head, with chunked framing to undo.
    Socket { stream: TcpStream, raw: Vec<u8> },
}

impl Source {
    /// The next piece of the body; `None` at its end.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        match self {
            Self::Body(body) => match body.next().await {
                Some(Ok(bytes)) => Some(bytes.to_vec()),
                Some(Err(_)) | None => None,
            },
            Self::Socket { stream, raw } => loop {
                if let Some(end) = find(raw, b"\r\n") {
                    let size_text = String::from_utf8_lossy(&raw[..end]).into_owned();
                    let size = usize::from_str_radix(size_text.trim(), 16)
                        .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
                    if size == 0 {
                        return None;
                    }
                    if raw.len() >= end + 2 + size + 2 {
                        let data = raw[end + 2..end + 2 + size].to_vec();
                        raw.drain(..end + 2 + size + 2);
                        return Some(data);
                    }
                }
                let mut buf = [0u8; 4096];
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
            },
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An open event stream.
struct Stream {
    source: Source,
    text: String,
}

impl Stream {
    fn new(source: Source) -> Self {
        Self {
            source,
            text: String::new(),
        }
    }

    /// The next event or comment; `None` when the stream ended. Panics
    /// when nothing comes within `within`.
    async fn next_item(&mut self, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            match tokio::time::timeout_at(deadline, self.source.chunk()).await {
                Ok(Some(bytes)) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) => {
                    assert!(self.text.trim().is_empty(), "a torn event: {:?}", self.text);
                    return None;
                }
                Err(_) => panic!("nothing on the event stream within {within:?}"),
            }
        }
    }

    /// The next event (comments skipped), which must come within `within`.
    async fn event(&mut self, within: Duration) -> (String, Value) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_item(left).await {
                Some(Sse::Event { name, data }) => return (name, data),
                Some(Sse::Comment(_)) => {}
                None => panic!("the event stream ended"),
            }
        }
    }

    /// Asserts that the stream ends within `within` (events before the end
    /// are allowed); returns how long it took.
    async fn ends(&mut self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let left = within.saturating_sub(started.elapsed());
            if self.next_item(left).await.is_none() {
                return started.elapsed();
            }
        }
    }
}

fn parse(block: &str) -> Sse {
    let mut name = None;
    let mut data = Vec::new();
    let mut comment = None;
    for line in block.lines().filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix(':') {
            comment = Some(c.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("event:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.trim_start().to_owned());
        } else {
            panic!("unexpected line {line:?} in {block:?}");
        }
    }
    match (name, comment) {
        (Some(name), None) => Sse::Event {
            data: serde_json::from_str(&data.join("\n"))
                .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {block:?}")),
            name,
        },
        (None, Some(c)) if data.is_empty() => Sse::Comment(c),
        _ => panic!("neither an event nor a comment: {block:?}"),
    }
}

/// Opens `/v1/events` in process; asserts a 200 event stream.
async fn subscribe(s: &Server, token: &str) -> Stream {
    let req = Request::builder()
        .uri(EVENTS)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::empty())
        .expect("request");
    let res = s.open(req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    Stream::new(Source::Body(Box::new(res.into_body().into_data_stream())))
}

/// The `ready` event that opens a stream: vault id → head.
async fn ready(stream: &mut Stream) -> BTreeSet<(String, i64)> {
    let (name, data) = stream.event(PROMPT).await;
    assert_eq!(name, "ready", "{data}");
    heads(&data)
}

fn heads(data: &Value) -> BTreeSet<(String, i64)> {
    assert_eq!(
        data.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["vaults".to_owned()]),
        "{data}"
    );
    data["vaults"]
        .as_array()
        .expect("vaults")
        .iter()
        .map(|v| {
            assert_eq!(v.as_object().map(serde_json::Map::len), Some(2), "{v}");
            (
                v["vault_id"].as_str().expect("vault_id").to_owned(),
                v["head"].as_i64().expect("head"),
            )
        })
        .collect()
}

/// Asserts the next event is `vault` with exactly these fields.
async fn expect_vault(stream: &mut Stream, vault: Uuid, head: i64, device: Uuid) {
    let (name, data) = stream.event(PROMPT).await;
    assert_eq!(name, "vault", "{data}");
    assert_eq!(
        data,
        json!({ "vault_id": vault, "head": head, "device_id": device }),
        "exactly these fields: nothing about items"
    );
}

fn quick(settings: Settings) -> Settings {
    Settings {
        events_keepalive_secs: 1,
        ..settings
    }
}

async fn memory() -> Server {
    Server::start(quick(Settings::for_tests())).await
}

async fn metric(s: &Server) -> i64 {
    let text = s.get("/metrics", None).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("openk_event_streams "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no openk_event_streams gauge in:\n{text}"))
}

// ------------------------------------------------------------------ in process

#[tokio::test]
async fn pushes_reach_the_accounts_devices_and_no_one_else() {
    let s = memory().await;
    let (a, laptop) = s.account("events").await;
    let phone = s.login(&a, Uuid::now_v7()).await;
    let v1 = s.create_vault(&laptop.access).await;
    let v2 = s.create_vault(&laptop.access).await;
    s.push_ok(&laptop.access, v1, vec![change(Uuid::now_v7(), 0, 1)])
        .await;

    let mut events = subscribe(&s, &phone.access).await;
    assert_eq!(
        ready(&mut events).await,
        BTreeSet::from([(v1.to_string(), 1), (v2.to_string(), 0)])
    );

    // Another account's push is published first, and never delivered here:
    // the next event is our account's.
    let (_, stranger) = s.account("stranger").await;
    let theirs = s.create_vault(&stranger.access).await;
    s.push_ok(&stranger.access, theirs, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
    s.push_ok(
        &laptop.access,
        v1,
        vec![change(Uuid::now_v7(), 0, 1), change(Uuid::now_v7(), 0, 1)],
    )
    .await;
    expect_vault(&mut events, v1, 3, laptop.device_id).await;

    // Pushes that apply nothing say nothing: a conflict, a replay, a moved
    // head, an empty batch. The next event is the next real change.
    let item = Uuid::now_v7();
    let first = batch(Uuid::now_v7(), vec![change(item, 0, 1)]);
    s.push(&laptop.access, v2, &first).await.expect(200);
    expect_vault(&mut events, v2, 1, laptop.device_id).await;
    let stale = s
        .push(
            &laptop.access,
            v2,
            &batch(Uuid::now_v7(), vec![change(item, 0, 2)]),
        )
        .await
        .expect(200);
    assert_eq!(stale["conflicts"].as_array().map(Vec::len), Some(1));
    s.push(&laptop.access, v2, &first).await.expect(200);
    let mut moved = batch(Uuid::now_v7(), vec![change(Uuid::now_v7(), 0, 1)]);
    moved["expected_head"] = json!(0);
    s.push(&laptop.access, v2, &moved)
        .await
        .problem(409, "head_moved");
    s.push(&laptop.access, v2, &batch(Uuid::now_v7(), vec![]))
        .await
        .expect(200);
    // The phone's own pushes are announced too, naming the phone.
    s.push_ok(&phone.access, v2, vec![change(item, 1, 2)]).await;
    expect_vault(&mut events, v2, 2, phone.device_id).await;

    // A second stream of the same device, opened later, starts from now.
    let mut again = subscribe(&s, &phone.access).await;
    assert_eq!(
        ready(&mut again).await,
        BTreeSet::from([(v1.to_string(), 3), (v2.to_string(), 2)])
    );
    s.push_ok(&laptop.access, v1, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
    expect_vault(&mut events, v1, 4, laptop.device_id).await;
    expect_vault(&mut again, v1, 4, laptop.device_id).await;
}

#[tokio::test]
async fn keep_alives_come_between_events() {
    let s = memory().await;
    let (_, t) = s.account("idle").await;
    let mut events = subscribe(&s, &t.access).await;
    assert_eq!(ready(&mut events).await, BTreeSet::new(), "no vaults yet");
    let started = Instant::now();
    assert_eq!(
        events.next_item(Duration::from_secs(3)).await,
        Some(Sse::Comment("keep-alive".into()))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "one per second"
    );
    // A vault made after the stream opened shows up with its first push.
    let v = s.create_vault(&t.access).await;
    s.push_ok(&t.access, v, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
    expect_vault(&mut events, v, 1, t.device_id).await;
}

#[tokio::test]
async fn event_streams_need_a_live_token() {
    let s = memory().await;
    let (a, t) = s.account("unauth").await;
    s.get(EVENTS, None).await.problem(401, "unauthorized");
    s.get(EVENTS, Some("okat_not-a-token"))
        .await
        .problem(401, "unauthorized");
    s.get(EVENTS, Some(&t.refresh))
        .await
        .problem(401, "unauthorized");
    let gone = s.login(&a, Uuid::now_v7()).await;
    s.post("/v1/accounts/logout", Some(&gone.access), &json!({}))
        .await
        .expect(204);
    s.get(EVENTS, Some(&gone.access))
        .await
        .problem(401, "unauthorized");
    s.call(Method::POST, EVENTS, Some(&t.access), None)
        .await
        .problem(405, "method_not_allowed");
    assert_eq!(metric(&s).await, 0, "refused streams are not counted");
}

async fn ends_when_signed_out(s: &Server) {
    let (a, laptop) = s.account("revoke").await;
    let phone_id = Uuid::now_v7();
    let phone = s.login(&a, phone_id).await;
    let tablet = s.login(&a, Uuid::now_v7()).await;
    let mut watching = subscribe(s, &laptop.access).await;
    let mut revoked = subscribe(s, &phone.access).await;
    let mut logged_out = subscribe(s, &tablet.access).await;
    for stream in [&mut watching, &mut revoked, &mut logged_out] {
        ready(stream).await;
    }
    assert_eq!(metric(s).await, 3);

    s.call(
        Method::DELETE,
        &format!("/v1/devices/{phone_id}"),
        Some(&laptop.access),
        None,
    )
    .await
    .expect(204);
    s.post("/v1/accounts/logout", Some(&tablet.access), &json!({}))
        .await
        .expect(204);
    // At the next keep-alive tick (1 s here) at the latest.
    let took = revoked.ends(Duration::from_secs(3)).await;
    assert!(took <= Duration::from_millis(2500), "{took:?}");
    logged_out.ends(Duration::from_secs(3)).await;

    // The laptop's stream goes on.
    let v = s.create_vault(&laptop.access).await;
    s.push_ok(&laptop.access, v, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
    expect_vault(&mut watching, v, 1, laptop.device_id).await;
    drop((revoked, logged_out));
    assert_eq!(metric(s).await, 1);
    drop(watching);
    assert_eq!(metric(s).await, 0, "a dropped stream is not counted");
}

#[tokio::test]
async fn revocation_and_logout_end_the_stream_memory() {
    ends_when_signed_out(&memory().await).await;
}

#[tokio::test]
async fn revocation_and_logout_end_the_stream_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(quick(Settings {
        database: format!("sqlite://{}", dir.path().join("s.db").display()),
        ..Settings::for_tests()
    }))
    .await
    .guard(dir);
    ends_when_signed_out(&s).await;
}

#[tokio::test]
async fn a_stream_that_falls_behind_gets_every_head_again() {
    let s = memory().await;
    let (a, t) = s.account("lag").await;
    let account_id = s.internal_id(&a).await;
    let v = s.create_vault(&t.access).await;
    s.push_ok(&t.access, v, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
    let mut events = subscribe(&s, &t.access).await;
    ready(&mut events).await;
    // Far more notices than a stream may hold while it is not read.
    for head in 0..5000 {
        s.state.events.publish(VaultChanged {
            account_id,
            vault_id: Uuid::now_v7(),
            head,
            device_id: t.device_id,
        });
    }
    let (name, data) = events.event(PROMPT).await;
    assert_eq!(name, "ready", "missed events are made up for: {data}");
    assert_eq!(heads(&data), BTreeSet::from([(v.to_string(), 1)]));
    // Then the stream goes on with what it still holds.
    let (name, _) = events.event(PROMPT).await;
    assert_eq!(name, "vault");
}

// ------------------------------------------------------------------ shared vaults

fn log_entry(seq: u64) -> Value {
    json!({ "seq": seq, "entry": blob(200), "signature": b64(&random_bytes(64)) })
}

/// Makes `vault` shared and invites each (email, role); returns the log's
/// next sequence number.
async fn share(s: &Server, owner: &str, vault: Uuid, invitees: &[(&str, &str)]) -> u64 {
    let path = format!("/v1/vaults/{vault}/log");
    let create = json!({ "kind": "create", "sealed_key": blob(81), "key_epoch": 1 });
    s.post(
        &path,
        Some(owner),
        &json!({ "entry": log_entry(0), "change": create }),
    )
    .await
    .expect(204);
    let mut seq = 1;
    for (email, role) in invitees {
        let grant = json!({ "kind": "grant", "email": email, "role": role,
            "sealed_key": blob(81), "key_epoch": 1 });
        s.post(
            &path,
            Some(owner),
            &json!({ "entry": log_entry(seq), "change": grant }),
        )
        .await
        .expect(204);
        seq += 1;
    }
    seq
}

async fn accept(s: &Server, token: &str, vault: Uuid) {
    s.post(
        &format!("/v1/vaults/{vault}/membership"),
        Some(token),
        &json!({ "accept": true }),
    )
    .await
    .expect(204);
}

/// Reads until a keep-alive (at which the stream re-reads the vaults shared
/// with its account); `vault` events of `allowed` may come before it.
async fn until_keep_alive(stream: &mut Stream, allowed: Uuid) {
    loop {
        match stream.next_item(Duration::from_secs(3)).await {
            Some(Sse::Comment(c)) if c == "keep-alive" => return,
            Some(Sse::Event { name, data })
                if name == "vault" && data["vault_id"] == json!(allowed) => {}
            other => panic!("before the keep-alive: {other:?}"),
        }
    }
}

/// A shared vault's changes reach every device of its accepted members
/// (the owner's pushes, the members', a key rotation), and their `ready`
/// lists its head; strangers, invitees who have not accepted and removed
/// members hear nothing of it (the latter two from the next keep-alive on).
async fn shared_vaults_reach_their_members(s: &Server) {
    let (ana_account, ana) = s.account("ana").await;
    let (ben_account, ben) = s.account("ben").await;
    let (cy_account, cy) = s.account("cy").await;
    let (dee_account, dee) = s.account("dee").await;
    let (_, eve) = s.account("eve").await;
    let team = s.create_vault(&ana.access).await;
    let item = Uuid::now_v7();
    s.push_ok(&ana.access, team, vec![change(item, 0, 1)]).await;
    let seq = share(
        s,
        &ana.access,
        team,
        &[
            (&ben_account.email, "editor"),
            (&dee_account.email, "viewer"),
            (&cy_account.email, "viewer"),
        ],
    )
    .await;
    accept(s, &ben.access, team).await;
    accept(s, &dee.access, team).await;
    let ben_own = s.create_vault(&ben.access).await;
    let cy_own = s.create_vault(&cy.access).await;
    let dee_own = s.create_vault(&dee.access).await;
    let eve_own = s.create_vault(&eve.access).await;

    // `ready`: a member's own vaults and the shared one; nobody else's.
    let ben_phone = s.login(&ben_account, Uuid::now_v7()).await;
    let mut on_ben = subscribe(s, &ben_phone.access).await;
    assert_eq!(
        ready(&mut on_ben).await,
        BTreeSet::from([(ben_own.to_string(), 0), (team.to_string(), 1)])
    );
    let mut on_dee = subscribe(s, &dee.access).await;
    assert_eq!(
        ready(&mut on_dee).await,
        BTreeSet::from([(dee_own.to_string(), 0), (team.to_string(), 1)])
    );
    let mut on_cy = subscribe(s, &cy.access).await;
    assert_eq!(
        ready(&mut on_cy).await,
        BTreeSet::from([(cy_own.to_string(), 0)]),
        "an invitation is not a membership yet"
    );
    let mut on_eve = subscribe(s, &eve.access).await;
    assert_eq!(
        ready(&mut on_eve).await,
        BTreeSet::from([(eve_own.to_string(), 0)])
    );
    let mut on_ana = subscribe(s, &ana.access).await;
    assert_eq!(
        ready(&mut on_ana).await,
        BTreeSet::from([(team.to_string(), 1)])
    );

    // The owner pushes: every member's device hears it, naming the owner's.
    s.push_ok(&ana.access, team, vec![change(item, 1, 2)]).await;
    expect_vault(&mut on_ben, team, 2, ana.device_id).await;
    expect_vault(&mut on_dee, team, 2, ana.device_id).await;
    expect_vault(&mut on_ana, team, 2, ana.device_id).await;
    // A member pushes: the owner hears it too.
    let bens = Uuid::now_v7();
    s.push_ok(&ben.access, team, vec![change(bens, 0, 1)]).await;
    expect_vault(&mut on_ana, team, 3, ben.device_id).await;
    expect_vault(&mut on_ben, team, 3, ben.device_id).await;
    expect_vault(&mut on_dee, team, 3, ben.device_id).await;
    // Neither the stranger nor the invitee heard any of it: their next
    // event is their own vault's.
    for (t, mine, stream) in [(&eve, eve_own, &mut on_eve), (&cy, cy_own, &mut on_cy)] {
        s.push_ok(&t.access, mine, vec![change(Uuid::now_v7(), 0, 1)])
            .await;
        expect_vault(stream, mine, 1, t.device_id).await;
    }

    // Ana removes Dee, rotating the key: the members hear the new head.
    let sealed = |email: &str| json!({ "email": email, "sealed_key": blob(81) });
    let rewrapped = |item: Uuid, version: u64| json!({ "item_id": item, "version": version, "wrapped_key": blob(60) });
    let rotation = json!({
        "key_epoch": 2,
        "sealed_keys": [
            sealed(&ana_account.email),
            sealed(&ben_account.email),
            sealed(&cy_account.email),
        ],
        "records": [rewrapped(item, 2), rewrapped(bens, 1)],
        "meta": blob(64),
        "manifest": blob(80),
        "expected_head": 3,
    });
    s.post(
        &format!("/v1/vaults/{team}/log"),
        Some(&ana.access),
        &json!({ "entry": log_entry(seq), "change": {
            "kind": "remove", "email": dee_account.email, "rotation": rotation } }),
    )
    .await
    .expect(204);
    expect_vault(&mut on_ben, team, 5, ana.device_id).await;
    expect_vault(&mut on_ana, team, 5, ana.device_id).await;

    // From its next keep-alive on, Dee's stream hears nothing of the
    // vault; Cy, who accepts now, hears it from its next keep-alive on.
    accept(s, &cy.access, team).await;
    until_keep_alive(&mut on_dee, team).await;
    until_keep_alive(&mut on_cy, team).await;
    let mut push = batch(Uuid::now_v7(), vec![change(item, 4, 3)]);
    push["key_epoch"] = json!(2);
    s.push(&ana.access, team, &push).await.expect(200);
    expect_vault(&mut on_cy, team, 6, ana.device_id).await;
    expect_vault(&mut on_ben, team, 6, ana.device_id).await;
    s.push_ok(&dee.access, dee_own, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
    expect_vault(&mut on_dee, dee_own, 1, dee.device_id).await;

    // A stream that fell behind gets every head again, the shared one too.
    let ben_id = s.internal_id(&ben_account).await;
    for head in 0..5000 {
        s.state.events.publish(VaultChanged {
            account_id: ben_id,
            vault_id: Uuid::now_v7(),
            head,
            device_id: ben.device_id,
        });
    }
    let (name, data) = on_ben.event(PROMPT).await;
    assert_eq!(name, "ready", "missed events are made up for: {data}");
    assert_eq!(
        heads(&data),
        BTreeSet::from([(ben_own.to_string(), 0), (team.to_string(), 6)])
    );
}

#[tokio::test]
async fn shared_vaults_reach_their_members_memory() {
    shared_vaults_reach_their_members(&memory().await).await;
}

#[tokio::test]
async fn shared_vaults_reach_their_members_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(quick(Settings {
        database: format!("sqlite://{}", dir.path().join("s.db").display()),
        ..Settings::for_tests()
    }))
    .await
    .guard(dir);
    shared_vaults_reach_their_members(&s).await;
}

#[tokio::test]
async fn shared_vaults_reach_their_members_postgres() {
    let Some(db) = common::PgDatabase::create("openk_events").await else {
        return;
    };
    let s = Server::start(quick(Settings {
        database: db.url(),
        ..Settings::for_tests()
    }))
    .await
    .guard(db);
    shared_vaults_reach_their_members(&s).await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_stream() {
    let s = memory().await;
    let doc = s.get("/openapi.json", None).await.expect(200);
    let get = &doc["paths"][EVENTS]["get"];
    assert!(
        get["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{get}"
    );
    assert!(get["responses"]["401"].is_object(), "{get}");
    for schema in ["ReadyEvent", "VaultEvent", "VaultHead"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} is documented"
        );
    }
}

// ------------------------------------------------------------------ on a socket

/// A node served on a real socket, and a router on the same state.
struct Live {
    addr: SocketAddr,
    node: Server,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Live {
    async fn start(settings: Settings) -> Self {
        let state = openk_server::build_state(settings)
            .await
            .expect("server state");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(openk_server::serve_listener(
            state.clone(),
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            node: Server::with_state(state),
            stop: Some(stop),
            task,
        }
    }

    /// Opens `/v1/events` over HTTP/1.1, offering gzip; returns the
    /// response head (lower-cased header names) and the stream.
    async fn subscribe(&self, token: &str) -> (String, Stream) {
        let mut socket = TcpStream::connect(self.addr).await.expect("connect");
        let request = format!(
            "GET {EVENTS} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\nAccept-Encoding: gzip, br\r\n\r\n",
            self.addr
        );
        socket
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut raw = Vec::new();
        let end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(PROMPT, socket.read(&mut buf))
                .await
                .expect("a response head in time")
                .expect("read");
            assert!(n > 0, "closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
        raw.drain(..end + 4);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        (
            head,
            Stream::new(Source::Socket {
                stream: socket,
                raw,
            }),
        )
    }

    /// Signals shutdown and waits for the server to stop; returns how long.
    async fn shut_down(&mut self, within: Duration) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(within, &mut self.task)
            .await
            .unwrap_or_else(|_| panic!("the server did not stop within {within:?}"))
            .expect("server task")
            .expect("serve");
        started.elapsed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_outlive_the_request_timeout_and_are_never_compressed() {
    let live = Live::start(quick(Settings {
        request_timeout_secs: 1,
        ..Settings::for_tests()
    }))
    .await;
    let s = &live.node;
    let (_, t) = s.account("socket").await;
    let v = s.create_vault(&t.access).await;
    let (head, mut events) = live.subscribe(&t.access).await;
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert!(head.contains("x-accel-buffering: no"), "{head}");
    assert!(head.contains("x-request-id: "), "{head}");
    assert!(!head.contains("content-encoding"), "compressed: {head}");
    assert_eq!(
        ready(&mut events).await,
        BTreeSet::from([(v.to_string(), 0)])
    );
    // Well past the 1 s request timeout: keep-alives, then an event.
    let started = Instant::now();
    let mut comments = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        match events.next_item(Duration::from_secs(2)).await {
            Some(Sse::Comment(c)) => {
                assert_eq!(c, "keep-alive");
                comments += 1;
            }
            other => panic!("expected keep-alives, got {other:?}"),
        }
    }
    assert!(comments >= 2, "{comments} keep-alives");
    // A push through the socket too.
    let (status, body) = common::http(
        live.addr,
        "POST",
        &format!("/v1/vaults/{v}/changes"),
        Some(&t.access),
        Some(&batch(Uuid::now_v7(), vec![change(Uuid::now_v7(), 0, 1)])),
    )
    .await
    .expect("push over HTTP");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    expect_vault(&mut events, v, 1, t.device_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_event_streams_at_once() {
    let mut live = Live::start(Settings::for_tests()).await;
    let (_, t) = live.node.account("shutdown").await;
    let (_, mut one) = live.subscribe(&t.access).await;
    let (_, mut two) = live.subscribe(&t.access).await;
    ready(&mut one).await;
    ready(&mut two).await;
    // The drain allows 30 s; open streams must not hold it up.
    let took = live.shut_down(Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    one.ends(PROMPT).await;
    two.ends(PROMPT).await;
    assert!(
        TcpStream::connect(live.addr).await.is_err(),
        "the listener is closed"
    );
}

// ------------------------------------------------------------------ Redis

#[cfg(feature = "redis")]
mod redis {
    use std::sync::{Arc, Mutex};

    use openk_server::events::Notice;
    use tokio::net::TcpListener;

    use super::*;

    /// A TCP relay to Redis whose connections can be cut, to play a Redis
    /// that drops its clients.
    struct Relay {
        url: String,
        conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
        accept: tokio::task::JoinHandle<()>,
    }

    impl Relay {
        async fn start(redis_url: &str) -> Self {
            let (scheme, rest) = redis_url.split_once("://").expect("a redis:// URL");
            let (userinfo, rest) = match rest.rsplit_once('@') {
                Some((u, r)) => (format!("{u}@"), r),
                None => (String::new(), rest),
            };
            let (target, path) = match rest.find('/') {
                Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
                None => (rest.to_owned(), String::new()),
            };
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!(
                "{scheme}://{userinfo}{}{path}",
                listener.local_addr().expect("address")
            );
            let conns = Arc::new(Mutex::new(Vec::new()));
            let held = Arc::clone(&conns);
            let accept = tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    held.lock().expect("lock").push(task.abort_handle());
                }
            });
            Self { url, conns, accept }
        }

        /// Drops every relayed connection (new ones are still accepted).
        fn cut(&self) {
            for conn in self.conns.lock().expect("lock").drain(..) {
                conn.abort();
            }
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.cut();
            self.accept.abort();
        }
    }

    async fn recv(rx: &mut tokio::sync::broadcast::Receiver<Notice>) -> Notice {
        tokio::time::timeout(PROMPT, rx.recv())
            .await
            .expect("a notice in time")
            .expect("notice")
    }

    /// Runs `story` and then removes the prefix's keys, also on failure.
    async fn with_prefix<F: std::future::Future<Output = ()>>(url: &str, prefix: &str, story: F) {
        use futures::FutureExt as _;
        let cleaner = openk_server::cache::RedisCache::connect(url, prefix)
            .await
            .unwrap_or_else(|e| {
                panic!("OPENK_TEST_REDIS_URL is set but Redis is unreachable: {e}")
            });
        let outcome = std::panic::AssertUnwindSafe(story).catch_unwind().await;
        let removed = cleaner.remove_prefix().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        removed.expect("remove the test keys");
        assert_eq!(
            cleaner.remove_prefix().await.expect("rescan"),
            0,
            "keys left under {prefix}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redis_bus_relays_between_nodes_and_survives_a_lost_connection() {
        let Some(url) = common::redis_url() else {
            return;
        };
        let prefix = common::unique_prefix();
        with_prefix(&url, &prefix, async {
            let relay = Relay::start(&url).await;
            let node = |redis: String| Settings {
                redis: Some(redis),
                cache_prefix: prefix.clone(),
                ..Settings::for_tests()
            };
            let one = openk_server::build_state(node(relay.url.clone()))
                .await
                .expect("node one");
            let two = openk_server::build_state(node(url.clone()))
                .await
                .expect("node two");
            let other_prefix = openk_server::build_state(Settings {
                cache_prefix: common::unique_prefix(),
                ..node(url.clone())
            })
            .await
            .expect("a node of another deployment");
            assert_eq!(one.events.kind(), "redis");
            let mut heard = one.events.subscribe();
            let mut own = two.events.subscribe();
            let mut elsewhere = other_prefix.events.subscribe();
            let change = |head| VaultChanged {
                account_id: Uuid::now_v7(),
                vault_id: Uuid::now_v7(),
                head,
                device_id: Uuid::now_v7(),
            };

            let first = change(1);
            two.events.publish(first);
            assert_eq!(recv(&mut heard).await, Notice::Vault(first));
            assert_eq!(
                recv(&mut own).await,
                Notice::Vault(first),
                "delivered locally"
            );
            let second = change(2);
            one.events.publish(second);
            assert_eq!(recv(&mut heard).await, Notice::Vault(second), "once");
            assert_eq!(recv(&mut own).await, Notice::Vault(second), "across");
            assert!(own.try_recv().is_err(), "a node never hears itself twice");
            assert!(heard.try_recv().is_err(), "a node never hears itself twice");

            // Redis drops node one: it resubscribes, says it may have missed
            // something, and hears the others again.
            relay.cut();
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(10), heard.recv())
                    .await
                    .expect("resubscribed within 10 s")
                    .expect("notice"),
                Notice::Resync
            );
            let third = change(3);
            two.events.publish(third);
            assert_eq!(recv(&mut heard).await, Notice::Vault(third));
            assert_eq!(recv(&mut own).await, Notice::Vault(third));
            // Node one can publish again too (its shared connection reconnects).
            let deadline = Instant::now() + Duration::from_secs(10);
            let fourth = change(4);
            loop {
                one.events.publish(fourth);
                if let Ok(Ok(notice)) =
                    tokio::time::timeout(Duration::from_millis(500), own.recv()).await
                {
                    if notice == Notice::Vault(fourth) {
                        break;
                    }
                    panic!("unexpected {notice:?}");
                }
                assert!(
                    Instant::now() < deadline,
                    "node one could not publish again"
                );
            }
            // Another prefix is another deployment: it heard none of it.
            assert!(elsewhere.try_recv().is_err());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_nodes_on_one_database_fan_out_events() {
        let Some(url) = common::redis_url() else {
            return;
        };
        let Some(db) = common::PgDatabase::create("openk_events").await else {
            return;
        };
        let prefix = common::unique_prefix();
        let settings = quick(Settings {
            database: db.url(),
            redis: Some(url.clone()),
            cache_prefix: prefix.clone(),
            ..Settings::for_tests()
        });
        with_prefix(&url, &prefix, async {
            let one = Server::start(settings.clone()).await;
            let two = Server::start(settings).await;
            let (a, laptop) = two.account("fanout").await;
            let phone_id = Uuid::now_v7();
            let phone = one.login(&a, phone_id).await;
            let v = two.create_vault(&laptop.access).await;
            two.push_ok(&laptop.access, v, vec![change(Uuid::now_v7(), 0, 1)])
                .await;

            // Subscribed through node one; pushes go through node two.
            let mut events = subscribe(&one, &phone.access).await;
            assert_eq!(
                ready(&mut events).await,
                BTreeSet::from([(v.to_string(), 1)])
            );
            let (_, stranger) = two.account("stranger").await;
            let theirs = two.create_vault(&stranger.access).await;
            two.push_ok(&stranger.access, theirs, vec![change(Uuid::now_v7(), 0, 1)])
                .await;
            let started = Instant::now();
            two.push_ok(&laptop.access, v, vec![change(Uuid::now_v7(), 0, 1)])
                .await;
            expect_vault(&mut events, v, 2, laptop.device_id).await;
            assert!(started.elapsed() < PROMPT);
            // And the other way round.
            let mut on_two = subscribe(&two, &laptop.access).await;
            ready(&mut on_two).await;
            one.push_ok(&phone.access, v, vec![change(Uuid::now_v7(), 0, 1)])
                .await;
            expect_vault(&mut on_two, v, 3, phone_id).await;
            expect_vault(&mut events, v, 3, phone_id).await;

            // A vault Ana shares with this account: its changes made
            // through node two reach the stream on node one.
            let (ana_account, ana) = two.account("ana").await;
            let team = two.create_vault(&ana.access).await;
            share(&two, &ana.access, team, &[(&a.email, "viewer")]).await;
            accept(&one, &phone.access, team).await;
            until_keep_alive(&mut events, team).await;
            let started = Instant::now();
            two.push_ok(&ana.access, team, vec![change(Uuid::now_v7(), 0, 1)])
                .await;
            expect_vault(&mut events, team, 1, ana.device_id).await;
            assert!(started.elapsed() < PROMPT);
            let mut on_one = subscribe(&one, &laptop.access).await;
            assert_eq!(
                ready(&mut on_one).await,
                BTreeSet::from([(v.to_string(), 3), (team.to_string(), 1)])
            );
            drop((on_one, ana_account));

            // A revocation through node two ends the stream on node one.
            two.call(
                Method::DELETE,
                &format!("/v1/devices/{phone_id}"),
                Some(&laptop.access),
                None,
            )
            .await
            .expect(204);
            events.ends(Duration::from_secs(3)).await;
        })
        .await;
        drop(db);
    }
}
