//! Rebuilds the crate when an embedded migration changes (`sqlx::migrate!`
//! reads the migration folders at compile time).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
