//! Copying from the vault pane: always from the version on disk now.

use zeroize::Zeroizing;

use super::{VaultPane, read_item, record_use};
use crate::engine::model::{FieldKind, ItemKind, label};
use crate::tui::app::{App, totp_at};
use crate::tui::worker::Request;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CopyWhat {
    Password,
    Username,
    Totp,
    Selected,
}

impl VaultPane {
    /// Copies from the version on disk now, never from what the screen
    /// showed a moment ago: the worker reads the item (and whatever another
    /// writer saved) and the copy happens when it arrives.
    pub(super) fn copy(&mut self, app: &mut App, what: CopyWhat) {
        let Some(id) = self.selected_id() else {
            return;
        };
        self.pending_copy = Some((id, what));
        app.send(Request::Job(read_item(id)));
    }

    pub(super) fn copy_now(&mut self, app: &mut App, what: CopyWhat) {
        let Some(id) = self.selected_id() else {
            return;
        };
        let Some(item) = self.detail.as_ref().filter(|d| d.r.id == id) else {
            return;
        };
        let fields = &item.details.fields;
        let field = match what {
            CopyWhat::Password => item.field(item.overview.kind.primary_field()).or_else(|| {
                fields
                    .iter()
                    .find(|f| f.is_concealed() && f.kind != FieldKind::Totp)
            }),
            CopyWhat::Username => item
                .field(label::USERNAME)
                .or_else(|| item.field(label::EMAIL)),
            CopyWhat::Totp => fields.iter().find(|f| f.kind == FieldKind::Totp),
            CopyWhat::Selected => fields.get(self.field_sel),
        };
        let name = item.overview.name.clone();
        let Some(field) = field else {
            let what = match what {
                CopyWhat::Password => "password",
                CopyWhat::Username => "username",
                CopyWhat::Totp => "TOTP secret",
                CopyWhat::Selected => "field",
            };
            return app.warn(format!("{name} has no {what}"));
        };
        if item.overview.kind == ItemKind::Key && field.label == label::KEY_MATERIAL {
            return app.warn(format!(
                "The bytes of key {name} are never copied; `openk key show --export` prints them"
            ));
        }
        let label = field.label.clone();
        let value = if field.kind == FieldKind::Totp {
            match totp_at(field, app.clock.as_ref()) {
                Some((code, _)) => Zeroizing::new(code),
                None => return app.warn("The stored TOTP secret is invalid"),
            }
        } else {
            Zeroizing::new(field.value.expose().to_owned())
        };
        let clear = app.settings.clear_after;
        match app.clipboard.copy(&value, clear) {
            Ok(via) => {
                app.send(Request::Job(record_use(id)));
                let shown = if label == label::TOTP {
                    "TOTP code"
                } else {
                    label.as_str()
                };
                match clear {
                    Some(d) => {
                        app.clip_until = Some(app.clock.now() + d);
                        app.say(format!(
                            "Copied the {shown} of {name} to the {via}; cleared in {} s",
                            d.as_secs()
                        ));
                    }
                    None => app.say(format!("Copied the {shown} of {name} to the {via}")),
                }
            }
            Err(e) => app.warn(e),
        }
    }
}
