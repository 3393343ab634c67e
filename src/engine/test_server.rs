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
