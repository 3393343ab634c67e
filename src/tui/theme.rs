//! Colours: the dark and light themes from `assets/themes/*.toml`
//! (embedded), chosen by `[tui] theme`; `NO_COLOR` gives a theme with no
//! colour at all that stays usable through bold, reverse and underline.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

const DARK: &str = include_str!("../../assets/themes/dark.toml");
const LIGHT: &str = include_str!("../../assets/themes/light.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    fg: String,
    dim: String,
    accent: String,
    border: String,
    border_focus: String,
    selection_fg: String,
    selection_bg: String,
    matched: String,
    danger: String,
    ok: String,
    warn: String,
    bar_fg: String,
    bar_bg: String,
}

/// Resolved styles for every part of the screen.
#[derive(Debug, Clone)]
pub struct Theme {
    pub name: &'static str,
    pub text: Style,
    pub dim: Style,
    pub accent: Style,
    pub title: Style,
    pub border: Style,
    pub border_focus: Style,
    pub selected: Style,
    pub matched: Style,
    pub danger: Style,
    pub ok: Style,
    pub warn: Style,
    pub bar: Style,
    pub bar_key: Style,
}

fn color(s: &str) -> Color {
    s.parse().unwrap_or(Color::Reset)
}

impl Theme {
    /// A theme by name (`dark` or `light`; anything else is dark); with
    /// `no_color` every colour is dropped.
    #[must_use]
    pub fn named(name: &str, no_color: bool) -> Self {
        if no_color {
            return Self::monochrome();
        }
        let (name, text) = if name == "light" {
            ("light", LIGHT)
        } else {
            ("dark", DARK)
        };
        let f: ThemeFile = toml::from_str(text).unwrap_or_else(|_| ThemeFile {
            fg: "reset".into(),
            dim: "gray".into(),
            accent: "cyan".into(),
            border: "gray".into(),
            border_focus: "cyan".into(),
            selection_fg: "black".into(),
            selection_bg: "cyan".into(),
            matched: "yellow".into(),
            danger: "red".into(),
            ok: "green".into(),
            warn: "yellow".into(),
            bar_fg: "black".into(),
            bar_bg: "gray".into(),
        });
        Self {
            name,
            text: Style::new().fg(color(&f.fg)),
            dim: Style::new().fg(color(&f.dim)),
            accent: Style::new().fg(color(&f.accent)),
            title: Style::new()
                .fg(color(&f.accent))
                .add_modifier(Modifier::BOLD),
            border: Style::new().fg(color(&f.border)),
            border_focus: Style::new().fg(color(&f.border_focus)),
            selected: Style::new()
                .fg(color(&f.selection_fg))
                .bg(color(&f.selection_bg))
                .add_modifier(Modifier::BOLD),
            matched: Style::new()
                .fg(color(&f.matched))
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            danger: Style::new()
                .fg(color(&f.danger))
                .add_modifier(Modifier::BOLD),
            ok: Style::new().fg(color(&f.ok)),
            warn: Style::new().fg(color(&f.warn)),
            bar: Style::new().fg(color(&f.bar_fg)).bg(color(&f.bar_bg)),
            bar_key: Style::new()
                .fg(color(&f.bar_fg))
                .bg(color(&f.bar_bg))
                .add_modifier(Modifier::BOLD),
        }
    }

    /// No colours: selection is reversed, matches underlined, titles bold.
    #[must_use]
    pub fn monochrome() -> Self {
        let plain = Style::new();
        Self {
            name: "no-color",
            text: plain,
            dim: plain.add_modifier(Modifier::DIM),
            accent: plain,
            title: plain.add_modifier(Modifier::BOLD),
            border: plain,
            border_focus: plain.add_modifier(Modifier::BOLD),
            selected: plain.add_modifier(Modifier::REVERSED),
            matched: plain.add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
            danger: plain.add_modifier(Modifier::BOLD),
            ok: plain,
            warn: plain.add_modifier(Modifier::BOLD),
            bar: plain.add_modifier(Modifier::REVERSED),
            bar_key: plain.add_modifier(Modifier::REVERSED | Modifier::BOLD),
        }
    }

    /// Whether `NO_COLOR` is set to anything non-empty (no-color.org).
    #[must_use]
    pub fn no_color_env() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_themes_parse() {
        for text in [DARK, LIGHT] {
            let f: ThemeFile = toml::from_str(text).expect("theme parses");
            for c in [&f.fg, &f.accent, &f.selection_bg, &f.bar_bg] {
                assert!(c.parse::<Color>().is_ok(), "{c}");
            }
        }
        assert_eq!(Theme::named("light", false).name, "light");
        assert_eq!(Theme::named("dark", true).name, "no-color");
    }
}
