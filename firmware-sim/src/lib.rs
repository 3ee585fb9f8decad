//! Host-side simulator of the digit-generator firmware.
//!
//! It generates digits with [`generator_core`] exactly as a microcontroller would (a fixed
//! arena of [`generator_core::MAX_ARENA_BYTES`], no allocation in the generation path) and
//! draws them with `embedded-graphics` on a headless simulated panel. The drawing code in
//! [`render`] is generic over [`embedded_graphics::draw_target::DrawTarget`], so the same
//! functions can drive a real SSD1306-style OLED or a grey-scale TFT.
//!
//! Modules, one idea each:
//! - [`digits`]: parsing the digit list, the seed schedule, generation, image checksums;
//! - [`dither`]: grey to black-and-white conversion (threshold, ordered, Floyd-Steinberg);
//! - [`layout`]: where each digit tile goes on a panel;
//! - [`render`]: drawing tiles on any `DrawTarget`;
//! - [`preview`]: a Unicode preview of a panel for the terminal;
//! - [`report`]: the flash / RAM / compute report.
#![deny(missing_docs)]

pub mod digits;
pub mod dither;
pub mod layout;
pub mod preview;
pub mod render;
pub mod report;
