//! `include/dgen.h` must be exactly what cbindgen makes of `src/lib.rs` today, so a
//! changed signature or constant cannot ship with a stale header.

use std::path::Path;

#[test]
fn header_matches_the_rust_signatures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen parses src/lib.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let path = dir.join("include/dgen.h");
    if std::env::var_os("DGEN_BLESS").is_some() {
        let tmp = path.with_extension("h.tmp");
        std::fs::write(&tmp, &generated).expect("write header");
        std::fs::rename(&tmp, &path).expect("replace header");
    }
    let committed = std::fs::read_to_string(&path).expect("include/dgen.h exists");
    assert!(
        committed == generated,
        "include/dgen.h is stale; regenerate with DGEN_BLESS=1 cargo test -p dgen-capi --test header\n\
         --- generated ---\n{generated}"
    );
}
