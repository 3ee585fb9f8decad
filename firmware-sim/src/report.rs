//! The resource report: what the generator costs a microcontroller.

use core::fmt;
use std::time::{Duration, Instant};

use generator_core::{IMAGE_PIXELS, MAX_ARENA_BYTES, Model};

/// Upper bound of the stack the firmware uses on a Cortex-M4, in bytes.
///
/// Measured by `firmware/m4` with stack painting over its whole run (it prints `stack
/// peak: N bytes`: mostly the `main` frame and the 3x3-convolution frame; the highest of
/// its three boards is 4,672 B), plus a margin.
/// `.ci/firmware.sh` fails if the measured peak ever exceeds this value, so the number
/// cannot silently go stale.
pub const STACK_ESTIMATE_BYTES: usize = 7168;

/// Resource use of one model, as printed after the preview.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// Where the model came from (`shipped default` or a path).
    pub model_source: String,
    /// Size of the model file: it lives in flash.
    pub model_bytes: usize,
    /// The weights and biases within it.
    pub weight_bytes: usize,
    /// Arena the model needs.
    pub arena_bytes: usize,
    /// Multiply-accumulates to generate one digit.
    pub macs_per_digit: u64,
    /// Median host wall time to generate one digit.
    pub host_time_per_digit: Duration,
    /// Runs the median was taken over.
    pub timing_runs: usize,
}

impl Resources {
    /// Reads the static figures off `model`; the timing is left for the caller to fill in.
    pub fn of(model: &Model<'_>, model_source: String, model_bytes: usize) -> Self {
        Self {
            model_source,
            model_bytes,
            weight_bytes: model.weight_bytes(),
            arena_bytes: model.arena_bytes(),
            macs_per_digit: model.macs_per_digit(),
            host_time_per_digit: Duration::ZERO,
            timing_runs: 0,
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ram = MAX_ARENA_BYTES + IMAGE_PIXELS + STACK_ESTIMATE_BYTES;
        // The dev profile is optimised and has debug assertions off (workspace Cargo.toml), so
        // `cargo run` and `cargo run --release` both time optimised code.
        let profile = if cfg!(debug_assertions) {
            "debug assertions on: timing not representative"
        } else {
            "optimised build"
        };
        writeln!(f, "resources ({} model)", self.model_source)?;
        writeln!(
            f,
            "  flash  model            {:>9} B  (weights and biases {} B)",
            group(self.model_bytes as u64),
            group(self.weight_bytes as u64)
        )?;
        writeln!(
            f,
            "  RAM    arena            {:>9} B  (static [u8; MAX_ARENA_BYTES]; this model needs {} B)",
            group(MAX_ARENA_BYTES as u64),
            group(self.arena_bytes as u64)
        )?;
        writeln!(
            f,
            "         image buffer     {:>9} B",
            group(IMAGE_PIXELS as u64)
        )?;
        writeln!(
            f,
            "         stack (est.)     {:>9} B  (peak measured on Cortex-M4 by firmware/m4, with margin)",
            group(STACK_ESTIMATE_BYTES as u64)
        )?;
        writeln!(f, "         total            {:>9} B", group(ram as u64))?;
        writeln!(
            f,
            "  compute                  {:>9} multiply-accumulates per digit",
            group(self.macs_per_digit)
        )?;
        write!(
            f,
            "  host time                {:>9} us per digit (median of {}, {profile})",
            group(self.host_time_per_digit.as_micros() as u64),
            self.timing_runs
        )
    }
}

/// Median wall time of `runs` calls of `f` (at least one).
pub fn median_time<E>(runs: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<Duration, E> {
    let mut times = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_440_000), "1,440,000");
    }

    #[test]
    fn median_of_runs() {
        let mut calls = 0;
        let t = median_time(3, || {
            calls += 1;
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert!(t < Duration::from_secs(1));
        assert_eq!(median_time(2, || Err::<(), _>("boom")), Err("boom"));
    }
}
