//! Fuzzy search over decrypted overviews (nucleo): name, username, URLs, tags
//! and folder, never a secret field. Filters (`kind:login tag:work folder:Dev
//! is:fav is:trash`) narrow the set before matching.
//!
//! A query that extends the previous one (typing) only re-matches the previous
//! hits, which is what keeps search-as-you-type fast on 100k items; a fresh
//! query is matched on all cores.

use nucleo_matcher::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
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

/// The best hits of a search, ranked, and how many entries matched in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    pub hits: Vec<Hit>,
    pub total: usize,
}

/// How many of the best fast-scored hits are re-scored with nucleo's
/// optimal (slower) algorithm before they are ranked.
const RESCORE: usize = 512;

/// Pre-built haystacks, name order, and the previous query's hits.
#[derive(Debug, Default)]
pub struct SearchIndex {
    haystacks: Vec<Utf32String>,
    /// Per entry: in the trash, and the name's length (for ranking ties);
    /// kept here so a scan does not touch the entries themselves.
    trashed: Vec<bool>,
    name_len: Vec<u16>,
    /// Position of each entry in case-insensitive name order.
    name_rank: Vec<u32>,
    ranks_stale: bool,
    last: Option<(Query, Vec<u32>)>,
}

/// The URL without scheme, credentials, path or query: what people type.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].trim_start_matches("www.")
}

fn haystack(e: &Entry) -> Utf32String {
    let o = &e.overview;
    let mut s = String::with_capacity(48);
    s.push_str(&o.name);
    for part in o
        .subtitle
        .iter()
        .map(String::as_str)
        .chain(o.urls.iter().map(|u| host(u)))
    {
        s.push(' ');
        s.push_str(part);
    }
    for part in o.tags.iter().chain(o.folder.iter()) {
        s.push(' ');
        s.push_str(part);
    }
    Utf32String::from(s.as_str())
}

fn name_len(e: &Entry) -> u16 {
    u16::try_from(e.overview.name.len()).unwrap_or(u16::MAX)
}

fn name_ranks(entries: &[Entry]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..u32::try_from(entries.len()).unwrap_or(u32::MAX)).collect();
    order.par_sort_by_cached_key(|&i| entries[i as usize].overview.name.to_lowercase());
    let mut rank = vec![0u32; entries.len()];
    for (pos, &i) in order.iter().enumerate() {
        rank[i as usize] = u32::try_from(pos).unwrap_or(u32::MAX);
    }
    rank
}

/// Scores one haystack like [`Pattern::score`], but with nucleo's greedy
/// matcher for fuzzy atoms (several times cheaper; the best hits are
/// re-scored optimally afterwards).
fn fast_score(
    pattern: &Pattern,
    hay: nucleo_matcher::Utf32Str<'_>,
    m: &mut Matcher,
) -> Option<u32> {
    let mut total = 0u32;
    for atom in &pattern.atoms {
        let score = if atom.kind == AtomKind::Fuzzy && !atom.negative {
            let needle = atom.needle_text();
            // Smart case and normalisation, as the atom was parsed.
            m.config.ignore_case = !needle.chars().any(char::is_uppercase);
            m.config.normalize = needle.chars().all(|c| c.is_ascii());
            m.fuzzy_match_greedy(hay, needle)?
        } else {
            atom.score(hay, m)?
        };
        total += u32::from(score);
    }
    Some(total)
}

impl SearchIndex {
    #[must_use]
    pub fn build(entries: &[Entry]) -> Self {
        Self {
            haystacks: entries.par_iter().map(haystack).collect(),
            trashed: entries
                .iter()
                .map(|e| e.overview.trashed_at.is_some())
                .collect(),
            name_len: entries.iter().map(name_len).collect(),
            name_rank: name_ranks(entries),
            ranks_stale: false,
            last: None,
        }
    }

    /// Replaces the haystack of one entry (after an edit) or appends one.
    pub fn update(&mut self, index: usize, entry: &Entry) {
        if index < self.haystacks.len() {
            self.haystacks[index] = haystack(entry);
            self.trashed[index] = entry.overview.trashed_at.is_some();
            self.name_len[index] = name_len(entry);
        } else {
            self.haystacks.push(haystack(entry));
            self.trashed.push(entry.overview.trashed_at.is_some());
            self.name_len.push(name_len(entry));
        }
        self.ranks_stale = true;
        self.last = None;
    }

