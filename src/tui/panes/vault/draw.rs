//! Drawing the vault pane: sidebar, list, details.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Filter, Focus, SideRow, Sort, VaultPane};
use crate::engine::model::{FieldKind, ItemKind, label};
use crate::tui::app::{App, totp_at};
use crate::tui::widgets::{
    MASK, ago, block, cells, entry_line, filter_label, pad_left, spinner, truncate,
};

pub(super) fn draw(v: &VaultPane, f: &mut Frame, app: &App, area: Rect) {
    let side_w = if area.width >= 110 { 24 } else { 18 };
    let list_w = (area.width - side_w) * 45 / 100;
    let [side, list, details] = Layout::horizontal([
        Constraint::Length(side_w),
        Constraint::Length(list_w),
        Constraint::Min(20),
    ])
    .areas(area);
    v.areas.sidebar.set(side);
    v.areas.list.set(list);
    v.areas.details.set(details);
    draw_sidebar(v, f, app, side);
    draw_list(v, f, app, list);
    draw_details(v, f, app, details);
}

fn draw_sidebar(v: &VaultPane, f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let inner_w = usize::from(area.width.saturating_sub(2));
    let lines: Vec<Line> = v
        .sidebar
        .iter()
        .enumerate()
        .map(|(i, row)| match row {
            SideRow::Header(h) => Line::from(Span::styled(h.to_string(), t.dim)),
            SideRow::Filter(fl, n) => {
                let name = truncate(&filter_label(fl), inner_w.saturating_sub(6));
                let count = n.to_string();
                let pad = inner_w.saturating_sub(cells(&name) + count.len() + 1);
                let style = if i == v.side_sel {
                    if v.focus == Focus::Sidebar {
                        t.selected
                    } else {
                        t.accent.add_modifier(Modifier::BOLD)
                    }
                } else if *fl == Filter::Conflicts && *n > 0 {
                    t.warn
                } else {
                    t.text
                };
                Line::from(Span::styled(
                    format!(" {name}{}{count}", " ".repeat(pad)),
                    style,
                ))
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(block(app, "Filters", v.focus == Focus::Sidebar)),
        area,
    );
}

fn draw_list(v: &VaultPane, f: &mut Frame, app: &App, area: Rect) {
    let height = usize::from(area.height.saturating_sub(2));
    let mut offset = v.offset.get();
    if v.sel < offset {
        offset = v.sel;
    } else if height > 0 && v.sel >= offset + height {
        offset = v.sel + 1 - height;
    }
    v.offset.set(offset);
    let width = usize::from(area.width.saturating_sub(2));
    let focused = v.focus == Focus::List;
    let mut lines: Vec<Line> = v
        .shown
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(pos, &i)| {
            let e = &v.entries[i as usize];
            if v.marked.is_empty() {
                return entry_line(app, e, width, pos == v.sel, focused, &[]);
            }
            // With a selection: a marker column, and selected rows in the
            // theme's colour.
            let marked = v.marked.contains(&e.r.id);
            let mut line = entry_line(app, e, width.saturating_sub(2), pos == v.sel, focused, &[]);
            if marked && pos != v.sel {
                for span in &mut line.spans {
                    span.style = span.style.patch(app.theme.warn);
                }
            }
            let marker = Span::styled(
                if marked { "● " } else { "  " },
                if marked {
                    app.theme.warn
                } else {
                    app.theme.text
                },
            );
            line.spans.insert(0, marker);
            line
        })
        .collect();
    if lines.is_empty() {
        let text = match v.filter {
            Filter::Trash => "The trash is empty",
            Filter::All if v.entries.is_empty() => "No items yet: n adds one",
            _ => "Nothing here",
        };
        lines.push(Line::from(Span::styled(text, app.theme.dim)));
    }
    let sort = match v.sort {
        Sort::Name => "name",
        Sort::Changed => "changed",
    };
    let mut title = format!(
        "{} · {} · by {sort}",
        filter_label(&v.filter),
        v.shown.len()
    );
    if !v.marked.is_empty() {
        title.push_str(&format!(" · {} selected", v.marked.len()));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(app, &title, focused)),
        area,
    );
}

