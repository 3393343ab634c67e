//! An OpenK server on a local port inside the test's own runtime, stopped
//! on drop (tests only).

/// A running in-process server.
pub(crate) struct TestServer {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// On a random port, with `database` (`memory`, `sqlite://…`).
    pub async fn start(database: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        Self::on(listener, database).await
    }

    /// On a given listener (e.g. the port of a server that was stopped).
    pub async fn on(listener: std::net::TcpListener, database: &str) -> Self {
        let mut settings = openk_server::Settings::for_tests();
        settings.database = database.to_owned();
        settings.auth_rate_limit = 100_000;
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = openk_server::build_state(settings).await.expect("state");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = openk_server::serve_listener(state, listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        Self {
            url,
            stop: Some(stop),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Which way a body travels through a [`LyingProxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    /// From the client to the server.
    Request,
    /// From the server to the client.
    Response,
}

/// What a [`LyingProxy`] does to a JSON body on its way: called with the
/// method, the path (no query) and the direction; may change the body.
pub(crate) type Tamper =
    std::sync::Arc<dyn Fn(&str, &str, Way, &mut serde_json::Value) + Send + Sync>;

/// A lying server: an HTTP proxy in front of a real one that can change
/// any JSON body in either direction (tests only). It records every
/// request it forwards (method and path), so a test can check what was,
/// or was not, sent.
pub(crate) struct LyingProxy {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl LyingProxy {
    pub async fn start(upstream: &str, tamper: Tamper) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let log = seen.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (http, upstream, tamper, log) =
                    (http.clone(), upstream.clone(), tamper.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = proxy_one(stream, &http, &upstream, &tamper, &log).await;
                });
            }
        });
        Self { url, seen }
    }

    /// Whether a request `method path` went through.
    pub fn saw(&self, method: &str, path_ends: &str) -> bool {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .any(|(m, p)| m == method && p.ends_with(path_ends))
    }
}

/// Reads one request, forwards it (tampered), writes the (tampered) answer
/// and closes the connection.
async fn proxy_one(
    mut stream: tokio::net::TcpStream,
    http: &reqwest::Client,
    upstream: &str,
    tamper: &Tamper,
    log: &std::sync::Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            if matches!(k.as_str(), "authorization" | "content-type") {
                headers.push((k, v));
            }
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let path = target.split('?').next().unwrap_or_default().to_owned();
    log.lock()
        .expect("lock")
        .push((method.clone(), path.clone()));
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) {
        tamper(&method, &path, Way::Request, &mut v);
        body = serde_json::to_vec(&v).expect("json");
    }
    let mut req = http.request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        format!("{upstream}{target}"),
    );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.body(body).send().await.map_err(std::io::Error::other)?;
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let mut out = res.bytes().await.map_err(std::io::Error::other)?.to_vec();
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out) {
        tamper(&method, &path, Way::Response, &mut v);
        out = serde_json::to_vec(&v).expect("json");
    }
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("OK"),
        out.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&out).await?;
    stream.shutdown().await
}
