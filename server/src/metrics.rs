//! Request metrics in Prometheus text format: counts and latency histograms
//! by method, route (the matched pattern, never the raw path with ids) and
//! status; and how many event streams are open.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
    event_streams: AtomicI64,
}

/// Counts one open event stream for as long as it lives.
#[derive(Debug)]
pub struct OpenStream(Arc<Metrics>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.event_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("event_streams", &self.event_streams())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Counts an event stream until the returned guard is dropped.
    #[must_use]
    pub fn event_stream_opened(self: &Arc<Self>) -> OpenStream {
        self.event_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream(Arc::clone(self))
    }

    /// Event streams open now.
    #[must_use]
    pub fn event_streams(&self) -> i64 {
        self.event_streams.load(Ordering::Relaxed)
    }

    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let Ok(mut map) = self.series.lock() else {
            return;
        };
        let s = map
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        s.count += 1;
        s.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP openk_event_streams Open GET /v1/events streams.\n");
        out.push_str("# TYPE openk_event_streams gauge\n");
        let _ = writeln!(out, "openk_event_streams {}", self.event_streams());
        out.push_str(
            "# HELP openk_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE openk_http_requests_total counter\n");
        let Ok(map) = self.series.lock() else {
            return out;
        };
        for ((m, r, st), s) in map.iter() {
            let _ = writeln!(
                out,
                "openk_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{st}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP openk_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE openk_http_request_duration_seconds histogram\n");
        for ((m, r, st), s) in map.iter() {
            let labels = format!("method=\"{m}\",route=\"{r}\",status=\"{st}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "openk_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "openk_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "openk_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "openk_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.record(
            "GET",
            "/v1/vaults/{id}/changes",
            200,
            Duration::from_millis(3),
        );
        m.record(
            "GET",
            "/v1/vaults/{id}/changes",
            200,
            Duration::from_millis(30),
        );
        let text = m.render();
        assert!(text.contains(r#"openk_http_requests_total{method="GET",route="/v1/vaults/{id}/changes",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"le="0.005"} 1"#), "{text}");
        assert!(text.contains(r#"le="+Inf"} 2"#), "{text}");
    }

    #[test]
    fn event_streams_are_counted_while_open() {
        let m = Arc::new(Metrics::default());
        assert!(m.render().contains("\nopenk_event_streams 0\n"));
        let a = m.event_stream_opened();
        let b = m.event_stream_opened();
        assert!(m.render().contains("\nopenk_event_streams 2\n"));
        drop(a);
        assert_eq!(m.event_streams(), 1);
        drop(b);
        assert!(m.render().contains("\nopenk_event_streams 0\n"));
    }
}
