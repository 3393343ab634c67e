//! Time as the server stores it (Unix milliseconds) and shows it (RFC 3339).
//! The client uses the same two functions (`openk_server::time`), as it
//! uses the email rule.

/// Unix milliseconds now.
#[must_use]
pub fn now_millis() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 from Unix milliseconds.
#[must_use]
pub fn rfc3339(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
