//! The clock, and times as people read them.

/// Unix milliseconds now.
#[must_use]
pub fn now_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// "just now", "5 min ago", "3 h ago", "2 d ago", else the date.
#[must_use]
pub fn ago(now_ms: i64, then_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        86_400..2_592_000 => format!("{} d ago", s / 86_400),
        _ => time::OffsetDateTime::from_unix_timestamp(then_ms / 1000)
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!("[year]-[month]-[day]"))
                    .ok()
            })
            .unwrap_or_default(),
    }
}