fn draw_details(v: &VaultPane, f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let focused = v.focus == Focus::Details;
    let Some(item) = v
        .detail
        .as_ref()
        .filter(|d| Some(d.r.id) == v.selected_id())
    else {
        let text = if v.selected_id().is_some() {
            format!("{} Opening…", spinner(app))
        } else {
            String::new()
        };
        f.render_widget(
            Paragraph::new(Span::styled(text, t.dim)).block(block(app, "Details", focused)),
            area,
        );
        return;
    };
    let o = &item.overview;
    let width = usize::from(area.width.saturating_sub(2));
    let label_w = item
        .details
        .fields
        .iter()
        .map(|f| cells(&f.label))
        .max()
        .unwrap_or(6)
        .clamp(6, 12);
    let mut lines = vec![Line::from(vec![
        Span::styled(truncate(&o.name, width.saturating_sub(10)), t.title),
        Span::styled(format!("  {}", o.kind), t.dim),
    ])];
    if o.trashed_at.is_some() {
        lines.push(Line::from(Span::styled(
            "In the trash · R restores",
            t.warn,
        )));
    }
    if let Some(c) = &o.conflict {
        lines.push(Line::from(Span::styled(
            format!(
                "! conflict: {} (H shows v{})",
                c.fields.join(", "),
                c.other_version
            ),
            t.danger,
        )));
        // What the merge did, in its words, wrapped to the pane.
        let mut line = String::new();
        for word in c.note.split_whitespace() {
            if !line.is_empty() && cells(&line) + 1 + cells(word) > width.saturating_sub(2) {
                lines.push(Line::from(Span::styled(format!("  {line}"), t.warn)));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&truncate(word, width.saturating_sub(2)));
        }
        if !line.is_empty() {
            lines.push(Line::from(Span::styled(format!("  {line}"), t.warn)));
        }
    }
    lines.push(Line::default());
    let value_w = width.saturating_sub(label_w + 3);
    for (i, field) in item.details.fields.iter().enumerate() {
        let sel = i == v.field_sel;
        let revealed = v.revealed.contains(&i);
        let marker = if sel { "▸" } else { " " };
        let label_style = if sel && focused {
            t.selected
        } else if sel {
            t.accent
        } else {
            t.dim
        };
        let mut spans = vec![
            Span::styled(marker, t.accent),
            Span::styled(pad_left(&field.label, label_w), label_style),
            Span::raw("  "),
        ];
        if o.kind == ItemKind::Key && field.label == label::KEY_MATERIAL {
            // A named key's bytes are never on screen, revealed or not.
            spans.push(Span::styled(
                truncate("never shown (key show --export)", value_w),
                t.dim,
            ));
        } else if field.kind == FieldKind::Totp {
            match totp_at(field, app.clock.as_ref()) {
                Some((code, left)) => {
                    let shown = if revealed {
                        let (a, b) = code.split_at(code.len() / 2);
                        format!("{a} {b}")
                    } else {
                        "••• •••".into()
                    };
                    spans.push(Span::styled(shown, t.accent));
                    spans.push(Span::styled(
                        format!("  ⏱ {left:>2}s"),
                        if left <= 5 { t.warn } else { t.dim },
                    ));
                }
                None => spans.push(Span::styled("invalid TOTP secret", t.danger)),
            }
        } else if field.is_concealed() && !revealed {
            spans.push(Span::styled(MASK, t.text));
        } else {
            let value = field.value.expose();
            let mut rows = value.lines();
            spans.push(Span::styled(
                truncate(rows.next().unwrap_or(""), value_w),
                if field.kind == FieldKind::Url {
                    t.accent
                } else {
                    t.text
                },
            ));
            lines.push(Line::from(spans));
            for more in rows.take(4) {
                lines.push(Line::from(vec![
                    Span::raw(" ".repeat(label_w + 3)),
                    Span::styled(truncate(more, value_w), t.text),
                ]));
            }
            continue;
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::default());
    let meta = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!(" {k:>label_w$}  "), t.dim),
            Span::styled(v, t.text),
        ])
    };
    if !o.tags.is_empty() {
        lines.push(meta(
            "tags",
            o.tags
                .iter()
                .map(|t| format!("#{t}"))
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    if let Some(folder) = &o.folder {
        lines.push(meta("folder", folder.clone()));
    }
    let now = app.clock.unix_millis();
    if o.kind == ItemKind::Key {
        // Its versions, newest first (type, key id and min version are
        // fields above).
        match crate::engine::named_keys::key_info(item) {
            Ok(info) => {
                lines.push(meta("created", ago(now, info.created_at)));
                for kv in info.versions.iter().rev() {
                    let state = if kv.retired {
                        " · retired"
                    } else if kv.version == info.current_version {
                        " · current"
                    } else {
                        ""
                    };
                    lines.push(meta(
                        &format!("v{}", kv.version),
                        format!("{}{state}", ago(now, kv.created_at)),
                    ));
                }
            }
            Err(e) => lines.push(Line::from(Span::styled(
                truncate(&e.to_string(), width),
                t.danger,
            ))),
        }
    }
    lines.push(meta(
        "changed",
        format!("{} · v{}", ago(now, o.updated_at), item.r.version),
    ));
    let used = v.detail_use.as_ref().filter(|u| u.0 == item.r.id);
    lines.push(meta(
        "used",
        match used.map(|u| u.1) {
            None => String::new(),
            Some(u) => match u.last_used.filter(|_| u.count > 0) {
                None => "never".into(),
                Some(at) if u.count == 1 => format!("once · {}", ago(now, at)),
                Some(at) => format!("{} times · {}", u.count, ago(now, at)),
            },
        },
    ));
    let hint = if focused {
        "r reveal · y copy field · e edit · H history"
    } else {
        "c pw · u user · t TOTP · → fields"
    };
    let block =
        block(app, "Details", focused).title_bottom(Span::styled(format!(" {hint} "), t.dim));
    f.render_widget(Paragraph::new(lines).block(block), area);
}
