//! The shipped int8 model (generator-core's DEFAULT_MODEL, run by the integer kernels) against
//! the float EMA generator it was quantized from (host-trainer's committed weights), scored by
//! the project's classifier on the same (digit, seed) pairs.

use std::path::Path;

use burn::prelude::*;
use generator_core::DEFAULT_MODEL;
use generator_quant::Calibration;
use host_trainer::checkpoint::load_generator;
use host_trainer::eval::{classify, default_classifier_path, eval_labels, load_classifier};
use host_trainer::infer::{generate_float, generate_int8, mean_abs_diff};
use host_trainer::model::GeneratorConfig;
use host_trainer::quantize;

const PER_CLASS: usize = 300;

fn accuracy(pred: &[u8], labels: &[u8]) -> f64 {
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

fn float_weights() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-trainer/assets/generator-ema.bin")
}

#[test]
fn shipped_int8_model_agrees_with_its_float_generator() {
    let device = Device::flex();
    let g = load_generator(&GeneratorConfig::new(), &float_weights(), &device).unwrap();
    let classifier = load_classifier(&default_classifier_path(), &device).unwrap();
    let (labels, seeds) = eval_labels(PER_CLASS, 500_000);

    let float_images = generate_float(&g, &labels, &seeds);
    let int8_images = generate_int8(DEFAULT_MODEL, &labels, &seeds).unwrap();

    let (pf, _) = classify(&classifier, &float_images);
    let (pq, _) = classify(&classifier, &int8_images);
    let (af, aq) = (accuracy(&pf, &labels), accuracy(&pq, &labels));
    let mae = mean_abs_diff(&float_images, &int8_images);
    eprintln!(
        "float {:.2}%, int8 {:.2}%, mean |diff| {mae:.2}/255",
        af * 100.0,
        aq * 100.0
    );
    assert!(aq >= 0.98, "int8 accuracy {aq}");
    assert!(aq >= af - 0.01, "int8 {aq} vs float {af}");
    assert!(mae <= 6.0, "mean abs pixel difference {mae}/255");
}

#[test]
fn shipped_model_is_the_quantization_of_the_committed_weights() {
    // Re-quantizing the committed float weights reproduces the shipped file byte for byte,
    // so the model in generator-core can always be rebuilt without retraining.
    let device = Device::flex();
    let g = load_generator(&GeneratorConfig::new(), &float_weights(), &device).unwrap();
    let dir = std::env::temp_dir().join(format!("requant-{}", std::process::id()));
    let bytes = quantize::export(&g, &Calibration::DEFAULT, &dir.join("m.dgen")).unwrap();
    assert_eq!(bytes, DEFAULT_MODEL);
}
