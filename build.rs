//! `embed_migrations!` reads the migration folders when the crate compiles, and cargo
//! does not know it: without this, a migration added with no Rust change beside it would
//! be missing from a build that reuses an old `target/`.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
