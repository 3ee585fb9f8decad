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
use cortex_m_semihosting::debug;
use generator_core::fnv::fnv1a32;
use generator_core::{IMAGE_PIXELS, IMAGE_SIDE, Image, Model, StreamGenerator};

#[cfg(feature = "lm3s811evb")]
mod mem;
mod print;

use print::{Line, line};

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
#[cfg(not(feature = "lm3s811evb"))]
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

/// The interrupt part of the vector table on `lm3s811evb`: the LM3S811's 32 vectors (IRQ
/// 0-31), all at cortex-m-rt's `DefaultHandler`. Without the `device` feature cortex-m-rt
/// reserves the 240 an ARMv7-M core may have: 832 bytes more of the 64 KiB flash. No
/// interrupt is enabled; only SysTick (an exception) runs.
#[cfg(feature = "lm3s811evb")]
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];

#[cfg(feature = "lm3s811evb")]
unsafe extern "C" {
    /// cortex-m-rt's handler of unexpected interrupts (its linker script provides it).
    fn DefaultHandler();
}

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
    Line::new()
        .s("error: hard fault at pc ")
        .hex(frame.pc())
        .print();
    exit_failure()
}

/// Prints where the panic happened (no message: formatting it would link `core::fmt`)
/// and exits QEMU with a failure status.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    let mut text = Line::new();
    text.s("error: panic");
    if let Some(at) = info.location() {
        text.s(" at ").s(at.file()).s(":").u(at.line());
    }
    text.print();
    exit_failure()
}

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        fail("core peripherals already taken")
    };
    // Painted first, so that the peak covers the whole run: calibration, the model's
    // loading, the self-test and the generation.
    let painted = paint_stack();
    start_systick(&mut core.SYST);

    Line::new()
        .s("digits-m4: generator-core on a ")
        .s(BOARD)
        .print();
    let milli_per_tick = calibrate();
    if let Some(milli_per_tick) = milli_per_tick {
        Line::new()
            .s("calibration: ")
            .milli(milli_per_tick)
            .s(" instructions per SysTick tick (40.000 on mps2-an386)")
            .print();
    }

    let model = load_model();
    self_test();
    let macs = u32::try_from(model.macs_per_digit()).unwrap_or(u32::MAX);
    Line::new()
        .s("model: ")
        .u(generator_core::DEFAULT_MODEL.len() as u32)
        .s(" bytes (weights ")
        .u(model.weight_bytes() as u32)
        .s("), streaming arena ")
        .u(StreamGenerator::arena_bytes(&model) as u32)
        .s(" of ")
        .u(ARENA_BYTES as u32)
        .s(" bytes, ")
        .u(macs)
        .s(" MACs per digit")
        .print();
    #[cfg(feature = "mps2-an386")]
    Line::new()
        .s("weight cache: ")
        .u(StreamGenerator::weight_cache_words(&model) as u32)
        .s(" of ")
        .u(CACHE_WORDS as u32)
        .s(" words")
        .print();

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

    let (total, min, max) = generate_all(&model, arena, &mut cache[..], image, milli_per_tick);
    let peak = stack_peak(painted);
    #[cfg(feature = "mps2-an386")]
    if let Some(milli_per_tick) = milli_per_tick {
        profile_layers(&model, cache, milli_per_tick);
    }

    if milli_per_tick.is_some() {
        let mean = total / 10;
        Line::new()
            .s("instructions per digit: mean ")
            .u(mean)
            .s(" (min ")
            .u(min)
            .s(", max ")
            .u(max)
            .s(")")
            .print();
        Line::new()
            .s("instructions per MAC: ")
            .centi(ratio_x100(mean, macs))
            .print();
    }
    Line::new()
        .s("stack peak: ")
        .u(peak as u32)
        .s(" bytes")
        .print();
    line("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}

/// The shipped model, checked. Out of line, so that the decoder's temporaries leave the
/// stack before the generation starts (in `main`'s frame they took about 1.5 KB for the
/// whole run).
#[inline(never)]
fn load_model() -> Model<'static> {
    match generator_core::default_model() {
        Ok(model) => model,
        Err(e) => fail_with("shipped model does not load", e),
    }
}

/// The target's kernels (on the M4 the `asm!` loops) against their portable twins.
#[cfg(not(feature = "lm3s811evb"))]
#[inline(never)]
fn self_test() {
    let bad =
        generator_core::ops::self_test::kernel_self_test(u64::from(BASE_SEED), SELF_TEST_CASES);
    Line::new()
        .s("kernel self-test: ")
        .u(bad)
        .s(" of ")
        .u(SELF_TEST_CASES)
        .s(" random cases per kernel disagree")
        .print();
    if bad != 0 {
        fail("kernel self-test failed");
    }
}

/// None on `lm3s811evb`: it runs only the reference kernels (generator-core feature
/// `reference-only`), which the self-test's kernels are checked against.
#[cfg(feature = "lm3s811evb")]
fn self_test() {
    line("kernel self-test: none (reference kernels only)");
}

/// `100 n / d`, rounded to nearest, without 64-bit arithmetic (`d > 0`, else 0).
fn ratio_x100(n: u32, d: u32) -> u32 {
    if d == 0 {
        return 0;
    }
    // `n % d < d`, so `100 (n % d) + d / 2` fits a `u32` for any `d` below 42 M.
    (n / d) * 100 + ((n % d) * 100 + d / 2) / d
}

