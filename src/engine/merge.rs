//! Three-way merge of two versions of one item against the version both
//! were made from (DESIGN §6). Every part of an item is merged on its own:
//! the name, tags, folder, favourite flag, trash state, and each field
//! (fields with the same label, like several URLs, count as one part).
//!
//! - a part only one side changed takes that side's value;
//! - a part both sides changed the same way is kept;
//! - a part both sides changed differently takes the later edit (the
//!   version's `updated_at`, ties broken by device id) and is reported, so
//!   the caller keeps the other version in history and flags the item;
//! - one side moving the item to the trash while the other edited it keeps
//!   the edit and brings the item back, with a note.

use super::model::{self, Details, Field, Item, Overview};

/// The merged contents and what the user should know about them.
#[derive(Debug, Clone)]
pub struct Merged {
    pub overview: Overview,
    pub details: Details,
    /// Parts both sides changed differently (labels, or `name`, `tags`,
    /// `folder`, `favorite`, `trash`).
    pub conflicts: Vec<String>,
    /// Whether our side was the later edit (so the other side's values of
    /// the conflicting parts are the ones in history).
    pub ours_won: bool,
    /// The item came back from the trash because the other side edited it.
    pub untrashed: bool,
}

/// Whether `a` is a later edit than `b`: by time, then by device id.
fn later(a: &Overview, b: &Overview) -> bool {
    (a.updated_at, a.updated_by.unwrap_or_default())
        > (b.updated_at, b.updated_by.unwrap_or_default())
}

/// One part, three ways. Returns the value and whether it was a conflict.
fn pick<T: PartialEq + Clone>(
    base: Option<&T>,
    ours: &T,
    theirs: &T,
    ours_later: bool,
) -> (T, bool) {
    if ours == theirs {
        (ours.clone(), false)
    } else if base == Some(ours) {
        (theirs.clone(), false)
    } else if base == Some(theirs) {
        (ours.clone(), false)
    } else if ours_later {
        (ours.clone(), true)
    } else {
        (theirs.clone(), true)
    }
}

/// Fields grouped by lower-cased label, in order of first appearance.
fn groups(fields: &[Field]) -> Vec<(String, Vec<Field>)> {
    let mut out: Vec<(String, Vec<Field>)> = Vec::new();
    for f in fields {
        let key = f.label.to_lowercase();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(f.clone()),
            None => out.push((key, vec![f.clone()])),
        }
    }
    out
}

