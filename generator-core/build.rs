//! Sets `cfg(arm_dsp)` for targets whose CPU has the Arm DSP extension (dual 16-bit
//! multiply-accumulate, `SMLAD`): every `thumbv7em-*` target (Cortex-M4 and M7).
//! Stable Rust does not expose Arm target features to `cfg`, so the triple decides.
//!
//! Also sets `cfg(arm_dsp_kernel)` where the Arm DSP kernel (`ops::isa::arm_dsp`) is
//! built: on those targets (its assembly) and on hosts other than WebAssembly (its
//! portable twins, which the host tests run); not on the other Arm targets, whose flash
//! would hold it for nothing, nor in the WebAssembly module.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(arm_dsp)");
    println!("cargo::rustc-check-cfg=cfg(arm_dsp_kernel)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let dsp = target.starts_with("thumbv7em-");
    if dsp {
        println!("cargo::rustc-cfg=arm_dsp");
    }
    if dsp || !matches!(arch.as_str(), "arm" | "wasm32") {
        println!("cargo::rustc-cfg=arm_dsp_kernel");
    }
}
