//! The change-master-password popup (palette `passwd`).

use crate::engine::SecretString;
use crate::tui::worker::{Job, Notice, To};

/// Checks the current master password, then changes it.
#[must_use]
pub fn change_password(current: SecretString, new: SecretString) -> Job {
    Job::new(To::APP, "passwd", move |v| {
        Box::pin(async move {
            v.check_password(current).await?;
            v.change_password(new, None).await?;
            Ok(Notice(
                "Master password changed. The old one no longer opens this vault; the Secret Key is unchanged"
                    .into(),
            ))
        })
    })
}
