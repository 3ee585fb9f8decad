//! Cortex-M firmware: generates the digits 0-9 with `generator-core` and the shipped
//! model, prints a checksum of each image, the instructions it took and an ASCII preview,
//! then exits through semihosting.
//!
//! One source for every board; a cargo feature picks the board (its memory map and name):
//! `mps2-an386` (Cortex-M4F, the default), `microbit` (Cortex-M0) or `lm3s811evb`
//! (Cortex-M3). See README.md. Instruction counting relies on QEMU's `-icount shift=0`,
//! under which SysTick (core clock) advances one tick per 40 retired instructions on
//! `mps2-an386`; the firmware calibrates that ratio itself on a loop of known length and
//! skips the counts on boards whose SysTick does not run.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use generator_core::fnv::fnv1a32;
use generator_core::{IMAGE_PIXELS, IMAGE_SIDE, Image, Model, StreamGenerator};
use panic_semihosting as _;

/// The board this build is for (the cargo feature).
#[cfg(feature = "mps2-an386")]
const BOARD: &str = "Cortex-M4 (QEMU mps2-an386)";
#[cfg(feature = "microbit")]
const BOARD: &str = "Cortex-M0 (QEMU microbit)";
#[cfg(feature = "lm3s811evb")]
const BOARD: &str = "Cortex-M3 (QEMU lm3s811evb)";

/// Arena of the streaming generator: `StreamGenerator::arena_bytes` of the shipped model
/// (the firmware checks it at start-up), against 9,408 bytes for the whole-image
/// `Generator`.
const ARENA_BYTES: usize = 3920;

/// Weight cache of the streaming generator on `mps2-an386`:
/// `StreamGenerator::weight_cache_words` of the shipped model (checked at start-up), the
/// merged weights of the two row-by-row layers, prepared once instead of on every row,
/// and `StreamGenerator::SCRATCH_WORDS` (512) of kernel scratch, which spares each
/// row-by-row call zeroing a 2 KiB stack buffer. The small boards, short of RAM, merge
/// per row.
#[cfg(feature = "mps2-an386")]
const CACHE_WORDS: usize = 1060 + StreamGenerator::SCRATCH_WORDS;

/// Digit `d` is generated with seed `BASE_SEED + d`: the schedule of
/// `firmware-sim --seed 42 --checksums 0123456789`, so the host can check every image.
const BASE_SEED: u32 = 42;
/// Random cases per kernel in the start-up self-test of the dot-product kernels.
const SELF_TEST_CASES: u32 = 200;
/// The digit whose image is printed as ASCII art.
const PREVIEW_DIGIT: u8 = 4;
/// SysTick is a 24-bit down-counter; it runs through all of it.
const RELOAD: u32 = 0x00FF_FFFF;
/// Iterations of the calibration loop (two instructions each).
const CALIBRATION_ITERATIONS: u32 = 1_000_000;
/// Stack painting fills this many bytes below the current stack pointer (or down to the end
/// of static RAM, whichever is closer).
const PAINT_WINDOW: usize = 64 * 1024;
/// The paint pattern.
const PAINT: u32 = 0xA5A5_A5A5;