fn lookup<'a>(g: &'a [(String, Vec<Field>)], key: &str) -> Option<&'a Vec<Field>> {
    g.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Merges `ours` and `theirs` against `base` (absent when the common
/// version is unknown: then every difference is a conflict).
#[must_use]
pub fn merge(base: Option<&Item>, ours: &Item, theirs: &Item) -> Merged {
    let ours_later = later(&ours.overview, &theirs.overview);
    let (bo, oo, to) = (base.map(|b| &b.overview), &ours.overview, &theirs.overview);
    let mut conflicts = Vec::new();
    let mut part = |name: &str, conflict: bool| {
        if conflict {
            conflicts.push(name.to_owned());
        }
    };

    let (name, c) = pick(bo.map(|b| &b.name), &oo.name, &to.name, ours_later);
    part("name", c);
    let (tags, c) = pick(bo.map(|b| &b.tags), &oo.tags, &to.tags, ours_later);
    part("tags", c);
    let (folder, c) = pick(bo.map(|b| &b.folder), &oo.folder, &to.folder, ours_later);
    part("folder", c);
    let (favorite, c) = pick(
        bo.map(|b| &b.favorite),
        &oo.favorite,
        &to.favorite,
        ours_later,
    );
    part("favorite", c);

    // Fields, by label: the later side's order first, then the other's.
    let empty = Vec::new();
    let bg = base.map_or_else(Vec::new, |b| groups(&b.details.fields));
    let og = groups(&ours.details.fields);
    let tg = groups(&theirs.details.fields);
    let (first, second) = if ours_later { (&og, &tg) } else { (&tg, &og) };
    let mut labels: Vec<&String> = Vec::new();
    for (k, _) in first.iter().chain(second.iter()).chain(bg.iter()) {
        if !labels.contains(&k) {
            labels.push(k);
        }
    }
    let mut fields = Vec::new();
    for key in labels {
        let b = base.map(|_| lookup(&bg, key).cloned());
        let o = lookup(&og, key).cloned();
        let t = lookup(&tg, key).cloned();
        let (v, c) = pick(b.as_ref(), &o, &t, ours_later);
        if c {
            conflicts.push(key.clone());
        }
        fields.extend(v.unwrap_or_else(|| empty.clone()));
    }

    // Trash: an edit on one side beats a move to the trash on the other.
    let was_trashed = bo.is_some_and(|b| b.trashed_at.is_some());
    let ours_trashed = oo.trashed_at.is_some() && !was_trashed;
    let theirs_trashed = to.trashed_at.is_some() && !was_trashed;
    let edited_other_than_trash = |side: &Item| {
        base.is_none_or(|b| {
            b.overview.name != side.overview.name
                || b.overview.tags != side.overview.tags
                || b.overview.folder != side.overview.folder
                || b.overview.favorite != side.overview.favorite
                || b.details != side.details
        })
    };
    let mut untrashed = false;
    let trashed_at = if ours_trashed != theirs_trashed
        && ((ours_trashed && edited_other_than_trash(theirs))
            || (theirs_trashed && edited_other_than_trash(ours)))
    {
        untrashed = true;
        None
    } else {
        let (t, c) = pick(
            bo.map(|b| &b.trashed_at),
            &oo.trashed_at,
            &to.trashed_at,
            ours_later,
        );
        // Two different trash times are the same decision.
        if c && oo.trashed_at.is_some() != to.trashed_at.is_some() {
            conflicts.push("trash".to_owned());
        }
        t
    };

    let winner = if ours_later { oo } else { to };
    let mut overview = Overview {
        name,
        kind: winner.kind,
        subtitle: None,
        urls: Vec::new(),
        tags,
        folder,
        favorite,
        has_totp: false,
        created_at: oo.created_at.min(to.created_at),
        updated_at: oo.updated_at.max(to.updated_at),
        trashed_at,
        updated_by: winner.updated_by,
        conflict: None,
        source: winner.source.clone().or_else(|| oo.source.clone()),
    };
    let details = Details { fields };
    model::derive_overview(overview.kind, &details, &mut overview);
    Merged {
        overview,
        details,
        conflicts,
        ours_won: ours_later,
        untrashed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{FieldKind, ItemKind, ItemRef, label};
    use uuid::Uuid;

    fn item(name: &str, at: i64, fields: &[(&str, &str)]) -> Item {
        let details = Details {
            fields: fields
                .iter()
                .map(|(l, v)| Field::new(l, *v, FieldKind::Text))
                .collect(),
        };
        let mut overview = Overview {
            created_at: 1,
            updated_at: at,
            ..Overview::new(name, ItemKind::Login)
        };
        model::derive_overview(ItemKind::Login, &details, &mut overview);
        Item {
            r: ItemRef {
                id: Uuid::nil(),
                vault_id: Uuid::nil(),
                version: 1,
            },
            overview,
            details,
        }
    }

    fn value(i: &Merged, l: &str) -> Option<String> {
        i.details
            .fields
            .iter()
            .find(|f| f.label == l)
            .map(|f| f.value.expose().to_owned())
    }

    #[test]
    fn different_fields_from_both_sides_are_both_kept() {
        let base = item(
            "Site",
            1,
            &[(label::USERNAME, "ann"), (label::PASSWORD, "one")],
        );
        let ours = item(
            "Site",
            2,
            &[(label::USERNAME, "ann"), (label::PASSWORD, "two")],
        );
        let theirs = item(
            "Site",
            3,
            &[(label::USERNAME, "bob"), (label::PASSWORD, "one")],
        );
        let m = merge(Some(&base), &ours, &theirs);
        assert!(m.conflicts.is_empty());
        assert_eq!(value(&m, label::PASSWORD).as_deref(), Some("two"));
        assert_eq!(value(&m, label::USERNAME).as_deref(), Some("bob"));
        assert_eq!(m.overview.subtitle.as_deref(), Some("bob"));
    }

    #[test]
    fn same_field_changed_on_both_sides_goes_to_the_later_edit() {
        let base = item("Site", 1, &[(label::PASSWORD, "one")]);
        let ours = item("Site", 5, &[(label::PASSWORD, "ours")]);
        let theirs = item("Site", 3, &[(label::PASSWORD, "theirs")]);
        let m = merge(Some(&base), &ours, &theirs);
        assert_eq!(m.conflicts, vec![label::PASSWORD.to_owned()]);
        assert!(m.ours_won);
        assert_eq!(value(&m, label::PASSWORD).as_deref(), Some("ours"));
        let m = merge(Some(&base), &theirs, &ours);
        assert!(!m.ours_won);
        assert_eq!(value(&m, label::PASSWORD).as_deref(), Some("ours"));
    }

    #[test]
    fn ties_are_broken_by_device_id_the_same_way_on_both_devices() {
        let base = item("Site", 1, &[(label::PASSWORD, "one")]);
        let mut a = item("Site", 5, &[(label::PASSWORD, "a")]);
        let mut b = item("Site", 5, &[(label::PASSWORD, "b")]);
        a.overview.updated_by = Some(Uuid::from_u128(1));
        b.overview.updated_by = Some(Uuid::from_u128(2));
        let on_a = merge(Some(&base), &a, &b);
        let on_b = merge(Some(&base), &b, &a);
        assert_eq!(on_a.details, on_b.details);
        assert_eq!(value(&on_a, label::PASSWORD).as_deref(), Some("b"));
    }

    #[test]
    fn added_and_removed_fields_merge() {
        let base = item("Site", 1, &[(label::PASSWORD, "p"), ("pin", "1")]);
        let ours = item("Site", 2, &[(label::PASSWORD, "p")]); // removed pin
        let theirs = item(
            "Site",
            3,
            &[(label::PASSWORD, "p"), ("pin", "1"), ("extra", "x")],
        );
        let m = merge(Some(&base), &ours, &theirs);
        assert!(m.conflicts.is_empty());
        assert_eq!(value(&m, "pin"), None);
        assert_eq!(value(&m, "extra").as_deref(), Some("x"));
    }

    #[test]
    fn edit_beats_trash_and_the_item_comes_back() {
        let base = item("Site", 1, &[(label::PASSWORD, "one")]);
        let mut trashed = item("Site", 9, &[(label::PASSWORD, "one")]);
        trashed.overview.trashed_at = Some(9);
        let edited = item("Site", 2, &[(label::PASSWORD, "two")]);
        for (o, t) in [(&trashed, &edited), (&edited, &trashed)] {
            let m = merge(Some(&base), o, t);
            assert!(m.untrashed);
            assert_eq!(m.overview.trashed_at, None);
            assert_eq!(value(&m, label::PASSWORD).as_deref(), Some("two"));
        }
        // Both trashed: stays in the trash.
        let mut other = trashed.clone();
        other.overview.trashed_at = Some(10);
        let m = merge(Some(&base), &trashed, &other);
        assert!(m.overview.trashed_at.is_some() && !m.untrashed);
    }

    #[test]
    fn unknown_base_makes_every_difference_a_conflict() {
        let ours = item("A", 2, &[(label::PASSWORD, "x")]);
        let theirs = item("B", 3, &[(label::PASSWORD, "x")]);
        let m = merge(None, &ours, &theirs);
        assert_eq!(m.conflicts, vec!["name".to_owned()]);
        assert_eq!(m.overview.name, "B");
    }
}
