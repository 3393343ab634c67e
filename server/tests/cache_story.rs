//! One story for every cache backend: rate-limit windows and cached sessions.
//!
//! Runs for `MemoryCache` always, and for `RedisCache` when
//! `OPENK_TEST_REDIS_URL` is set (e.g. `redis://127.0.0.1:6379`). Each Redis
//! test uses its own prefix `openk-test-<uuid>:` and removes its keys at the
//! end, whether the story passed or not. Set but unreachable is a failure.

use std::sync::Arc;
use std::time::Duration;

use openk_server::cache::{Cache, MemoryCache};
use openk_server::store::Session;
use tokio::time::sleep;
use uuid::Uuid;

/// Short windows keep the test fast; the sleeps leave a wide margin.
const WINDOW: Duration = Duration::from_millis(200);
const PAST_WINDOW: Duration = Duration::from_millis(350);

fn session() -> Session {
    let id = Uuid::now_v7();
    let mut access_hash = id.as_bytes().to_vec();
    access_hash.extend_from_slice(Uuid::now_v7().as_bytes());
    Session {
        id,
        account_id: Uuid::now_v7(),
        device_id: Uuid::now_v7(),
        access_hash,
        access_expires_at: 1_700_000_123_456,
        refresh_hash: (0..=255).collect(),
        refresh_expires_at: i64::MAX,
        authenticated_at: -1,
    }
}

