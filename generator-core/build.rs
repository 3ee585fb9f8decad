//! Sets `cfg(arm_dsp)` for targets whose CPU has the Arm DSP extension (dual 16-bit
//! multiply-accumulate, `SMLAD`): every `thumbv7em-*` target (Cortex-M4 and M7).
//! Stable Rust does not expose Arm target features to `cfg`, so the triple decides.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(arm_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=arm_dsp");
    }
}