/// Number of times SysTick has wrapped around.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes WRAPS, so a load and a store suffice (thumbv6m has no
    // atomic read-modify-write).
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("error: hard fault at pc {:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        fail("core peripherals already taken")
    };
    start_systick(&mut core.SYST);

    hprintln!("digits-m4: generator-core on a {}", BOARD);
    let milli_per_tick = calibrate();
    if let Some(milli_per_tick) = milli_per_tick {
        hprintln!(
            "calibration: {}.{:03} instructions per SysTick tick (40.000 on mps2-an386)",
            milli_per_tick / 1000,
            milli_per_tick % 1000
        );
    }

    let model = match generator_core::default_model() {
        Ok(model) => model,
        Err(e) => fail_with("shipped model does not load", e),
    };
    // The target's kernels (on the M4 the `asm!` loops) against their portable twins.
    let bad =
        generator_core::ops::self_test::kernel_self_test(u64::from(BASE_SEED), SELF_TEST_CASES);
    hprintln!(
        "kernel self-test: {} of {} random cases per kernel disagree",
        bad,
        SELF_TEST_CASES
    );
    if bad != 0 {
        fail("kernel self-test failed");
    }
    let macs = model.macs_per_digit();
    hprintln!(
        "model: {} bytes (weights {}), streaming arena {} of {} bytes, {} MACs per digit",
        generator_core::DEFAULT_MODEL.len(),
        model.weight_bytes(),
        StreamGenerator::arena_bytes(&model),
        ARENA_BYTES,
        macs
    );
    #[cfg(feature = "mps2-an386")]
    hprintln!(
        "weight cache: {} of {} words",
        StreamGenerator::weight_cache_words(&model),
        CACHE_WORDS
    );

    // Statics in .bss, so `llvm-size` accounts for them; each `singleton!` runs once.
    let Some(arena) = cortex_m::singleton!(: [u8; ARENA_BYTES] = [0; ARENA_BYTES]) else {
        fail("arena already taken")
    };
    let Some(image) = cortex_m::singleton!(: Image = [0; IMAGE_PIXELS]) else {
        fail("image buffer already taken")
    };

    #[cfg(feature = "mps2-an386")]
    let Some(cache) = cortex_m::singleton!(: [u32; CACHE_WORDS] = [0; CACHE_WORDS]) else {
        fail("weight cache already taken")
    };
    #[cfg(not(feature = "mps2-an386"))]
    let cache: &mut [u32] = &mut [];

    let painted = paint_stack();
    let (total, min, max) = generate_all(&model, arena, &mut cache[..], image, milli_per_tick);
    let peak = stack_peak(painted);
    #[cfg(feature = "mps2-an386")]
    if let Some(milli_per_tick) = milli_per_tick {
        profile_layers(&model, cache, milli_per_tick);
    }

    if milli_per_tick.is_some() {
        let mean = total / 10;
        hprintln!(
            "instructions per digit: mean {} (min {}, max {})",
            mean,
            min,
            max
        );
        let per_mac_x100 = (mean * 100 + macs / 2) / macs.max(1);
        hprintln!(
            "instructions per MAC: {}.{:02}",
            per_mac_x100 / 100,
            per_mac_x100 % 100
        );
    }
    hprintln!("stack peak: {} bytes", peak);
    hprintln!("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Generates every digit, printing its checksum and cost. Returns the total, smallest and
/// largest instruction counts (zeros without a calibrated SysTick).
#[inline(never)]
fn generate_all(
    model: &Model<'_>,
    arena: &mut [u8],
    cache: &mut [u32],
    image: &mut Image,
    milli_per_tick: Option<u64>,
) -> (u64, u64, u64) {
    let macs = model.macs_per_digit().max(1);
    // With a weight cache (mps2-an386) the row-by-row layers' merged weights are
    // prepared once, here; the small boards pass none and merge per row.
    let generator = if cache.is_empty() {
        StreamGenerator::new(model, arena)
    } else {
        StreamGenerator::with_weight_cache(model, arena, cache)
    };
    let mut generator = match generator {
        Ok(generator) => generator,
        Err(e) => fail_with("generator rejects the arena", e),
    };
    let (mut total, mut min, mut max) = (0, u64::MAX, 0);
    for digit in 0..10u8 {
        let seed = BASE_SEED + u32::from(digit);
        let start = Stamp::now();
        let result = generator.generate(digit, seed, image);
        let elapsed = start.elapsed();
        if let Err(e) = result {
            fail_with("generation failed", e);
        }
        hprintln!(
            "digit {} seed {} fnv1a {:#010x}",
            digit,
            seed,
            fnv1a32(image)
        );
        let instructions = milli_per_tick.map_or(0, |m| elapsed * m / 1000);
        if milli_per_tick.is_some() {
            let per_mac_x100 = (instructions * 100 + macs / 2) / macs;
            hprintln!(
                "  instructions {} ({}.{:02} per MAC)",
                instructions,
                per_mac_x100 / 100,
                per_mac_x100 % 100
            );
        }
        if digit == PREVIEW_DIGIT {
            print_preview(digit, seed, image);
        }
        total += instructions;
        min = min.min(instructions);
        max = max.max(instructions);
    }
    (total, min, max)
}

/// Instructions of each layer run whole (`ops::run_layer`, the whole-image
/// `Generator`'s kernels, in their own 9,408-byte arena) for digit 0; for each
/// convolution whose prepared weights fit `cache`, also from prepared weights
/// (`ops::run_layer_prepared`, as the streaming generator runs its row-by-row layers;
/// preparing is not timed). Only on `mps2-an386`, whose RAM is large.
#[cfg(feature = "mps2-an386")]
#[inline(never)]
fn profile_layers(model: &Model<'_>, cache: &mut [u32], milli_per_tick: u64) {
    use generator_core::{INPUT_DIM, MAX_ARENA_BYTES, ops};
    let Some(arena) = cortex_m::singleton!(: [u8; MAX_ARENA_BYTES] = [0; MAX_ARENA_BYTES]) else {
        fail("profile arena already taken")
    };
    let x = match generator_core::float_input(0, BASE_SEED) {
        Ok(x) => x,
        Err(e) => fail_with("no input", e),
    };
    let mut input = [0u8; INPUT_DIM];
    let (scale, zp) = (model.input_scale(), model.input_zero_point());
    for (q, &v) in input.iter_mut().zip(&x) {
        *q = ops::activation::quantize_input(v, scale, zp) as u8;
    }
    let [even_len, _] = model.arena_regions();
    let (even, odd) = arena.split_at_mut(even_len);
    for (i, layer) in model.layers().iter().enumerate() {
        let (n_in, n_out) = (layer.input_len(), layer.output_len());
        let (src, dst): (&[u8], &mut [u8]) = match (i, i % 2) {
            (0, _) => (&input, &mut even[..]),
            (_, 0) => (&odd[..], &mut even[..]),
            _ => (&even[..], &mut odd[..]),
        };
        let start = Stamp::now();
        let result = ops::run_layer(layer, &src[..n_in], &mut dst[..n_out]);
        let instructions = start.elapsed() * milli_per_tick / 1000;
        if let Err(e) = result {
            fail_with("layer failed", e);
        }
        hprintln!(
            "layer {} {:?}: {} instructions, {} MACs",
            i,
            layer.shape(),
            instructions,
            layer.shape().macs()
        );
        let words = ops::conv::prepared_words(layer);
        if words == 0 || words > cache.len() {
            continue;
        }
        let prepared = &mut cache[..words];
        if let Err(e) = ops::conv::prepare(layer, prepared) {
            fail_with("prepare failed", e);
        }
        let start = Stamp::now();
        let result =
            ops::run_layer_prepared(layer, Some(prepared), &src[..n_in], &mut dst[..n_out]);
        let instructions = start.elapsed() * milli_per_tick / 1000;
        if let Err(e) = result {
            fail_with("layer failed", e);
        }
        hprintln!(
            "layer {} from prepared weights: {} instructions",
            i,
            instructions
        );
    }
}

/// Prints an image as ASCII art, two characters per pixel so it keeps its aspect.
fn print_preview(digit: u8, seed: u32, image: &Image) {
    const RAMP: &[u8; 10] = b" .:-=+*#%@";
    hprintln!("preview of digit {} (seed {}):", digit, seed);
    let mut line = [b' '; 2 * IMAGE_SIDE];
    for row in image.chunks_exact(IMAGE_SIDE) {
        for (cell, &level) in line.chunks_exact_mut(2).zip(row) {
            let c = RAMP[usize::from(level) * RAMP.len() / 256];
            cell.fill(c);
        }
        // The ramp is ASCII, so this never fails.
        hprintln!("|{}|", core::str::from_utf8(&line).unwrap_or("?"));
    }
}

/// Runs SysTick from the core clock over its full 24-bit range, counting wraps.
fn start_systick(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// A reading of SysTick: the wrap count and the (down-counting) current value.
#[derive(Clone, Copy)]
struct Stamp {
    wraps: u32,
    current: u32,
}

impl Stamp {
    fn now() -> Self {
        Self {
            wraps: WRAPS.load(Ordering::Relaxed),
            current: SYST::get_current(),
        }
    }

    /// Ticks from `self` to now, modulo the 2^24-tick period. Exact as long as the interval
    /// is shorter than one period (671 M instructions); the wrap count, kept by the SysTick
    /// exception, proves it is (one wrap may be legitimate, two cannot be).
    fn elapsed(self) -> u64 {
        let end = Self::now();
        if end.wraps.wrapping_sub(self.wraps) > 1 {
            fail("timed interval longer than one SysTick period");
        }
        u64::from(self.current.wrapping_sub(end.current) & RELOAD)
    }
}

/// Spins `iterations` times, two instructions per iteration (`subs`, `bne`).
#[inline(never)]
fn spin(iterations: u32) {
    // SAFETY: pure register arithmetic; touches no memory and not the stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) iterations => _,
            options(nomem, nostack),
        );
    }
}