async fn story(cache: Arc<dyn Cache>) {
    cache.ping().await.expect("ping");

    // --- Fixed windows ---
    let key = "login:alice@example.com";
    for expected in 1..=3 {
        let w = cache.hit(key, WINDOW).await.expect("hit");
        assert_eq!(w.count, expected);
        assert!(
            w.resets_in <= WINDOW,
            "resets_in {:?} > window",
            w.resets_in
        );
        assert!(!w.resets_in.is_zero());
    }
    let peeked = cache.peek(key).await.expect("peek");
    assert_eq!(peeked.count, 3);
    assert!(peeked.resets_in <= WINDOW);
    assert_eq!(
        cache.peek(key).await.expect("peek").count,
        3,
        "peek doesn't count"
    );
    assert_eq!(cache.hit(key, WINDOW).await.expect("hit").count, 4);

    // Another key counts on its own.
    assert_eq!(
        cache
            .hit("login:bob@example.com", WINDOW)
            .await
            .expect("hit")
            .count,
        1
    );

    // After the window the counter starts again, with a fresh window.
    sleep(PAST_WINDOW).await;
    let gone = cache.peek(key).await.expect("peek");
    assert_eq!(gone.count, 0);
    assert_eq!(gone.resets_in, Duration::ZERO);
    let w = cache.hit(key, WINDOW).await.expect("hit");
    assert_eq!(w.count, 1);
    assert!(w.resets_in <= WINDOW && w.resets_in > WINDOW / 2);
    assert_eq!(cache.hit(key, WINDOW).await.expect("hit").count, 2);

    // Reset forgets the counter (and resetting a missing one is fine).
    cache.reset(key).await.expect("reset");
    assert_eq!(cache.peek(key).await.expect("peek").count, 0);
    assert_eq!(cache.hit(key, WINDOW).await.expect("hit").count, 1);
    cache.reset("never-hit").await.expect("reset missing");

    // Concurrent hits on one instance are all counted, each seeing its own count.
    let long = Duration::from_secs(30);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.hit("concurrent", long).await.expect("hit").count })
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.expect("task"));
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<u64>>());
    assert_eq!(cache.peek("concurrent").await.expect("peek").count, 50);
    cache.reset("concurrent").await.expect("reset");

    // --- Sessions ---
    let a = session();
    let b = session();
    assert_eq!(cache.get_session(&a.access_hash).await.expect("get"), None);
    cache
        .put_session(&a, Duration::from_secs(30))
        .await
        .expect("put");
    cache
        .put_session(&b, Duration::from_secs(30))
        .await
        .expect("put");
    assert_eq!(
        cache.get_session(&a.access_hash).await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(
        cache.get_session(&b.access_hash).await.expect("get"),
        Some(b.clone())
    );

    // A put replaces the cached copy.
    let mut a2 = a.clone();
    a2.authenticated_at = 1_700_000_000_000;
    a2.refresh_hash = vec![7; 32];
    cache
        .put_session(&a2, Duration::from_secs(30))
        .await
        .expect("put");
    assert_eq!(
        cache.get_session(&a.access_hash).await.expect("get"),
        Some(a2.clone())
    );

    // Dropping removes exactly the listed sessions; unknown hashes and an
    // empty list are fine.
    let c = session();
    cache
        .put_session(&c, Duration::from_secs(30))
        .await
        .expect("put");
    cache
        .drop_sessions(&[a.access_hash.clone(), b.access_hash.clone(), vec![0; 32]])
        .await
        .expect("drop");
    cache.drop_sessions(&[]).await.expect("drop nothing");
    assert_eq!(cache.get_session(&a.access_hash).await.expect("get"), None);
    assert_eq!(cache.get_session(&b.access_hash).await.expect("get"), None);
    assert_eq!(
        cache.get_session(&c.access_hash).await.expect("get"),
        Some(c.clone())
    );

    // Sessions expire after their TTL.
    let d = session();
    cache.put_session(&d, WINDOW).await.expect("put");
    assert_eq!(
        cache.get_session(&d.access_hash).await.expect("get"),
        Some(d.clone())
    );
    sleep(PAST_WINDOW).await;
    assert_eq!(cache.get_session(&d.access_hash).await.expect("get"), None);

    // A zero TTL caches nothing and forgets an earlier copy.
    cache
        .put_session(&c, Duration::ZERO)
        .await
        .expect("put zero");
    assert_eq!(cache.get_session(&c.access_hash).await.expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_cache_story() {
    let cache = MemoryCache::new();
    assert_eq!(cache.kind(), "memory");
    story(Arc::new(cache)).await;
}

#[cfg(feature = "redis")]
mod redis_backend {
    use std::future::Future;
    use std::panic::AssertUnwindSafe;

    use futures::FutureExt;
    use openk_server::cache::RedisCache;

    use super::*;

    fn redis_url() -> Option<String> {
        std::env::var("OPENK_TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
    }

    /// Runs `test(url, prefix)` with a fresh prefix, then removes its keys whatever the
    /// outcome (and checks none are left) before passing a panic on.
    async fn with_prefix<F, Fut>(url: &str, test: F)
    where
        F: FnOnce(String, String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let prefix = format!("openk-test-{}:", Uuid::now_v7());
        // Connect first: set but unreachable must fail, not skip.
        let cleaner = RedisCache::connect(url, &prefix).await.unwrap_or_else(|e| {
            panic!("OPENK_TEST_REDIS_URL is set but Redis is unreachable: {e}")
        });
        let outcome = AssertUnwindSafe(test(url.to_owned(), prefix.clone()))
            .catch_unwind()
            .await;
        let cleaned = cleaner.remove_prefix().await;
        let left = cleaner.remove_prefix().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        let removed = cleaned.expect("remove test keys");
        assert!(removed > 0, "the story left keys to remove");
        assert_eq!(left.expect("rescan"), 0, "keys left under {prefix}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_cache_story() {
        let Some(url) = redis_url() else {
            println!("skipped: OPENK_TEST_REDIS_URL not set");
            return;
        };
        with_prefix(&url, |url, prefix| async move {
            let cache = RedisCache::connect(&url, &prefix).await.expect("connect");
            assert_eq!(cache.kind(), "redis");
            assert_eq!(cache.prefix(), prefix);
            story(Arc::new(cache.clone())).await;
            // Leave something for the cleanup to find (and check it does).
            cache
                .hit("leftover", Duration::from_secs(30))
                .await
                .expect("hit");
            cache
                .put_session(&session(), Duration::from_secs(30))
                .await
                .expect("put");
        })
        .await;
    }

    /// Two instances with the same prefix are two server nodes on one Redis.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_nodes_share_state() {
        let Some(url) = redis_url() else {
            println!("skipped: OPENK_TEST_REDIS_URL not set");
            return;
        };
        with_prefix(&url, |url, prefix| async move {
            let one: Arc<dyn Cache> = Arc::new(
                RedisCache::connect(&url, &prefix)
                    .await
                    .expect("connect node one"),
            );
            let two: Arc<dyn Cache> = Arc::new(
                RedisCache::connect(&url, &prefix)
                    .await
                    .expect("connect node two"),
            );

            // 50 concurrent hits split over both nodes count exactly 50.
            let long = Duration::from_secs(30);
            let tasks: Vec<_> = (0..50)
                .map(|i| {
                    let node = Arc::clone(if i % 2 == 0 { &one } else { &two });
                    tokio::spawn(async move { node.hit("shared", long).await.expect("hit") })
                })
                .collect();
            let mut counts = Vec::new();
            for t in tasks {
                let w = t.await.expect("task");
                assert!(w.resets_in <= long && !w.resets_in.is_zero());
                counts.push(w.count);
            }
            counts.sort_unstable();
            assert_eq!(counts, (1..=50).collect::<Vec<u64>>());
            assert_eq!(one.peek("shared").await.expect("peek").count, 50);
            assert_eq!(two.peek("shared").await.expect("peek").count, 50);
            assert_eq!(two.hit("shared", long).await.expect("hit").count, 51);

            // A reset on one node is seen by the other.
            one.reset("shared").await.expect("reset");
            assert_eq!(two.peek("shared").await.expect("peek").count, 0);

            // A session cached by one node, dropped via the other, is gone for both.
            let s = session();
            one.put_session(&s, long).await.expect("put");
            assert_eq!(
                two.get_session(&s.access_hash).await.expect("get"),
                Some(s.clone())
            );
            two.drop_sessions(std::slice::from_ref(&s.access_hash))
                .await
                .expect("drop");
            assert_eq!(one.get_session(&s.access_hash).await.expect("get"), None);
            assert_eq!(two.get_session(&s.access_hash).await.expect("get"), None);

            one.hit("leftover", long).await.expect("hit");
        })
        .await;
    }

    /// Prefixes keep nodes (and tests) apart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_prefixes_are_separate() {
        let Some(url) = redis_url() else {
            println!("skipped: OPENK_TEST_REDIS_URL not set");
            return;
        };
        with_prefix(&url, |url, prefix| async move {
            let other_prefix = format!("{prefix}other:");
            let mine = RedisCache::connect(&url, &prefix).await.expect("connect");
            let other = RedisCache::connect(&url, &other_prefix)
                .await
                .expect("connect");
            mine.hit("k", Duration::from_secs(30)).await.expect("hit");
            assert_eq!(other.peek("k").await.expect("peek").count, 0);
            let s = session();
            mine.put_session(&s, Duration::from_secs(30))
                .await
                .expect("put");
            assert_eq!(other.get_session(&s.access_hash).await.expect("get"), None);
            // The nested prefix's keys are under the outer one, so the
            // cleanup in `with_prefix` removes them too.
            other.hit("k", Duration::from_secs(30)).await.expect("hit");
            assert_eq!(other.remove_prefix().await.expect("remove"), 1);
            assert_eq!(
                mine.peek("k").await.expect("peek").count,
                1,
                "outer keys kept"
            );
        })
        .await;
    }

    /// Connection errors are `Unavailable` and never show the password.
    #[tokio::test]
    async fn redis_connect_errors_hide_the_password() {
        // A closed port on the loopback: refused at once.
        let url = "redis://user:hunter2secret@127.0.0.1:1/0";
        let err = RedisCache::connect(url, "openk-test-unused:")
            .await
            .expect_err("nothing listens on port 1");
        let msg = err.to_string();
        assert!(msg.contains("cache unavailable"), "{msg}");
        assert!(msg.contains("127.0.0.1:1"), "{msg}");
        assert!(!msg.contains("hunter2secret"), "{msg}");
        assert!(!format!("{err:?}").contains("hunter2secret"));
    }
}
