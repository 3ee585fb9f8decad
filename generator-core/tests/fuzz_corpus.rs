//! Replays the committed fuzz inputs on stable: every file in `fuzz/seeds/` (valid
//! models the fuzzer starts from), `fuzz/found/` (inputs a fuzz run kept for new coverage)
//! and `fuzz/crashes/` (inputs that once failed) goes
//! through the loader and, when it loads, through `generate`, with the arena first
//! zeroed and then filled with 0xA5: the two images must be equal.
//!
//! The small seed models are written by the real encoder; regenerate them with
//! `UPDATE_SEEDS=1 cargo test -p generator-core --features std,alloc --release --test fuzz_corpus`.

mod common;

use std::path::{Path, PathBuf};

use generator_core::{Generator, Image, MAX_ARENA_BYTES, Model};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(name)
}

/// The files of a committed corpus directory, sorted (a missing directory is empty).
fn files(name: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir(name)) {
        Ok(entries) => entries
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths
}

/// Loads `bytes`; if that succeeds, generates every digit with a zeroed and with a
/// 0xA5-filled arena and checks the images agree. Returns whether the model loaded.
fn replay(path: &Path, bytes: &[u8]) -> bool {
    let Ok(model) = Model::from_bytes(bytes) else {
        return false;
    };
    for digit in 0..10u8 {
        let mut images = [[0u8; 784]; 2];
        for (fill, image) in [0x00u8, 0xA5].into_iter().zip(&mut images) {
            let mut arena = [fill; MAX_ARENA_BYTES];
            let mut generator = Generator::new(&model, &mut arena)
                .unwrap_or_else(|e| panic!("{}: accepted but {e}", path.display()));
            let img: &mut Image = image;
            generator
                .generate(digit, 1000 + u32::from(digit), img)
                .unwrap_or_else(|e| panic!("{}: accepted but {e}", path.display()));
        }
        assert_eq!(
            images[0],
            images[1],
            "{}: digit {digit} depends on the arena's old contents",
            path.display()
        );
    }
    true
}

#[test]
fn seeds_load_and_generate_independent_of_the_arena() {
    let seeds = files("seeds");
    assert!(seeds.len() >= 5, "seeds missing: {seeds:?}");
    for path in &seeds {
        let bytes = std::fs::read(path).expect("read seed");
        assert!(
            replay(path, &bytes),
            "{}: seed does not load",
            path.display()
        );
    }
}

#[test]
fn crash_files_never_panic() {
    // Whatever they are, each must give an error or a model that generates.
    for path in files("crashes") {
        let bytes = std::fs::read(&path).expect("read crash file");
        replay(&path, &bytes);
    }
}

/// Inputs the 10.5-million-execution run kept for reaching new code (none crashed): each
/// must give an error or a model that generates, as in that run.
#[test]
fn inputs_found_by_fuzzing_never_panic() {
    let found = files("found");
    assert!(found.len() >= 7, "the committed fuzz finds are present");
    for path in found {
        let bytes = std::fs::read(&path).expect("read fuzz find");
        replay(&path, &bytes);
    }
}

#[test]
fn the_default_model_is_a_seed() {
    let seed = std::fs::read(dir("seeds").join("default.dgen")).expect("default seed");
    assert_eq!(seed, generator_core::DEFAULT_MODEL);
}

/// The small seed models: one per kind of layer chain the kernels distinguish.
#[cfg(feature = "alloc")]
fn seed_models() -> Vec<(&'static str, Vec<u8>)> {
    use common::Rng;
    use generator_core::LayerShape::{self, Conv3x3, Linear};
    let conv = |in_ch, out_ch, in_h, in_w, upsample| Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        upsample,
    };
    let chain8 = {
        let mut v = vec![Linear {
            inputs: 42,
            outputs: 8,
        }];
        v.extend(std::iter::repeat_n(conv(2, 2, 2, 2, false), 6));
        v.push(Linear {
            inputs: 8,
            outputs: 784,
        });
        v
    };
    let specs: [(&str, Vec<LayerShape>); 4] = [
        (
            "linear2.dgen",
            vec![
                Linear {
                    inputs: 42,
                    outputs: 8,
                },
                Linear {
                    inputs: 8,
                    outputs: 784,
                },
            ],
        ),
        (
            "conv_fast_upsample.dgen",
            vec![
                Linear {
                    inputs: 42,
                    outputs: 98,
                },
                conv(2, 1, 7, 7, true),
                conv(1, 1, 14, 14, true),
            ],
        ),
        (
            "conv_generic.dgen",
            vec![
                Linear {
                    inputs: 42,
                    outputs: 256,
                },
                conv(64, 4, 1, 4, false),
                Linear {
                    inputs: 16,
                    outputs: 784,
                },
            ],
        ),
        ("chain8.dgen", chain8),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, shapes))| {
            let mut rng = Rng(i as u64 + 1);
            let layers = common::random_layers(&shapes, &mut rng);
            let lut = common::random_lut(&mut rng);
            (name, common::encode(&layers, &lut))
        })
        .collect()
}

#[cfg(feature = "alloc")]
#[test]
fn small_seeds_are_current() {
    let mut models = seed_models();
    models.push(("default.dgen", generator_core::DEFAULT_MODEL.to_vec()));
    for (name, bytes) in models {
        let path = dir("seeds").join(name);
        if std::env::var_os("UPDATE_SEEDS").is_some() {
            std::fs::create_dir_all(dir("seeds")).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).expect("committed seed");
        assert!(
            committed == bytes,
            "{name} is stale: rerun with UPDATE_SEEDS=1"
        );
    }
}
