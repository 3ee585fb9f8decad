//! `firmware-sim`: generate digits as the firmware would and show them on a simulated panel.
//!
//! ```text
//! cargo run -p firmware-sim -- 3141592653 --display oled --dither bayer
//! ```
//!
//! Exit status: 0 on success, 2 on any bad input (with one `error: ...` line on stderr
//! that names the argument and what it accepts). `--help` prints the full usage.

use std::{
    ffi::OsString,
    fmt,
    io::{self, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{
    CommandFactory, Parser, ValueEnum,
    error::{ContextKind, ContextValue, ErrorKind},
};
use embedded_graphics::{
    geometry::{OriginDimensions, Size},
    pixelcolor::{BinaryColor, Gray8, GrayColor},
};
use embedded_graphics_simulator::{BinaryColorTheme, OutputSettingsBuilder, SimulatorDisplay};
use firmware_sim::{
    digits::{self, ParseError},
    dither::Dither,
    layout::Layout,
    preview, render,
    report::{self, Resources},
};
use generator_core::{Generator, IMAGE_PIXELS, IMAGE_SIDE, MAX_ARENA_BYTES, Model};

/// Width and height of the simulated monochrome OLED (an SSD1306 128x64).
const OLED_SIZE: Size = Size::new(128, 64);
/// Cell sides tried on the OLED, with their gaps: full-size digits, then halved ones.
const OLED_CELLS: [(u32, u32); 2] = [(28, 4), (14, 2)];
/// Gap between digits on the grey panel.
const GRAY_GAP: u32 = 4;
/// Widest preview in terminal columns before it is shrunk.
const PREVIEW_COLUMNS: u32 = 160;
/// Runs of one digit the host timing takes the median of.
const TIMING_RUNS: usize = 7;
/// Accepted `--count` (images per digit) and `--scale` (PNG pixels per display pixel).
const COUNT_RANGE: std::ops::RangeInclusive<i64> = 1..=16;
const SCALE_RANGE: std::ops::RangeInclusive<i64> = 1..=16;

/// Generates digits with the int8 generator exactly as the firmware does and draws them on
/// a simulated embedded display.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Digits to draw in a row, e.g. 3141592653 (default with --checksums: 0123456789).
    digits: Option<String>,

    /// Base seed: image k (row-major) uses seed + k.
    #[arg(long, default_value_t = 42, allow_negative_numbers = true)]
    seed: u32,

    /// Images per digit, drawn as rows.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(COUNT_RANGE))]
    count: u32,

    /// Model file written by host-trainer (default: the model shipped in generator-core).
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,

    /// Simulated panel.
    #[arg(long, value_enum, default_value_t = DisplayKind::Gray)]
    display: DisplayKind,

    /// Grey-to-monochrome conversion for --display oled.
    #[arg(long, value_enum, default_value_t = DitherArg::FloydSteinberg)]
    dither: DitherArg,

    /// Where to write the PNG (default: firmware-sim-<digits>.png in the current directory).
    #[arg(long, value_name = "PATH")]
    png: Option<PathBuf>,

    /// Output pixels per display pixel in the PNG.
    #[arg(long, default_value_t = 4, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(SCALE_RANGE))]
    scale: u32,

    /// Only print one checksum line per image, in the firmware's format, and exit.
    #[arg(long)]
    checksums: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DisplayKind {
    /// 128x64 monochrome OLED (SSD1306-like); up to 8 full-size or 32 half-size digits.
    Oled,
    /// 8-bit grey panel sized to fit the digits.
    Gray,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DitherArg {
    /// Level >= 128 is on.
    Threshold,
    /// 4x4 ordered (Bayer) dither.
    Bayer,
    /// Floyd-Steinberg error diffusion.
    FloydSteinberg,
}

impl From<DitherArg> for Dither {
    fn from(arg: DitherArg) -> Self {
        match arg {
            DitherArg::Threshold => Dither::Threshold,
            DitherArg::Bayer => Dither::Bayer,
            DitherArg::FloydSteinberg => Dither::FloydSteinberg,
        }
    }
}

/// Everything that ends the program with status 2; each prints as one line.
#[derive(Debug)]
enum CliError {
    Digits(ParseError),
    ModelRead(PathBuf, io::Error),
    Model(String, generator_core::Error),
    Generate(generator_core::Error),
    TooManyForOled(usize),
    Png(PathBuf, String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Digits(e) => write!(f, "{e}"),
            CliError::ModelRead(path, e) => write!(f, "model file {}: {e}", path.display()),
            CliError::Model(source, e) => write!(f, "model file {source}: {e}"),
            CliError::Generate(e) => write!(f, "generation failed: {e}"),
            CliError::TooManyForOled(n) => write!(
                f,
                "{n} images do not fit the 128x64 OLED (at most 32); use --display gray"
            ),
            CliError::Png(path, e) => write!(f, "cannot write PNG {}: {e}", path.display()),
        }
    }
}

/// What an argument accepts, for the one-line usage errors.
fn expected(arg: &str) -> String {
    let range =
        |r: &std::ops::RangeInclusive<i64>| format!("an integer in {}..={}", r.start(), r.end());
    match arg {
        "--seed" => format!("an integer in 0..={}", u32::MAX),
        "--count" => range(&COUNT_RANGE),
        "--scale" => range(&SCALE_RANGE),
        "--model" | "--png" => "a file path".to_owned(),
        "DIGITS" => "digits 0-9 in one word, e.g. 3141592653".to_owned(),
        _ => {
            let names: Vec<String> = Cli::command()
                .get_arguments()
                .find(|a| a.get_long().is_some_and(|l| arg == format!("--{l}")))
                .map(|a| {
                    a.get_possible_values()
                        .iter()
                        .map(|v| v.get_name().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            format!("one of {}", names.join(", "))
        }
    }
}

/// Every long option, for an unknown one.
fn options() -> String {
    let mut longs: Vec<String> = Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    longs.extend(["--help".to_owned(), "--version".to_owned()]);
    longs.join(", ")
}

/// The argument holding the first non-UTF-8 value: the option before it, or DIGITS.
fn non_utf8_argument() -> String {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let before = args
        .iter()
        .position(|a| a.to_str().is_none())
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| args[i].to_str());
    match before {
        Some(option) if option.starts_with("--") && option != "--checksums" => option.to_owned(),
        _ => "DIGITS".to_owned(),
    }
}

/// One line (without the `error: ` prefix) for a command-line parsing error: the
/// argument, the offending value and what is accepted. clap's own message carries a
/// usage block and tips over several lines.
fn usage_error(e: &clap::Error) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    // clap names an option with its value placeholder: `--count <COUNT>`.
    let arg = context(ContextKind::InvalidArg)
        .map(|a| {
            a.split(' ')
                .next()
                .unwrap_or(a)
                .trim_matches(['[', ']', '<', '>'])
        })
        .unwrap_or("an argument");
    let value = context(ContextKind::InvalidValue).unwrap_or("");
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation if value.is_empty() => {
            format!("missing value for {arg}: expected {}", expected(arg))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            format!(
                "invalid value '{value}' for {arg}: expected {}",
                expected(arg)
            )
        }
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            format!("unknown option '{arg}': expected one of {}", options())
        }
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues => format!(
            "unexpected argument '{}': expected {}",
            if value.is_empty() { arg } else { value },
            expected("DIGITS")
        ),
        ErrorKind::InvalidUtf8 => {
            let arg = non_utf8_argument();
            format!(
                "invalid value for {arg}: not UTF-8; expected {}",
                expected(&arg)
            )
        }
        _ => {
            // Any other kind: clap's first line, which names the argument.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            first.trim_start_matches("error: ").to_owned()
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            // The rich help and the version go to stdout with status 0, as clap does.
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                eprintln!("error: {}", usage_error(&e));
                return ExitCode::from(2);
            }
        },
    };
    match run(&cli) {
        Ok(text) => {
            // A closed pipe (e.g. `| head`) is not an error worth a panic.
            let _ = io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Keep it to one line whatever the underlying message holds.
            let message = e.to_string().replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Writes `path` atomically: `write` fills a temporary file beside it (same directory,
/// so the rename cannot cross file systems), which is flushed to disk and then renamed
/// over `path`. On any failure the temporary file is removed, so `path` is always either
/// untouched or the complete new file, never a partial one.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), CliError> {
    let fail = |e: String| CliError::Png(path.to_path_buf(), e);
    let name = path
        .file_name()
        .ok_or_else(|| fail("not a file name".into()))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = write(&tmp)
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if result.is_err() {
        // The temporary file may not exist (e.g. the directory does not): nothing to do.
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

/// Does the work and returns what to print on stdout.
fn run(cli: &Cli) -> Result<String, CliError> {
    let text = match (&cli.digits, cli.checksums) {
        (Some(text), _) => text.as_str(),
        (None, true) => "0123456789",
        (None, false) => "",
    };
    let digits = digits::parse_digits(text).map_err(CliError::Digits)?;

    let file;
    let (model, source, model_bytes) = match &cli.model {
        Some(path) => {
            file = std::fs::read(path).map_err(|e| CliError::ModelRead(path.clone(), e))?;
            let shown = path.display().to_string();
            let model = Model::from_bytes(&file).map_err(|e| CliError::Model(shown.clone(), e))?;
            (model, shown, file.len())
        }
        None => {
            let model = generator_core::default_model()
                .map_err(|e| CliError::Model("(shipped default)".into(), e))?;
            (
                model,
                "shipped default".to_string(),
                generator_core::DEFAULT_MODEL.len(),
            )
        }
    };
    if model.arena_bytes() > MAX_ARENA_BYTES {
        return Err(CliError::Model(
            source,
            generator_core::Error::ArenaTooSmall,
        ));
    }

    let rows = cli.count as usize;
    let images =
        digits::generate_grid(&model, &digits, rows, cli.seed).map_err(CliError::Generate)?;

    if cli.checksums {
        let mut out = String::new();
        for (k, image) in images.iter().enumerate() {
            let digit = digits[k % digits.len()];
            out.push_str(&digits::checksum_line(
                digit,
                digits::seed_for(cli.seed, k),
                image,
            ));
            out.push('\n');
        }
        return Ok(out);
    }

    let tiles = images.iter().map(|image| &image[..]);
    let side = IMAGE_SIDE as u32;
    let png = cli
        .png
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("firmware-sim-{text}.png")));
    let settings = OutputSettingsBuilder::new().scale(cli.scale);
    let (title, preview) = match cli.display {
        DisplayKind::Gray => {
            let layout = Layout::fitted(digits.len() as u32, cli.count, side, GRAY_GAP);
            let mut display = SimulatorDisplay::<Gray8>::new(layout.panel_size());
            // The simulator's draw target cannot fail.
            let Ok(()) = render::draw_gray(&mut display, &layout, side, tiles);
            let image = display.to_grayscale_output_image(&settings.build());
            write_atomically(&png, |tmp| image.save_png(tmp).map_err(|e| e.to_string()))?;
            let size = display.size();
            let step = preview::step_for(size.width, PREVIEW_COLUMNS);
            let title = format!("{}x{} grey panel", size.width, size.height);
            (
                title,
                preview::gray(size, step, |p| display.get_pixel(p).luma()),
            )
        }
        DisplayKind::Oled => {
            let layout = Layout::on_panel(OLED_SIZE, images.len() as u32, &OLED_CELLS)
                .ok_or(CliError::TooManyForOled(images.len()))?;
            let mut display = SimulatorDisplay::<BinaryColor>::new(OLED_SIZE);
            let Ok(()) = render::draw_binary(&mut display, &layout, side, tiles, cli.dither.into());
            let image =
                display.to_rgb_output_image(&settings.theme(BinaryColorTheme::OledWhite).build());
            write_atomically(&png, |tmp| image.save_png(tmp).map_err(|e| e.to_string()))?;
            let dither = cli
                .dither
                .to_possible_value()
                .map(|v| v.get_name().to_owned());
            let title = format!(
                "128x64 OLED, {} dither, {}-pixel digits",
                dither.unwrap_or_default(),
                layout.cell
            );
            (
                title,
                preview::binary(OLED_SIZE, |p| display.get_pixel(p).is_on()),
            )
        }
    };

    // Host timing of the firmware's path: one arena, one generator, one digit per call.
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut generator = Generator::new(&model, &mut arena).map_err(CliError::Generate)?;
    let mut image = [0u8; IMAGE_PIXELS];
    let mut resources = Resources::of(&model, source, model_bytes);
    resources.host_time_per_digit = report::median_time(TIMING_RUNS, || {
        generator.generate(digits[0], cli.seed, &mut image)
    })
    .map_err(CliError::Generate)?;
    resources.timing_runs = TIMING_RUNS;

    let seeds = if images.len() == 1 {
        format!("seed {}", cli.seed)
    } else {
        format!(
            "seeds {}..={}",
            cli.seed,
            digits::seed_for(cli.seed, images.len() - 1)
        )
    };
    Ok(format!(
        "digits {text} x{rows}, {seeds}, on a {title}\n{preview}wrote {}\n\n{resources}\n",
        png.display()
    ))
}
