//! Fuzzy search over decrypted overviews (nucleo): name, username, URLs, tags
//! and folder, never a secret field. Filters (`kind:login tag:work folder:Dev
//! vault:Team is:fav is:trash`) narrow the set before matching; a filter's
//! value may be quoted (`vault:"Team Alpha"`).
//!
//! A query that extends the previous one (typing) only re-matches the previous
//! hits, which is what keeps search-as-you-type fast on 100k items; a fresh
//! query is matched on all cores.

use nucleo_matcher::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str, Utf32String};
use rayon::prelude::*;

use uuid::Uuid;

use super::model::{Entry, ItemKind};

/// A parsed search query: free text plus filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub text: String,
    pub kind: Option<ItemKind>,
    pub tags: Vec<String>,
    pub folder: Option<String>,
    /// `vault:NAME` as typed: a vault's name (any letter case) or id
    /// prefix. [`Session::search`](super::Session::search) and
    /// [`Session::list`](super::Session::list) resolve it into `vault_id`.
    pub vault: Option<String>,
    /// Only items of this vault.
    pub vault_id: Option<Uuid>,
    pub favorite: bool,
    pub trash: bool,
}

/// Splits a query into tokens at white space, except inside a filter value
/// in double quotes (`folder:"Work stuff"`), whose quotes are dropped; an
/// unclosed quote runs to the end of the input.
fn tokens(input: &str) -> Vec<std::borrow::Cow<'_, str>> {
    let mut out = Vec::new();
    let mut rest = input.trim_start();
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        if let Some((key, value)) = word.split_once(':')
            && !key.is_empty()
            && value.starts_with('"')
        {
            let start = key.len() + 2;
            let (inner, after) = match rest[start..].find('"') {
                Some(close) => (&rest[start..start + close], start + close + 1),
                None => (&rest[start..], rest.len()),
            };
            out.push(format!("{key}:{inner}").into());
            rest = rest[after..].trim_start();
            continue;
        }
        out.push(word.into());
        rest = rest[end..].trim_start();
    }
    out
}

