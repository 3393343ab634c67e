//! Server-sent events: the `text/event-stream` format read from an answer.

use super::client::{SyncError, limits, seconds, transport_error};

/// One server-sent event: its type and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub event: String,
    pub data: String,
}

/// A server-sent event stream (the `text/event-stream` format: `event:`
/// and `data:` lines, a blank line ends an event, `:` starts a comment).
pub struct EventStream {
    inner: Bytes,
    buf: Vec<u8>,
    event: String,
    data: String,
    base: String,
}

/// Longest event line accepted (a server sending more is cut off).
const MAX_EVENT_LINE: usize = 64 * 1024;

type Bytes = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

impl EventStream {
    /// Reads events from the body of an answer from `base`.
    pub(super) fn new(inner: Bytes, base: String) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            event: String::new(),
            data: String::new(),
            base,
        }
    }

    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<ServerEvent, SyncError>> {
        use futures::StreamExt as _;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&raw[..pos]);
                let line = line.strip_suffix('\r').unwrap_or(&line);
                if line.is_empty() {
                    if self.event.is_empty() && self.data.is_empty() {
                        continue;
                    }
                    let event = std::mem::take(&mut self.event);
                    return Some(Ok(ServerEvent {
                        event: if event.is_empty() {
                            "message".into()
                        } else {
                            event
                        },
                        data: std::mem::take(&mut self.data),
                    }));
                }
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => self.event = value.to_owned(),
                    "data" => {
                        if !self.data.is_empty() {
                            self.data.push('\n');
                        }
                        self.data.push_str(value);
                    }
                    _ => {}
                }
                continue;
            }
            if self.buf.len() > MAX_EVENT_LINE {
                return Some(Err(SyncError::Protocol("an event line is too long".into())));
            }
            let Ok(next) = tokio::time::timeout(limits::EVENTS_IDLE, self.inner.next()).await
            else {
                return Some(Err(SyncError::NotAnswering {
                    url: self.base.clone(),
                    why: format!(
                        "the event stream was silent for {}",
                        seconds(limits::EVENTS_IDLE)
                    ),
                }));
            };
            match next {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(e)) => return Some(Err(transport_error(&self.base, &e, None))),
                None => return None,
            }
        }
    }
}
