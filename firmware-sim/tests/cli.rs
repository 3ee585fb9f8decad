//! Runs the built `firmware-sim` binary: one success per panel, the checksum mode against
//! generator-core computed here, and every bad input (exit status 2, one stderr line).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use generator_core::{DEFAULT_MODEL, Generator, IMAGE_PIXELS, MAX_ARENA_BYTES, Model};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
        .args(args)
        .output()
        .expect("run firmware-sim")
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("firmware-sim-cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit status 2, nothing on stdout, exactly one `error: ...` line on stderr (returned).
fn assert_rejected(output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {err}");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(err.starts_with("error: "), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(!err.contains("panicked"), "{err:?}");
    err
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).expect("PNG written");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
}

#[test]
fn draws_one_digit_on_the_grey_panel() {
    let dir = scratch("grey");
    let png = dir.join("four.png");
    let output = run(&["4", "--png", png.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(
        out.starts_with("digits 4 x1, seed 42, on a 32x32 grey panel\n"),
        "{out}"
    );
    for needle in [
        "resources (shipped default model)",
        "flash",
        "arena",
        "stack",
        "per digit",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in {out}");
    }
    // 32 pixel rows, two per preview line.
    let preview_lines = out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("wrote "))
        .count();
    assert_eq!(preview_lines, 16, "{out}");
    assert_png(&png);
}

#[test]
fn draws_pi_on_the_oled_with_every_dither() {
    let dir = scratch("oled");
    for dither in ["threshold", "bayer", "floyd-steinberg"] {
        let png = dir.join(format!("pi-{dither}.png"));
        let output = run(&[
            "3141592653",
            "--display",
            "oled",
            "--dither",
            dither,
            "--png",
            png.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{dither}: {}", stderr(&output));
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(out.contains("128x64 OLED"), "{out}");
        assert_png(&png);
    }
}

#[test]
fn checksums_match_generator_core() {
    let output = run(&["--checksums", "--seed", "7", "--count", "2", "90"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let model = Model::from_bytes(DEFAULT_MODEL).expect("shipped model loads");
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut generator = Generator::new(&model, &mut arena).expect("arena fits");
    let mut image = [0u8; IMAGE_PIXELS];
    let mut expected = String::new();
    // Row-major over rows of "90": image k has seed 7 + k.
    for (k, digit) in [9u8, 0, 9, 0].into_iter().enumerate() {
        let seed = 7 + k as u32;
        generator
            .generate(digit, seed, &mut image)
            .expect("generates");
        expected.push_str(&firmware_sim::digits::checksum_line(digit, seed, &image));
        expected.push('\n');
    }
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}

#[test]
fn rejects_a_non_digit() {
    let err = assert_rejected(&run(&["31a4"]));
    assert!(err.contains("'a' at position 2 is not a digit"), "{err}");
}

#[test]
fn rejects_an_empty_list() {
    let err = assert_rejected(&run(&[""]));
    assert!(err.contains("no digits given"), "{err}");
    assert_rejected(&run(&[]));
}

#[test]
fn rejects_a_missing_model_file() {
    let path = scratch("missing").join("absent.dgen");
    let err = assert_rejected(&run(&["4", "--model", path.to_str().unwrap()]));
    assert!(
        err.starts_with(&format!("error: model file {}: ", path.display())),
        "{err}"
    );
}

#[test]
fn rejects_corrupt_model_files_naming_the_loader_error() {
    let dir = scratch("corrupt");
    let mut flipped = DEFAULT_MODEL.to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let cases = [
        ("flipped.dgen", flipped),
        (
            "truncated.dgen",
            DEFAULT_MODEL[..DEFAULT_MODEL.len() / 3].to_vec(),
        ),
        ("text.dgen", b"not a model at all\n".to_vec()),
        ("empty.dgen", Vec::new()),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).expect("write model file");
        let loader_error = Model::from_bytes(&bytes).expect_err("corrupt model must not load");
        let err = assert_rejected(&run(&["4", "--model", path.to_str().unwrap()]));
        assert_eq!(
            err,
            format!("error: model file {}: {loader_error}\n", path.display())
        );
    }
}

/// A model file with a correct CRC whose middle conv has `out_ch` output channels on
/// the generic conv path (linear 42 -> 1x4x64, conv 64 -> `out_ch`, linear -> 784).
fn wide_conv_model(out_ch: u16) -> Vec<u8> {
    use generator_core::LayerShape;
    use generator_core::build::{QuantizedLayer, QuantizedModel};
    let layer = |shape: LayerShape| {
        let ch = shape.channels() as usize;
        QuantizedLayer {
            shape,
            relu: false,
            in_scale: 1.0,
            in_zero_point: 0,
            out_scale: 1.0,
            out_zero_point: 0,
            weights: vec![1; ch * shape.fan_in() as usize],
            weight_scales: vec![1.0; ch],
            bias: vec![0; ch],
            multiplier: vec![1 << 30; ch],
            shift: vec![40; ch],
        }
    };
    QuantizedModel {
        layers: vec![
            layer(LayerShape::Linear {
                inputs: 42,
                outputs: 256,
            }),
            layer(LayerShape::Conv3x3 {
                in_ch: 64,
                out_ch,
                in_h: 1,
                in_w: 4,
                upsample: false,
            }),
            layer(LayerShape::Linear {
                inputs: 4 * out_ch,
                outputs: 784,
            }),
        ],
        output_lut: std::array::from_fn(|i| i as u8),
    }
    .to_bytes()
}

#[test]
fn rejects_a_conv_wider_than_64_output_channels() {
    let dir = scratch("wide-conv");
    // The same file with 64 channels is fine (so only the width is wrong below).
    let ok = dir.join("out64.dgen");
    std::fs::write(&ok, wide_conv_model(64)).expect("write model file");
    let png = dir.join("ok.png");
    let output = run(&[
        "4",
        "--model",
        ok.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_png(&png);
    for out_ch in [65, 67, 68, 100] {
        let path = dir.join(format!("out{out_ch}.dgen"));
        std::fs::write(&path, wide_conv_model(out_ch)).expect("write model file");
        let png = dir.join(format!("out{out_ch}.png"));
        let err = assert_rejected(&run(&[
            "4",
            "--model",
            path.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ]));
        assert_eq!(
            err,
            format!("error: model file {}: malformed model\n", path.display()),
            "out_ch {out_ch}"
        );
        assert!(!png.exists(), "no PNG for a rejected model");
    }
}

#[test]
fn rejects_an_unwritable_png_path() {
    let dir = scratch("unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, b"").expect("write file");
    // A path below a regular file cannot be created, not even by root.
    let png = file.join("out.png");
    let err = assert_rejected(&run(&["4", "--png", png.to_str().unwrap()]));
    assert!(err.contains("cannot write PNG"), "{err}");
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read scratch dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Runs firmware-sim limited to files of 1 KiB at most (`ulimit -f 2`, in 512-byte
/// blocks) with SIGXFSZ ignored, so a write past the limit fails with EFBIG, as on a
/// full disk, after a partial write.
#[cfg(unix)]
fn run_with_small_file_limit(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 2 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_firmware-sim"))
        .args(args)
        .output()
        .expect("run firmware-sim under sh")
}

#[cfg(unix)]
#[test]
fn a_failed_png_write_leaves_the_old_file_and_no_partial_one() {
    let dir = scratch("atomic-png");
    let png = dir.join("pi.png");
    let args = |png: &Path| {
        [
            "3141592653",
            "--count",
            "4",
            "--scale",
            "16",
            "--png",
            png.to_str().unwrap(),
        ]
        .map(String::from)
    };
    // The PNG is far larger than the limit, so the write fails part way.
    let reference = dir.join("reference.png");
    let output = run(&args(&reference).each_ref().map(String::as_str));
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(std::fs::metadata(&reference).unwrap().len() > 16 * 1024);
    std::fs::remove_file(&reference).unwrap();

    std::fs::write(&png, b"old contents").unwrap();
    let err = assert_rejected(&run_with_small_file_limit(
        &args(&png).each_ref().map(String::as_str),
    ));
    assert!(
        err.starts_with(&format!("error: cannot write PNG {}: ", png.display())),
        "{err}"
    );
    let left = std::fs::read(&png).unwrap();
    assert!(
        left == b"old contents",
        "the old file was replaced by {} bytes of a partial write",
        left.len()
    );
    assert_eq!(listing(&dir), ["pi.png"], "no temporary file left behind");

    // A directory that does not exist: an error, and nothing created anywhere.
    let missing = dir.join("missing").join("x.png");
    let err = assert_rejected(&run(&args(&missing).each_ref().map(String::as_str)));
    assert!(err.contains("cannot write PNG"), "{err}");
    assert_eq!(listing(&dir), ["pi.png"]);

    // Success replaces the old file with a complete PNG and leaves nothing else.
    let output = run(&args(&png).each_ref().map(String::as_str));
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_png(&png);
    assert_eq!(listing(&dir), ["pi.png"]);
}

#[test]
fn rejects_more_digits_than_the_oled_holds() {
    let dir = scratch("too-many");
    let png = dir.join("x.png");
    let digits = "0123456789".repeat(4);
    let err = assert_rejected(&run(&[
        &digits,
        "--display",
        "oled",
        "--png",
        png.to_str().unwrap(),
    ]));
    assert!(err.contains("do not fit"), "{err}");
}

/// Runs firmware-sim in `dir` (so a default-named PNG would land there).
fn run_in<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run firmware-sim")
}

#[test]
fn usage_errors_are_one_line_naming_the_flag_and_the_accepted_values() {
    let dir = scratch("usage");
    let options = "--seed, --count, --model, --display, --dither, --png, --scale, \
                   --checksums, --help, --version";
    let cases: [(&[&str], String); 12] = [
        (
            &["4", "--count", "0"],
            "invalid value '0' for --count: expected an integer in 1..=16".into(),
        ),
        (
            &["4", "--count", "17"],
            "invalid value '17' for --count: expected an integer in 1..=16".into(),
        ),
        (
            &["4", "--seed", "-1"],
            "invalid value '-1' for --seed: expected an integer in 0..=4294967295".into(),
        ),
        (
            &["4", "--seed", "4294967296"],
            "invalid value '4294967296' for --seed: expected an integer in 0..=4294967295".into(),
        ),
        (
            &["4", "--display", "lcd"],
            "invalid value 'lcd' for --display: expected one of oled, gray".into(),
        ),
        (
            &["4", "--dither", "bogus"],
            "invalid value 'bogus' for --dither: expected one of threshold, bayer, \
             floyd-steinberg"
                .into(),
        ),
        (
            &["4", "--scale", "0"],
            "invalid value '0' for --scale: expected an integer in 1..=16".into(),
        ),
        (
            &["4", "--scale=x"],
            "invalid value 'x' for --scale: expected an integer in 1..=16".into(),
        ),
        (
            &["4", "--count"],
            "missing value for --count: expected an integer in 1..=16".into(),
        ),
        (
            &["4", "--bogus"],
            format!("unknown option '--bogus': expected one of {options}"),
        ),
        (
            &["4", "5"],
            "unexpected argument '5': expected digits 0-9 in one word, e.g. 3141592653".into(),
        ),
        (
            &["31a4"],
            "'a' at position 2 is not a digit 0-9 (expected e.g. 3141592653)".into(),
        ),
    ];
    for (args, message) in cases {
        let err = assert_rejected(&run_in(&dir, args));
        assert_eq!(err, format!("error: {message}\n"), "{args:?}");
        assert_eq!(listing(&dir), Vec::<String>::new(), "{args:?} left files");
    }
}

#[cfg(unix)]
#[test]
fn non_utf8_digits_are_one_line() {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt};
    let dir = scratch("non-utf8");
    let err = assert_rejected(&run_in(&dir, &[OsStr::from_bytes(b"4\xff")]));
    assert_eq!(
        err,
        "error: invalid value for DIGITS: not UTF-8; expected digits 0-9 in one word, \
         e.g. 3141592653\n"
    );
    assert_eq!(listing(&dir), Vec::<String>::new());
}

#[test]
fn help_stays_rich() {
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("Usage: firmware-sim [OPTIONS] [DIGITS]"),
        "{out}"
    );
    for needle in [
        "--display <DISPLAY>",
        "Possible values",
        "floyd-steinberg",
        "--scale",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in {out}");
    }
    assert!(out.lines().count() > 20, "{out}");
}
