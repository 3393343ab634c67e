//! Fuzzy search over decrypted overviews (nucleo): name, username, URLs, tags
//! and folder, never a secret field. Filters (`kind:login tag:work folder:Dev
//! is:fav is:trash`) narrow the set before matching.
//!
//! A query that extends the previous one (typing) only re-matches the previous
//! hits, which is what keeps search-as-you-type fast on 100k items; a fresh
//! query is matched on all cores.

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32String};
use rayon::prelude::*;

use super::model::{Entry, ItemKind};

/// A parsed search query: free text plus filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub text: String,
    pub kind: Option<ItemKind>,
    pub tags: Vec<String>,
    pub folder: Option<String>,
    pub favorite: bool,
    pub trash: bool,
}

impl Query {
    /// Splits `kind:`, `tag:`, `folder:`, `is:fav`/`is:favorite` and
    /// `is:trash` tokens from the free text.
    ///
    /// # Errors
    /// A message naming an unknown `kind:` or `is:` value.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut q = Self::default();
        let mut words = Vec::new();
        for token in input.split_whitespace() {
            let Some((key, value)) = token
                .split_once(':')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            else {
                words.push(token);
                continue;
            };
            match key.to_ascii_lowercase().as_str() {
                "kind" | "type" => {
                    q.kind = Some(ItemKind::parse(value).ok_or_else(|| {
                        format!(
                            "unknown kind {value:?} in the query; kinds are: {}",
                            ItemKind::ALL.map(ItemKind::as_str).join(", ")
                        )
                    })?);
                }
                "tag" => q.tags.push(value.to_owned()),
                "folder" => q.folder = Some(value.to_owned()),
                "is" => match value.to_ascii_lowercase().as_str() {
                    "fav" | "favorite" | "favourite" => q.favorite = true,
                    "trash" | "trashed" | "deleted" => q.trash = true,
                    other => {
                        return Err(format!("unknown filter is:{other}; use is:fav or is:trash"));
                    }
                },
                _ => words.push(token),
            }
        }
        q.text = words.join(" ");
        Ok(q)
    }

    /// Whether an entry passes the filters (not the free text).
    #[must_use]
    pub fn admits(&self, e: &Entry) -> bool {
        let o = &e.overview;
        o.trashed_at.is_some() == self.trash
            && self.kind.is_none_or(|k| o.kind == k)
            && (!self.favorite || o.favorite)
            && self.folder.as_ref().is_none_or(|f| {
                o.folder
                    .as_ref()
                    .is_some_and(|of| of.eq_ignore_ascii_case(f))
            })
            && self
                .tags
                .iter()
                .all(|t| o.tags.iter().any(|ot| ot.eq_ignore_ascii_case(t)))
    }

    fn same_filters(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.tags == other.tags
            && self.folder == other.folder
            && self.favorite == other.favorite
            && self.trash == other.trash
    }
}

/// One result: the entry's position in the engine's list and its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub index: usize,
    pub score: u32,
}

/// Pre-built haystacks and the previous query's hits.
#[derive(Debug, Default)]
pub struct SearchIndex {
    haystacks: Vec<Utf32String>,
    last: Option<(Query, Vec<Hit>)>,
}

fn haystack(e: &Entry) -> Utf32String {
    let o = &e.overview;
    let mut s = String::with_capacity(64);
    s.push_str(&o.name);
    for part in o
        .subtitle
        .iter()
        .chain(&o.urls)
        .chain(&o.tags)
        .chain(o.folder.iter())
    {
        s.push(' ');
        s.push_str(part);
    }
    Utf32String::from(s.as_str())
}

impl SearchIndex {
    #[must_use]
    pub fn build(entries: &[Entry]) -> Self {
        Self {
            haystacks: entries.par_iter().map(haystack).collect(),
            last: None,
        }
    }

    /// Replaces the haystack of one entry (after an edit) or appends one.
    pub fn update(&mut self, index: usize, entry: &Entry) {
        if index < self.haystacks.len() {
            self.haystacks[index] = haystack(entry);
        } else {
            self.haystacks.push(haystack(entry));
        }
        self.last = None;
    }

    /// Ranks the entries that pass the query's filters, best first; with no
    /// free text, in name order.
    pub fn search(&mut self, entries: &[Entry], query: &Query) -> Vec<Hit> {
        if self.haystacks.len() != entries.len() {
            *self = Self::build(entries);
        }
        let mut hits = if query.text.trim().is_empty() {
            let mut all: Vec<Hit> = (0..entries.len())
                .filter(|&i| query.admits(&entries[i]))
                .map(|index| Hit { index, score: 0 })
                .collect();
            all.sort_by_cached_key(|h| entries[h.index].overview.name.to_lowercase());
            all
        } else {
            let pattern = Pattern::parse(&query.text, CaseMatching::Smart, Normalization::Smart);
            let score = |matcher: &mut Matcher, index: usize| {
                if !query.admits(&entries[index]) {
                    return None;
                }
                pattern
                    .score(self.haystacks[index].slice(..), matcher)
                    .map(|score| Hit { index, score })
            };
            let narrowing = self.last.as_ref().filter(|(prev, _)| {
                prev.same_filters(query)
                    && !prev.text.trim().is_empty()
                    && query.text.starts_with(&prev.text)
                    && !query.text.contains('!')
            });
            let mut found: Vec<Hit> = match narrowing {
                Some((_, prev_hits)) => {
                    let mut sorted: Vec<usize> = prev_hits.iter().map(|h| h.index).collect();
                    sorted.sort_unstable();
                    sorted
                        .par_iter()
                        .map_init(|| Matcher::new(Config::DEFAULT), |m, &i| score(m, i))
                        .flatten()
                        .collect()
                }
                None => (0..entries.len())
                    .into_par_iter()
                    .with_min_len(4096)
                    .map_init(|| Matcher::new(Config::DEFAULT), |m, i| score(m, i))
                    .flatten()
                    .collect(),
            };
            found.sort_by(|a, b| {
                b.score
                    .cmp(&a.score)
                    .then_with(|| {
                        entries[a.index]
                            .overview
                            .name
                            .len()
                            .cmp(&entries[b.index].overview.name.len())
                    })
                    .then_with(|| a.index.cmp(&b.index))
            });
            found
        };
        hits.shrink_to_fit();
        self.last = Some((query.clone(), hits.clone()));
        hits
    }