impl Query {
    /// Splits `kind:`, `tag:`, `folder:`, `vault:`, `is:fav`/`is:favorite`
    /// and `is:trash` tokens from the free text.
    ///
    /// # Errors
    /// A message naming an unknown `kind:` or `is:` value.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut q = Self::default();
        let mut words = Vec::new();
        let tokens = tokens(input);
        for token in &tokens {
            let token = token.as_ref();
            let Some((key, value)) = token
                .split_once(':')
                .filter(|(k, v)| !k.is_empty() && !v.trim().is_empty())
            else {
                words.push(token);
                continue;
            };
            match key.to_ascii_lowercase().as_str() {
                "kind" | "type" => {
                    q.kind = Some(ItemKind::parse(value).ok_or_else(|| {
                        format!(
                            "unknown kind {value:?} in the query; kinds are: {}",
                            ItemKind::EVERY.map(ItemKind::as_str).join(", ")
                        )
                    })?);
                }
                "tag" => q.tags.push(value.to_owned()),
                "folder" => q.folder = Some(value.to_owned()),
                "vault" => q.vault = Some(value.trim().to_owned()),
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
            && self.vault_id.is_none_or(|v| e.r.vault_id == v)
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
            && self.vault_id == other.vault_id
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

/// Per-entry attributes a scan reads instead of the entries themselves (a
/// few cache lines per thousand entries instead of one or two per entry).
#[derive(Debug, Clone, Copy)]
struct Attrs {
    /// Characters present in the haystack (see [`char_bit`]); a needle
    /// whose characters are not all present cannot match.
    mask: u64,
    /// Folder id (0: none), interned case-insensitively.
    folder: u32,
    /// Range of this entry's tag ids in [`SearchIndex::tag_ids`].
    tags_at: u32,
    tags_len: u16,
    /// Name length in bytes, for ranking ties.
    name_len: u16,
    kind: ItemKind,
    trashed: bool,
    favorite: bool,
    /// The entry's vault, as its position in [`SearchIndex::vaults`]
    /// ([`MANY_VAULTS`]: a later one, read from the entry).
    vault: u8,
}

/// The vault index of every vault after the first 255 of an index (the
/// filter then reads the vault id from the entry itself).
const MANY_VAULTS: u8 = u8::MAX;

/// Where one haystack lives: ASCII text in the byte arena, anything else
/// as code points in the char arena.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    wide: bool,
}

/// Pre-built haystacks (flat arenas), per-entry attributes, name order, and
/// the previous query's hits.
#[derive(Debug, Default)]
pub struct SearchIndex {
    ascii: Vec<u8>,
    wide: Vec<char>,
    spans: Vec<Span>,
    attrs: Vec<Attrs>,
    tag_ids: Vec<u32>,
    /// Lower-cased folder and tag names to ids (1-based; 0 is "none").
    names: std::collections::HashMap<String, u32>,
    /// The vaults of the entries, in the order first seen (at most 255).
    vaults: Vec<Uuid>,
    /// Arena bytes no longer referenced (replaced by edits).
    garbage: usize,
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

fn haystack(e: &Entry) -> String {
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
    s
}

/// The mask bit of an ASCII character, case-folded: letters and digits
/// have their own bits, other characters share the rest.
fn char_bit(b: u8) -> u64 {
    let b = b.to_ascii_lowercase();
    match b {
        b'a'..=b'z' => 1 << (b - b'a'),
        b'0'..=b'9' => 1 << (26 + b - b'0'),
        _ => 1 << (36 + u32::from(b) % 28),
    }
}

/// The characters of a haystack; any non-ASCII character (which nucleo may
/// normalise to an ASCII one) makes every needle pass.
fn hay_mask(s: &str) -> u64 {
    if s.is_ascii() {
        s.bytes().fold(0, |m, b| m | char_bit(b))
    } else {
        u64::MAX
    }
}

/// The characters every match of the pattern must contain (ASCII needle
/// characters of its non-negative atoms).
fn needle_mask(pattern: &Pattern) -> u64 {
    pattern
        .atoms
        .iter()
        .filter(|a| !a.negative)
        .flat_map(|a| a.needle_text().chars())
        .filter(char::is_ascii)
        .fold(0, |m, c| m | char_bit(c as u8))
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
fn fast_score(pattern: &Pattern, hay: Utf32Str<'_>, m: &mut Matcher) -> Option<u32> {
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

thread_local! {
    /// One matcher per thread, reused: `Matcher::new` allocates a ~135 KB
    /// scratch slab (a fresh mmap, then page faults), which per rayon job
    /// cost more than the matching itself.
    static MATCHER: std::cell::RefCell<Matcher> = std::cell::RefCell::new(Matcher::new(Config::DEFAULT));
}

/// Runs `f` with this thread's matcher.
fn with_matcher<T>(f: impl FnOnce(&mut Matcher) -> T) -> T {
    MATCHER.with(|m| {
        let mut m = m.borrow_mut();
        m.config = Config::DEFAULT;
        f(&mut m)
    })
}

/// The filters of a query resolved to the index's ids.
struct Filter {
    trash: bool,
    kind: Option<ItemKind>,
    favorite: bool,
    /// `Some(None)`: a folder nothing is in.
    folder: Option<Option<u32>>,
    tags: Vec<Option<u32>>,
    /// The vault's index (`None`: a vault no entry is in) and id.
    vault: Option<(Option<u8>, Uuid)>,
}

impl Filter {
    fn admits(&self, a: &Attrs, tag_ids: &[u32], entry: impl Fn() -> Uuid) -> bool {
        a.trashed == self.trash
            && self.vault.is_none_or(|(at, id)| match at {
                Some(MANY_VAULTS) => a.vault == MANY_VAULTS && entry() == id,
                Some(i) => a.vault == i,
                None => false,
            })
            && self.kind.is_none_or(|k| a.kind == k)
            && (!self.favorite || a.favorite)
            && self.folder.is_none_or(|f| f == Some(a.folder))
            && self.tags.iter().all(|t| {
                t.is_some_and(|t| {
                    let at = a.tags_at as usize;
                    tag_ids[at..at + usize::from(a.tags_len)].contains(&t)
                })
            })
    }
}

impl SearchIndex {
    #[must_use]
    pub fn build(entries: &[Entry]) -> Self {
        let texts: Vec<(String, u64)> = entries
            .par_iter()
            .map(|e| {
                let h = haystack(e);
                let m = hay_mask(&h);
                (h, m)
            })
            .collect();
        let mut index = Self {
            ascii: Vec::with_capacity(texts.iter().map(|(t, _)| t.len()).sum()),
            name_rank: name_ranks(entries),
            ..Self::default()
        };
        for (e, (text, mask)) in entries.iter().zip(texts) {
            let span = index.store_text(&text);
            let attrs = index.attrs_of(e, mask);
            index.spans.push(span);
            index.attrs.push(attrs);
        }
        index
    }

    fn store_text(&mut self, text: &str) -> Span {
        if text.is_ascii() {
            let start = u32::try_from(self.ascii.len()).unwrap_or(u32::MAX);
            self.ascii.extend_from_slice(text.as_bytes());
            Span {
                start,
                len: u32::try_from(text.len()).unwrap_or(u32::MAX),
                wide: false,
            }
        } else {
            let start = u32::try_from(self.wide.len()).unwrap_or(u32::MAX);
            self.wide.extend(nucleo_matcher::chars::graphemes(text));
            Span {
                start,
                len: u32::try_from(self.wide.len()).unwrap_or(u32::MAX) - start,
                wide: true,
            }
        }
    }

    fn hay(&self, i: usize) -> Utf32Str<'_> {
        let s = self.spans[i];
        let range = s.start as usize..(s.start + s.len) as usize;
        if s.wide {
            Utf32Str::Unicode(&self.wide[range])
        } else {
            Utf32Str::Ascii(&self.ascii[range])
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        let key = name.to_ascii_lowercase();
        let next = u32::try_from(self.names.len() + 1).unwrap_or(u32::MAX);
        *self.names.entry(key).or_insert(next)
    }

    fn vault_index(&mut self, id: Uuid) -> u8 {
        if let Some(i) = self.vaults.iter().position(|v| *v == id) {
            return u8::try_from(i).unwrap_or(MANY_VAULTS);
        }
        if self.vaults.len() < usize::from(MANY_VAULTS) {
            self.vaults.push(id);
            return u8::try_from(self.vaults.len() - 1).unwrap_or(MANY_VAULTS);
        }
        MANY_VAULTS
    }

    fn attrs_of(&mut self, e: &Entry, mask: u64) -> Attrs {
        let vault = self.vault_index(e.r.vault_id);
        let o = &e.overview;
        let folder = o.folder.as_deref().map_or(0, |f| self.intern(f));
        let tags_at = u32::try_from(self.tag_ids.len()).unwrap_or(u32::MAX);
        for t in &o.tags {
            let id = self.intern(t);
            self.tag_ids.push(id);
        }
        Attrs {
            mask,
            folder,
            tags_at,
            tags_len: u16::try_from(o.tags.len()).unwrap_or(u16::MAX),
            name_len: u16::try_from(o.name.len()).unwrap_or(u16::MAX),
            kind: o.kind,
            trashed: o.trashed_at.is_some(),
            favorite: o.favorite,
            vault,
        }
    }

    /// Replaces the haystack of one entry (after an edit) or appends one.
    pub fn update(&mut self, index: usize, entry: &Entry) {
        let text = haystack(entry);
        let span = self.store_text(&text);
        let attrs = self.attrs_of(entry, hay_mask(&text));
        if index < self.spans.len() {
            self.garbage += self.spans[index].len as usize;
            self.spans[index] = span;
            self.attrs[index] = attrs;
        } else {
            self.spans.push(span);
            self.attrs.push(attrs);
        }
        self.ranks_stale = true;
        self.last = None;
    }

    fn filter(&self, query: &Query) -> Filter {
        let id = |name: &str| self.names.get(&name.to_ascii_lowercase()).copied();
        Filter {
            trash: query.trash,
            kind: query.kind,
            favorite: query.favorite,
            folder: query.folder.as_deref().map(id),
            tags: query.tags.iter().map(|t| id(t)).collect(),
            vault: query.vault_id.map(|v| {
                let at = self.vaults.iter().position(|x| *x == v);
                (
                    at.map(|i| u8::try_from(i).unwrap_or(MANY_VAULTS))
                        .or((self.vaults.len() >= usize::from(MANY_VAULTS)).then_some(MANY_VAULTS)),
                    v,
                )
            }),
        }
    }

    /// The entries that pass the query's filters and match its text: the
    /// best `limit` ranked (best score first, then shorter names, then name
    /// order; with no text, name order), and the total.
    pub fn search(&mut self, entries: &[Entry], query: &Query, limit: usize) -> Results {
        // An index that has drifted from the entries (or grown too much
        // dead text through edits) is rebuilt.
        if self.spans.len() != entries.len() || self.garbage > self.ascii.len() / 2 + 4096 {
            *self = Self::build(entries);
        }
        if self.ranks_stale || self.name_rank.len() != entries.len() {
            self.name_rank = name_ranks(entries);
            self.ranks_stale = false;
        }
        let filter = self.filter(query);
        let attrs = &self.attrs;
        let tag_ids = &self.tag_ids;
        let text = query.text.trim();
        let rank = &self.name_rank;
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        if text.is_empty() {
            let mut all: Vec<u32> = (0..count)
                .into_par_iter()
                .with_min_len(4096)
                .filter(|&i| {
                    filter.admits(&attrs[i as usize], tag_ids, || {
                        entries[i as usize].r.vault_id
                    })
                })
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
        let need = needle_mask(&pattern);
        let this = &*self;
        let score = |m: &mut Matcher, i: u32| {
            let a = &attrs[i as usize];
            if a.mask & need != need
                || !filter.admits(a, tag_ids, || entries[i as usize].r.vault_id)
            {
                return None;
            }
            fast_score(&pattern, this.hay(i as usize), m).map(|score| (i, score))
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
                .filter_map(|&i| with_matcher(|m| score(m, i)))
                .collect(),
            None => (0..count)
                .into_par_iter()
                .with_min_len(4096)
                .filter_map(|i| with_matcher(|m| score(m, i)))
                .collect(),
        };
        let total = found.len();
        // Best fast scores first; only those are re-scored and fully ranked.
        let key = |&(i, s): &(u32, u32)| {
            (
                std::cmp::Reverse(s),
                attrs[i as usize].name_len,
                rank[i as usize],
            )
        };
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
            .map(|&(i, fast)| {
                with_matcher(|m| (i, pattern.score(this.hay(i as usize), m).unwrap_or(fast)))
            })
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

    pub(super) fn entry(
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
                subtitle: user.map(Into::into),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                folder: folder.map(Into::into),
                ..Overview::new(name, kind)
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
    fn parses_vault_filters_and_quoted_values() {
        let q = Query::parse("git vault:Team").expect("parses");
        assert_eq!((q.text.as_str(), q.vault.as_deref()), ("git", Some("Team")));
        let q =
            Query::parse(r#"vault:"Team Alpha" git folder:"Work stuff" tag:x"#).expect("parses");
        assert_eq!(q.vault.as_deref(), Some("Team Alpha"));
        assert_eq!(q.folder.as_deref(), Some("Work stuff"));
        assert_eq!(q.tags, vec!["x"]);
        assert_eq!(q.text, "git");
        // An unclosed quote runs to the end; quotes in free text stay.
        let q = Query::parse(r#"a vault:"Team B"#).expect("parses");
        assert_eq!((q.text.as_str(), q.vault.as_deref()), ("a", Some("Team B")));
        assert_eq!(
            Query::parse(r#"say "hi""#).expect("parses").text,
            r#"say "hi""#
        );
        // An empty value is free text, as for the other filters.
        assert_eq!(Query::parse(r#"vault:"""#).expect("parses").vault, None);
    }

    #[test]
    fn attrs_stay_small() {
        // A scan reads these for every entry: the vault index fits in the
        // padding they had.
        assert!(std::mem::size_of::<Attrs>() <= 24);
    }

    #[test]
    fn filters_by_vault_index_past_255_vaults() {
        let mut entries: Vec<Entry> = (0..300u128)
            .map(|i| {
                let mut e = entry(&format!("item {i}"), ItemKind::Login, &[], None, None);
                e.r.vault_id = Uuid::from_u128(i + 1);
                e
            })
            .collect();
        entries[299].overview.name = "last".into();
        let mut index = SearchIndex::build(&entries);
        for (vault, name) in [(1u128, "item 0"), (200, "item 199"), (300, "last")] {
            let q = Query {
                vault_id: Some(Uuid::from_u128(vault)),
                ..Query::default()
            };
            assert_eq!(
                names(&entries, &index.search(&entries, &q, 10).hits),
                vec![name]
            );
            let q = Query {
                text: "i".into(),
                ..q
            };
            let expect: Vec<&str> = if name == "last" { vec![] } else { vec![name] };
            assert_eq!(
                names(&entries, &index.search(&entries, &q, 10).hits),
                expect
            );
        }
        let q = Query {
            vault_id: Some(Uuid::from_u128(999)),
            ..Query::default()
        };
        assert!(index.search(&entries, &q, 10).hits.is_empty());
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
                .filter_map(|i| pattern.score(index.hay(i), &mut matcher).map(|s| (s, i)))
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
    fn prefilter_keeps_case_accents_and_filters_exact() {
        let mut entries = vec![
            entry("Café Zürich", ItemKind::Login, &["Work"], Some("Dev"), None),
            entry("Plain", ItemKind::Note, &["home", "work"], None, Some("me")),
            entry("Other", ItemKind::Login, &[], Some("dev"), None),
        ];
        let mut index = SearchIndex::build(&entries);
        let found = |index: &mut SearchIndex, entries: &[Entry], q: &str| {
            names(
                entries,
                &index
                    .search(entries, &Query::parse(q).expect("q"), 100)
                    .hits,
            )
        };
        assert_eq!(found(&mut index, &entries, "cafe zur"), vec!["Café Zürich"]);
        // Smart case: an upper-case needle matches case-sensitively.
        assert_eq!(found(&mut index, &entries, "Pla"), vec!["Plain"]);
        assert!(found(&mut index, &entries, "PLA").is_empty());
        assert!(found(&mut index, &entries, "plx").is_empty());
        assert_eq!(found(&mut index, &entries, "tag:WORK").len(), 2);
        assert_eq!(
            found(&mut index, &entries, "tag:work tag:home"),
            vec!["Plain"]
        );
        assert!(found(&mut index, &entries, "tag:nowhere").is_empty());
        assert_eq!(found(&mut index, &entries, "folder:DEV").len(), 2);
        // An edit is seen by the next search, tags and text alike.
        entries[2].overview.tags = vec!["home".into()];
        entries[2].overview.name = "Renamed".into();
        index.update(2, &entries[2]);
        assert_eq!(found(&mut index, &entries, "tag:home").len(), 2);
        assert_eq!(found(&mut index, &entries, "renam"), vec!["Renamed"]);
        assert!(found(&mut index, &entries, "other").is_empty());
    }

    #[test]
    fn highlights_name_matches() {
        assert_eq!(SearchIndex::name_matches("GitHub", "gh"), vec![0, 3]);
    }
}