/// Instructions in `ticks` SysTick ticks at `milli_per_tick / 1000` instructions per
/// tick, rounded down, in 32-bit arithmetic (a 64-bit division would link 1 KB of
/// library code): `ticks * m / 1000` with `ticks = 1000 hi + lo`, `m = 1000 a + b` is
/// `ticks a + hi b + lo b / 1000`.
fn instructions(ticks: u32, milli_per_tick: u32) -> u32 {
    let (a, b) = (milli_per_tick / 1000, milli_per_tick % 1000);
    let (hi, lo) = (ticks / 1000, ticks % 1000);
    ticks
        .saturating_mul(a)
        .saturating_add(hi * b)
        .saturating_add(lo * b / 1000)
}

/// Generates every digit, printing its checksum and cost. Returns the total, smallest and
/// largest instruction counts (zeros without a calibrated SysTick).
#[inline(never)]
fn generate_all(
    model: &Model<'_>,
    arena: &mut [u8],
    cache: &mut [u32],
    image: &mut Image,
    milli_per_tick: Option<u32>,
) -> (u32, u32, u32) {
    let macs = u32::try_from(model.macs_per_digit()).unwrap_or(u32::MAX);
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
    let (mut total, mut min, mut max) = (0u32, u32::MAX, 0);
    for digit in 0..10u8 {
        let seed = BASE_SEED + u32::from(digit);
        let start = Stamp::now();
        let result = generator.generate(digit, seed, image);
        let elapsed = start.elapsed();
        if let Err(e) = result {
            fail_with("generation failed", e);
        }
        Line::new()
            .s("digit ")
            .u(u32::from(digit))
            .s(" seed ")
            .u(seed)
            .s(" fnv1a ")
            .hex(fnv1a32(image))
            .print();
        let instructions = milli_per_tick.map_or(0, |m| instructions(elapsed, m));
        if milli_per_tick.is_some() {
            Line::new()
                .s("  instructions ")
                .u(instructions)
                .s(" (")
                .centi(ratio_x100(instructions, macs))
                .s(" per MAC)")
                .print();
        }
        if digit == PREVIEW_DIGIT {
            print_preview(digit, seed, image);
        }
        total = total.saturating_add(instructions);
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
fn profile_layers(model: &Model<'_>, cache: &mut [u32], milli_per_tick: u32) {
    use generator_core::{INPUT_DIM, LayerShape, MAX_ARENA_BYTES, ops};
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
        let count = instructions(start.elapsed(), milli_per_tick);
        if let Err(e) = result {
            fail_with("layer failed", e);
        }
        let mut text = Line::new();
        text.s("layer ").u(i as u32).s(" ");
        match layer.shape() {
            LayerShape::Linear { inputs, outputs } => {
                text.s("linear ")
                    .u(inputs.into())
                    .s(" -> ")
                    .u(outputs.into());
            }
            LayerShape::Conv3x3 {
                in_ch,
                out_ch,
                in_h,
                in_w,
                upsample,
            } => {
                text.s(if upsample { "up + conv " } else { "conv " })
                    .u(in_ch.into())
                    .s(" -> ")
                    .u(out_ch.into())
                    .s(" on ")
                    .u(in_h.into())
                    .s("x")
                    .u(in_w.into());
            }
        }
        text.s(": ")
            .u(count)
            .s(" instructions, ")
            .u(layer.shape().macs() as u32)
            .s(" MACs")
            .print();
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
        let count = instructions(start.elapsed(), milli_per_tick);
        if let Err(e) = result {
            fail_with("layer failed", e);
        }
        Line::new()
            .s("layer ")
            .u(i as u32)
            .s(" from prepared weights: ")
            .u(count)
            .s(" instructions")
            .print();
    }
}

/// Prints an image as ASCII art, two characters per pixel so it keeps its aspect.
fn print_preview(digit: u8, seed: u32, image: &Image) {
    const RAMP: &[u8; 10] = b" .:-=+*#%@";
    Line::new()
        .s("preview of digit ")
        .u(u32::from(digit))
        .s(" (seed ")
        .u(seed)
        .s("):")
        .print();
    for row in image.chunks_exact(IMAGE_SIDE) {
        let mut text = Line::new();
        text.s("|");
        for &level in row {
            let c = RAMP[usize::from(level) * RAMP.len() / 256];
            text.bytes(&[c, c]);
        }
        text.s("|").print();
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
    fn elapsed(self) -> u32 {
        let end = Self::now();
        if end.wraps.wrapping_sub(self.wraps) > 1 {
            fail("timed interval longer than one SysTick period");
        }
        self.current.wrapping_sub(end.current) & RELOAD
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
/// does not advance (boards whose QEMU model gives it no clock).
fn calibrate() -> Option<u32> {
    let timed = |iterations| {
        let start = Stamp::now();
        spin(iterations);
        start.elapsed()
    };
    let short = timed(CALIBRATION_ITERATIONS);
    let long = timed(2 * CALIBRATION_ITERATIONS);
    let instructions = 2 * CALIBRATION_ITERATIONS;
    let delta = long.saturating_sub(short);
    Line::new()
        .s("calibration: ")
        .u(instructions)
        .s(" extra instructions took ")
        .u(delta)
        .s(" ticks")
        .print();
    if delta == 0 {
        line("calibration: SysTick does not advance on this board: no instruction counts");
        return None;
    }
    // 2 M instructions times 1000 fits a `u32`.
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

/// Exits QEMU with a failure status.
fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Reports a fatal error and exits QEMU with a failure status.
fn fail(message: &str) -> ! {
    Line::new().s("error: ").s(message).print();
    exit_failure()
}

/// [`fail`] with a `generator-core` error.
fn fail_with(message: &str, error: generator_core::Error) -> ! {
    Line::new()
        .s("error: ")
        .s(message)
        .s(": ")
        .s(error.as_str())
        .print();
    exit_failure()
}
