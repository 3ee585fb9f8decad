//! Copies the selected board's memory map (`memory/<board>.x`) to `OUT_DIR/memory.x`, where
//! cortex-m-rt's `link.x` finds it, and relinks when it changes.

use std::{env, fs, path::PathBuf};

/// `(cargo feature, memory file)`; exactly one board feature must be enabled.
const BOARDS: [(&str, &str); 3] = [
    ("CARGO_FEATURE_MPS2_AN386", "memory/mps2-an386.x"),
    ("CARGO_FEATURE_MICROBIT", "memory/microbit.x"),
    ("CARGO_FEATURE_LM3S811EVB", "memory/lm3s811evb.x"),
];

fn main() {
    let chosen: Vec<&str> = BOARDS
        .iter()
        .filter(|(feature, _)| env::var_os(feature).is_some())
        .map(|&(_, file)| file)
        .collect();
    let [memory] = chosen[..] else {
        panic!(
            "enable exactly one board feature (mps2-an386, microbit, lm3s811evb); got {chosen:?}"
        );
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(memory, out.join("memory.x")).expect("copy the board's memory map to OUT_DIR");
    // cortex-m-rt's `device` feature (lm3s811evb) includes `device.x`, where a device crate
    // names its interrupt handlers; this firmware's own vector table (src/main.rs) points
    // every interrupt at `DefaultHandler`, so there is nothing to name.
    fs::write(out.join("device.x"), "/* no device interrupt handlers */\n")
        .expect("write device.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=build.rs");
}