    /// Positions of matched characters in an entry's name, for highlighting.
    #[must_use]
    pub fn name_matches(name: &str, query_text: &str) -> Vec<u32> {
        let pattern = Pattern::parse(query_text, CaseMatching::Smart, Normalization::Smart);
        let mut matcher = Matcher::new(Config::DEFAULT);
        let mut indices = Vec::new();
        let hay = Utf32String::from(name);
        pattern.indices(hay.slice(..), &mut matcher, &mut indices);
        indices.sort_unstable();
        indices.dedup();
        indices
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{ItemRef, Overview};
    use uuid::Uuid;

    fn entry(
        name: &str,
        kind: ItemKind,
        tags: &[&str],
        folder: Option<&str>,
        user: Option<&str>,
    ) -> Entry {
        Entry {
            r: ItemRef {
                id: Uuid::now_v7(),
                vault_id: Uuid::nil(),
                version: 1,
            },
            overview: Overview {
                name: name.into(),
                kind,
                subtitle: user.map(Into::into),
                urls: vec![],
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                folder: folder.map(Into::into),
                favorite: false,
                has_totp: false,
                created_at: 0,
                updated_at: 0,
                trashed_at: None,
            },
        }
    }

    fn names(entries: &[Entry], hits: &[Hit]) -> Vec<String> {
        hits.iter()
            .map(|h| entries[h.index].overview.name.clone())
            .collect()
    }

    #[test]
    fn parses_filters() {
        let q = Query::parse("git kind:login tag:work folder:Dev is:fav").expect("parses");
        assert_eq!(q.text, "git");
        assert_eq!(q.kind, Some(ItemKind::Login));
        assert_eq!(q.tags, vec!["work"]);
        assert_eq!(q.folder.as_deref(), Some("Dev"));
        assert!(q.favorite && !q.trash);
        assert!(Query::parse("kind:spaceship").is_err());
        assert!(Query::parse("is:odd").is_err());
        assert_eq!(Query::parse("http://x").expect("parses").text, "http://x");
    }

    #[test]
    fn ranks_and_filters() {
        let entries = vec![
            entry(
                "GitHub",
                ItemKind::Login,
                &["work"],
                Some("Dev"),
                Some("octo"),
            ),
            entry("GitLab", ItemKind::Login, &["home"], None, None),
            entry("Bank", ItemKind::Card, &[], None, None),
            entry("Notes about git", ItemKind::Note, &["work"], None, None),
        ];
        let mut index = SearchIndex::build(&entries);
        let q = |s: &str| Query::parse(s).expect("parses");
        assert_eq!(
            names(&entries, &index.search(&entries, &q("github")))[0],
            "GitHub"
        );
        assert_eq!(
            names(&entries, &index.search(&entries, &q("octo"))),
            vec!["GitHub"]
        );
        assert_eq!(
            names(
                &entries,
                &index.search(&entries, &q("git tag:work kind:login"))
            ),
            vec!["GitHub"]
        );
        assert_eq!(
            names(&entries, &index.search(&entries, &q("kind:card"))),
            vec!["Bank"]
        );
        assert_eq!(
            names(&entries, &index.search(&entries, &q("folder:dev"))),
            vec!["GitHub"]
        );
        assert!(index.search(&entries, &q("zzzz")).is_empty());
    }

    #[test]
    fn typing_narrows_like_a_fresh_search() {
        let entries: Vec<Entry> = (0..3000)
            .map(|i| {
                entry(
                    &format!("site{i} account"),
                    ItemKind::Login,
                    &[],
                    None,
                    Some(&format!("user{}", i % 7)),
                )
            })
            .collect();
        let mut typing = SearchIndex::build(&entries);
        let mut fresh = SearchIndex::build(&entries);
        let mut typed = String::new();
        for c in "site12 acc".chars() {
            typed.push(c);
            let q = Query::parse(&typed).expect("parses");
            let a = typing.search(&entries, &q);
            fresh.last = None;
            let b = fresh.search(&entries, &q);
            assert_eq!(a, b, "after typing {typed:?}");
        }
    }

    #[test]
    fn trash_is_separate() {
        let mut entries = vec![
            entry("Old", ItemKind::Login, &[], None, None),
            entry("New", ItemKind::Login, &[], None, None),
        ];
        entries[0].overview.trashed_at = Some(1);
        let mut index = SearchIndex::build(&entries);
        assert_eq!(
            names(
                &entries,
                &index.search(&entries, &Query::parse("").expect("q"))
            ),
            vec!["New"]
        );
        assert_eq!(
            names(
                &entries,
                &index.search(&entries, &Query::parse("is:trash").expect("q"))
            ),
            vec!["Old"]
        );
    }

    #[test]
    fn highlights_name_matches() {
        assert_eq!(SearchIndex::name_matches("GitHub", "gh"), vec![0, 3]);
    }
}