/// Instructions per SysTick tick, times 1000, from loops of N and 2N iterations (their
/// difference is exactly 2N instructions, whatever the fixed overhead). `None` if SysTick
/// does not advance (boards whose QEMU model gives it no clock, e.g. `microbit`).
fn calibrate() -> Option<u64> {
    let timed = |iterations| {
        let start = Stamp::now();
        spin(iterations);
        start.elapsed()
    };
    let short = timed(CALIBRATION_ITERATIONS);
    let long = timed(2 * CALIBRATION_ITERATIONS);
    let instructions = 2 * u64::from(CALIBRATION_ITERATIONS);
    let delta = long.saturating_sub(short);
    hprintln!(
        "calibration: {} extra instructions took {} ticks",
        instructions,
        delta
    );
    if delta == 0 {
        hprintln!("calibration: SysTick does not advance on this board: no instruction counts");
        return None;
    }
    Some(instructions * 1000 / delta)
}

unsafe extern "C" {
    /// Top of the stack (cortex-m-rt's linker script: end of RAM).
    static _stack_start: u32;
    /// Lowest address the stack may grow to (end of .bss/.uninit).
    static _stack_end: u32;
}

/// Fills the unused stack below the caller with [`PAINT`]; returns the lowest painted
/// address.
#[inline(never)]
fn paint_stack() -> usize {
    let sp = cortex_m::register::msp::read() as usize;
    let floor = core::ptr::addr_of!(_stack_end) as usize;
    let low = sp.saturating_sub(PAINT_WINDOW).max(floor) & !3;
    // Leave this function's own frame and some slack alone.
    let high = (sp - 256) & !3;
    let mut address = low;
    while address < high {
        // SAFETY: [low, high) lies between the end of static RAM and below this function's
        // stack pointer: memory nothing else uses, word-aligned.
        unsafe { core::ptr::write_volatile(address as *mut u32, PAINT) };
        address += 4;
    }
    low
}

/// Deepest stack use since [`paint_stack`], in bytes from the top of RAM.
fn stack_peak(low: usize) -> usize {
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut address = low;
    // SAFETY: reads aligned words of RAM between the painted floor and the current stack.
    while unsafe { core::ptr::read_volatile(address as *const u32) } == PAINT {
        address += 4;
    }
    top - address
}

/// Reports a fatal error and exits QEMU with a failure status.
fn fail(message: &str) -> ! {
    hprintln!("error: {}", message);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// [`fail`] with a `generator-core` error.
fn fail_with(message: &str, error: generator_core::Error) -> ! {
    hprintln!("error: {}: {}", message, error);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