    /// The entries that pass the query's filters and match its text: the
    /// best `limit` ranked (best score first, then shorter names, then name
    /// order; with no text, name order), and the total.
    pub fn search(&mut self, entries: &[Entry], query: &Query, limit: usize) -> Results {
        if self.haystacks.len() != entries.len() || self.trashed.len() != entries.len() {
            *self = Self::build(entries);
        }
        if self.ranks_stale || self.name_rank.len() != entries.len() {
            self.name_rank = name_ranks(entries);
            self.ranks_stale = false;
        }
        let filtered = query.kind.is_some()
            || !query.tags.is_empty()
            || query.folder.is_some()
            || query.favorite;
        let admits = |i: usize| {
            let e = &entries[i];
            if filtered {
                query.admits(e)
            } else {
                e.overview.trashed_at.is_some() == query.trash
            }
        };
        let text = query.text.trim();
        let rank = &self.name_rank;
        if text.is_empty() {
            let mut all: Vec<u32> = (0..entries.len())
                .into_par_iter()
                .filter(|&i| admits(i))
                .map(|i| i as u32)
                .collect();
            let total = all.len();
            let by_name = |a: &u32, b: &u32| rank[*a as usize].cmp(&rank[*b as usize]);
            if all.len() > limit && limit > 0 {
                all.select_nth_unstable_by(limit - 1, by_name);
                all.truncate(limit);
            }
            all.sort_unstable_by(by_name);
            all.truncate(limit);
            self.last = None;
            return Results {
                hits: all
                    .into_iter()
                    .map(|i| Hit {
                        index: i as usize,
                        score: 0,
                    })
                    .collect(),
                total,
            };
        }
        let pattern = Pattern::parse(text, CaseMatching::Smart, Normalization::Smart);
        let haystacks = &self.haystacks;
        let score = |m: &mut Matcher, i: u32| {
            let i = i as usize;
            if !admits(i) {
                return None;
            }
            fast_score(&pattern, haystacks[i].slice(..), m).map(|score| (i as u32, score))
        };
        let narrowing = self.last.as_ref().filter(|(prev, _)| {
            prev.same_filters(query)
                && !prev.text.trim().is_empty()
                && query.text.starts_with(&prev.text)
                && !query.text.contains('!')
        });
        let found: Vec<(u32, u32)> = match narrowing {
            Some((_, prev)) => prev
                .par_iter()
                .with_min_len(4096)
                .map_init(|| Matcher::new(Config::DEFAULT), |m, &i| score(m, i))
                .flatten()
                .collect(),
            None => (0..u32::try_from(entries.len()).unwrap_or(u32::MAX))
                .into_par_iter()
                .with_min_len(4096)
                .map_init(|| Matcher::new(Config::DEFAULT), |m, i| score(m, i))
                .flatten()
                .collect(),
        };
        let total = found.len();
        // Best fast scores first; only those are re-scored and fully ranked.
        let name_len = &self.name_len;
        let key =
            |&(i, s): &(u32, u32)| (std::cmp::Reverse(s), name_len[i as usize], rank[i as usize]);
        let keep = limit.max(RESCORE).min(found.len());
        let previous: Vec<u32> = found.iter().map(|&(i, _)| i).collect();
        let mut best = found;
        if best.len() > keep && keep > 0 {
            best.select_nth_unstable_by_key(keep - 1, key);
            best.truncate(keep);
        }
        // The optimal matcher costs a few µs per haystack: re-score on all cores.
        let mut ranked: Vec<(u32, u32)> = best
            .par_iter()
            .with_min_len(64)
            .map_init(
                || Matcher::new(Config::DEFAULT),
                |m, &(i, fast)| {
                    (
                        i,
                        pattern
                            .score(haystacks[i as usize].slice(..), m)
                            .unwrap_or(fast),
                    )
                },
            )
            .collect();
        ranked.sort_unstable_by_key(key);
        ranked.truncate(limit);
        self.last = Some((query.clone(), previous));
        Results {
            hits: ranked
                .into_iter()
                .map(|(i, score)| Hit {
                    index: i as usize,
                    score,
                })
                .collect(),
            total,
        }
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
            names(&entries, &index.search(&entries, &q("github"), 1000).hits)[0],
            "GitHub"
        );
        assert_eq!(
            names(&entries, &index.search(&entries, &q("octo"), 1000).hits),
            vec!["GitHub"]
        );
        assert_eq!(
            names(
                &entries,
                &index
                    .search(&entries, &q("git tag:work kind:login"), 1000)
                    .hits
            ),
            vec!["GitHub"]
        );
        assert_eq!(
            names(
                &entries,
                &index.search(&entries, &q("kind:card"), 1000).hits
            ),
            vec!["Bank"]
        );
        assert_eq!(
            names(
                &entries,
                &index.search(&entries, &q("folder:dev"), 1000).hits
            ),
            vec!["GitHub"]
        );
        assert!(index.search(&entries, &q("zzzz"), 1000).hits.is_empty());
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
            let a = typing.search(&entries, &q, 1000);
            fresh.last = None;
            let b = fresh.search(&entries, &q, 1000);
            assert_eq!(a, b, "after typing {typed:?}");
        }
    }

    #[test]
    fn totals_and_best_hits_agree_with_plain_nucleo() {
        let entries: Vec<Entry> = (0..3000)
            .map(|i| {
                entry(
                    &format!("Service {i} cloud"),
                    ItemKind::Login,
                    &["work"],
                    None,
                    Some(&format!("user{}@example.org", i % 13)),
                )
            })
            .collect();
        let mut index = SearchIndex::build(&entries);
        let mut matcher = Matcher::new(Config::DEFAULT);
        for q in [
            "sv",
            "ser 12",
            "cloud",
            "u7",
            "Service 42",
            "zq",
            "e",
            "ple.or",
        ] {
            let pattern = Pattern::parse(q, CaseMatching::Smart, Normalization::Smart);
            let mut expected: Vec<(u32, usize)> = (0..entries.len())
                .filter_map(|i| {
                    pattern
                        .score(index.haystacks[i].slice(..), &mut matcher)
                        .map(|s| (s, i))
                })
                .collect();
            expected.sort_by_key(|e| std::cmp::Reverse(e.0));
            let got = index.search(&entries, &Query::parse(q).expect("q"), 10);
            assert_eq!(got.total, expected.len(), "total for {q:?}");
            if let (Some(best), Some(top)) = (got.hits.first(), expected.first()) {
                assert_eq!(best.score, top.0, "best score for {q:?}");
            }
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
                &index
                    .search(&entries, &Query::parse("").expect("q"), 1000)
                    .hits
            ),
            vec!["New"]
        );
        assert_eq!(
            names(
                &entries,
                &index
                    .search(&entries, &Query::parse("is:trash").expect("q"), 1000)
                    .hits
            ),
            vec!["Old"]
        );
    }

    #[test]
    fn highlights_name_matches() {
        assert_eq!(SearchIndex::name_matches("GitHub", "gh"), vec![0, 3]);
    }
}
