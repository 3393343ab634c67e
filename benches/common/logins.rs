//! Generated items shared by the benchmarks: realistic logins (brands,
//! people, domains, tags, folders, notes) from a seeded RNG, so every bench
//! measures the same kind of vault. Included with `#[path]` by each bench.

// Each bench is its own crate and uses only part of this.
#![allow(dead_code)]

use openk::engine::ItemDraft;
use openk::engine::model::{Field, FieldKind, ItemKind, label};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

pub const BRANDS: &[&str] = &[
    "Acme",
    "Github",
    "Gitlab",
    "Google",
    "Amazon",
    "Netflix",
    "Spotify",
    "Dropbox",
    "Slack",
    "Zoom",
    "Atlassian",
    "Jira",
    "Notion",
    "Figma",
    "Stripe",
    "Paypal",
    "Chase",
    "Barclays",
    "Revolut",
    "Airbnb",
    "Booking",
    "Uber",
    "Steam",
    "Discord",
    "Reddit",
    "Mastodon",
    "Linkedin",
    "Medium",
    "Proton",
    "Fastmail",
    "Hetzner",
    "Linode",
    "Cloudflare",
    "Heroku",
    "Vercel",
    "Docker",
    "Npm",
    "Pypi",
    "Apple",
    "Microsoft",
    "Adobe",
    "Ikea",
    "Tesco",
    "Service",
    "Nordea",
    "Orange",
    "Vodafone",
    "Grafana",
    "Sentry",
    "Twilio",
];
pub const SUFFIXES: &[&str] = &[
    "Cloud", "Mail", "Bank", "Portal", "Admin", "Shop", "Account", "Console", "Wiki", "VPN",
    "Store", "Dev", "Staging", "Prod", "Home", "Work",
];
pub const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe",
];
pub const LAST: &[&str] = &[
    "smith", "jones", "garcia", "muller", "rossi", "dubois", "kowalski", "nakamura", "silva",
    "novak", "larsen", "oconnor",
];
pub const DOMAINS: &[&str] = &["example.com", "mail.test", "corp.example", "proton.test"];
pub const TLDS: &[&str] = &["com", "io", "net", "org", "dev", "co.uk"];
pub const TAGS: &[&str] = &[
    "work", "personal", "finance", "dev", "social", "shopping", "travel", "family", "infra", "old",
];
pub const FOLDERS: &[&str] = &[
    "Work", "Personal", "Banking", "Dev", "Servers", "Family", "Archive",
];
pub const NOTE_WORDS: &[&str] = &[
    "recovery", "codes", "stored", "offline", "security", "question", "first", "pet", "account",
    "number", "support", "pin", "changed", "after", "breach", "shared", "with", "team", "billing",
    "contact", "expires", "renew", "yearly", "ask", "admin",
];
pub const PASSWORD_ALPHABET: &[u8] =
    b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#$%&*+-=?@_";

pub fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or("x")
}

pub fn random_string(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(*alphabet.choose(rng).unwrap_or(&b'x')))
        .collect()
}

pub fn login_draft(rng: &mut StdRng) -> ItemDraft {
    let brand = pick(rng, BRANDS);
    let suffix = pick(rng, SUFFIXES);
    let name = if rng.gen_bool(0.85) {
        format!("{brand} {} {suffix}", rng.gen_range(1..10_000))
    } else {
        format!("{brand} {suffix}")
    };
    let (first, last) = (pick(rng, FIRST), pick(rng, LAST));
    let username = match rng.gen_range(0..3) {
        0 => format!("{first}.{last}@{}", pick(rng, DOMAINS)),
        1 => format!("{first}{}", rng.gen_range(1..1000)),
        _ => format!("{first}_{last}{}", rng.gen_range(1..100)),
    };
    let slug = brand.to_ascii_lowercase();
    let tld = pick(rng, TLDS);
    let mut fields = vec![
        Field::new(label::USERNAME, username, FieldKind::Text),
        Field::new(
            label::PASSWORD,
            random_string(rng, PASSWORD_ALPHABET, 20),
            FieldKind::Secret,
        ),
        Field::new(
            label::URL,
            format!("https://{slug}.{tld}/login"),
            FieldKind::Url,
        ),
    ];
    if rng.gen_bool(0.3) {
        fields.push(Field::new(
            label::URL,
            format!("https://{}.{slug}.{tld}/", suffix.to_ascii_lowercase()),
            FieldKind::Url,
        ));
    }
    if rng.gen_bool(0.05) {
        fields.push(Field::new(
            label::TOTP,
            random_string(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 32),
            FieldKind::Totp,
        ));
    }
    if rng.gen_bool(0.2) {
        let words = rng.gen_range(6..50);
        let notes = (0..words)
            .map(|_| pick(rng, NOTE_WORDS))
            .collect::<Vec<_>>()
            .join(" ");
        fields.push(Field::new(label::NOTES, notes, FieldKind::Multiline));
    }
    let tag_count = rng.gen_range(0..=3);
    let tags = TAGS
        .choose_multiple(rng, tag_count)
        .map(|t| (*t).to_owned())
        .collect();
    let folder = rng.gen_bool(0.5).then(|| pick(rng, FOLDERS).to_owned());
    ItemDraft {
        kind: ItemKind::Login,
        name,
        fields,
        tags,
        folder,
        favorite: rng.gen_bool(0.02),
    }
}
