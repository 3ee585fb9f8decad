//! The project's MNIST classifier (training and loading) and the generator metrics built on
//! it: per-class accuracy, Frechet distance of penultimate features, intra-class diversity.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::Serialize;

use generator_core::{IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES, pixel_to_signed_unit};

use crate::checkpoint::{load_weights, seal_weights};
use crate::data::Mnist;
use crate::fsutil::write_atomic;
use crate::model::{Classifier, FEATURES};
use crate::rng::Rng;
use crate::tensor::{image_batch, label_tensor, record_bytes, to_vec_f32};
use crate::two_sample::{TwoSample, TwoSampleConfig, two_sample_test};

/// Where the committed classifier weights live.
pub fn default_classifier_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/classifier.bin")
}

/// Loads the classifier (plain device, inference mode).
pub fn load_classifier(path: &Path, device: &Device) -> anyhow::Result<Classifier> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading classifier weights {} (train them with `host-trainer classifier`)",
            path.display()
        )
    })?;
    let model = load_weights(Classifier::new(device), &bytes, path, "classifier")?;
    Ok(model.valid())
}

/// Trains the classifier with Adam; returns it with its test accuracy.
pub fn train_classifier(
    train: &Mnist,
    test: &Mnist,
    epochs: usize,
    seed: u64,
    device: &Device,
) -> anyhow::Result<(Classifier, f64)> {
    device.seed(seed);
    let ad = device.clone().autodiff();
    let mut model = Classifier::new(&ad);
    let mut optim = AdamConfig::new().init();
    let mut rng = Rng::new(seed);
    let pixels = train.signed_pixels();
    let batch = 128;
    let steps = train.len() / batch;
    let bar = ProgressBar::new((epochs * steps) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
            .expect("valid template"),
    );
    for epoch in 0..epochs {
        // Step decay: 1e-3, then 3e-4, then 1e-4 for the last epochs.
        let lr = match epoch * 3 / epochs.max(1) {
            0 => 1e-3,
            1 => 3e-4,
            _ => 1e-4,
        };
        let perm = rng.permutation(train.len());
        for s in 0..steps {
            let idx = &perm[s * batch..(s + 1) * batch];
            let labels: Vec<u8> = idx.iter().map(|&i| train.labels[i]).collect();
            let x = shift_augment(image_batch(&pixels, idx, &ad), &mut rng);
            let logits = model.forward(x);
            let loss = burn::nn::loss::CrossEntropyLossConfig::new()
                .init(&ad)
                .forward(logits, label_tensor(&labels, &ad));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            bar.inc(1);
            if s % 50 == 0 {
                bar.set_message(format!(
                    "epoch {} loss {:.4}",
                    epoch + 1,
                    to_vec_f32(loss.detach())[0]
                ));
            }
        }
    }
    bar.finish();
    let model = model.valid();
    let (pred, _) = classify(&model, &test.images);
    let acc = pred
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| p == l)
        .count() as f64
        / test.len() as f64;
    Ok((model, acc))
}

/// Random translation by up to one pixel (a cheap, label-preserving augmentation).
fn shift_augment(x: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
    let dx = rng.below(3);
    let dy = rng.below(3);
    let padded = x.pad(
        [(0, 0), (0, 0), (1, 1), (1, 1)],
        burn::tensor::ops::PadMode::Constant(-1.0),
    );
    padded.slice(s![.., .., dy..dy + IMAGE_SIDE, dx..dx + IMAGE_SIDE])
}

/// Saves classifier weights atomically.
pub fn save_classifier(model: &Classifier, path: &Path) -> anyhow::Result<()> {
    write_atomic(path, &seal_weights(&record_bytes(model)?))
}

/// Predicted digits and penultimate features for u8 images (`IMAGE_PIXELS` each).
pub fn classify(model: &Classifier, images: &[u8]) -> (Vec<u8>, Vec<f32>) {
    let device = model_device(model);
    let n = images.len() / IMAGE_PIXELS;
    let signed: Vec<f32> = images.iter().map(|&p| pixel_to_signed_unit(p)).collect();
    let mut preds = Vec::with_capacity(n);
    let mut feats = Vec::with_capacity(n * FEATURES);
    for start in (0..n).step_by(500) {
        let idx: Vec<usize> = (start..(start + 500).min(n)).collect();
        let f = model.features(image_batch(&signed, &idx, &device));
        let logits = to_vec_f32(model.head(f.clone()));
        feats.extend(to_vec_f32(f));
        for row in logits.chunks(NUM_CLASSES) {
            let best = (0..NUM_CLASSES)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            preds.push(best as u8);
        }
    }
    (preds, feats)
}

fn model_device(model: &Classifier) -> Device {
    let mut dev = None;
    struct Dev<'a>(&'a mut Option<Device>);
    impl burn::module::ModuleVisitor for Dev<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            if self.0.is_none() {
                *self.0 = Some(p.val().device());
            }
        }
    }
    model.visit(&mut Dev(&mut dev));
    dev.expect("classifier has parameters")
}

/// Mean and covariance of feature rows.
fn moments(feats: &[f32], dim: usize) -> (DVector<f64>, DMatrix<f64>) {
    let n = feats.len() / dim;
    let x = DMatrix::from_row_iterator(n, dim, feats.iter().map(|&v| v as f64));
    let mean = x.row_mean().transpose();
    let centered = DMatrix::from_fn(n, dim, |i, j| x[(i, j)] - mean[j]);
    let cov = centered.transpose() * &centered / (n as f64 - 1.0);
    (mean, cov)
}

fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new((m + m.transpose()) * 0.5);
    let d = DMatrix::from_diagonal(&e.eigenvalues.map(|v| v.max(0.0).sqrt()));
    &e.eigenvectors * d * e.eigenvectors.transpose()
}

/// Frechet distance between two feature sets (rows of `dim` values).
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let (m1, c1) = moments(a, dim);
    let (m2, c2) = moments(b, dim);
    let s1 = sqrt_psd(&c1);
    let inner = &s1 * &c2 * &s1;
    let tr_sqrt: f64 = SymmetricEigen::new((&inner + inner.transpose()) * 0.5)
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    (m1 - m2).norm_squared() + c1.trace() + c2.trace() - 2.0 * tr_sqrt
}

/// Mean pairwise Euclidean distance (pixels in `[0, 1]`) within each class, using at most
/// `per_class` images of each class.
pub fn diversity(images: &[u8], labels: &[u8], per_class: usize) -> [f64; NUM_CLASSES] {
    let mut out = [0.0; NUM_CLASSES];
    for (c, slot) in out.iter_mut().enumerate() {
        let members: Vec<&[u8]> = labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l as usize == c)
            .map(|(i, _)| &images[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS])
            .take(per_class)
            .collect();
        let (mut sum, mut pairs) = (0.0, 0usize);
        for i in 0..members.len() {
            for j in i + 1..members.len() {
                let d2: f64 = members[i]
                    .iter()
                    .zip(members[j])
                    .map(|(&a, &b)| {
                        let d = (a as f64 - b as f64) / 255.0;
                        d * d
                    })
                    .sum();
                sum += d2.sqrt();
                pairs += 1;
            }
        }
        *slot = if pairs > 0 { sum / pairs as f64 } else { 0.0 };
    }
    out
}

/// Figures for one set of labelled images.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// What was scored.
    pub name: String,
    /// Number of images.
    pub images: usize,
    /// Classifier accuracy per class (fraction).
    pub accuracy_per_class: [f64; NUM_CLASSES],
    /// Overall accuracy (fraction).
    pub accuracy: f64,
    /// Frechet distance of classifier features to the real test set.
    pub fid: f64,
    /// Mean intra-class pairwise pixel distance, per class.
    pub diversity_per_class: [f64; NUM_CLASSES],
    /// Mean intra-class diversity relative to the real test set's (1.0 = as diverse).
    pub diversity_ratio: f64,
    /// Classifier two-sample test against real test digits with the same digit counts (0.5:
    /// indistinguishable; see [`crate::two_sample`]); none for the real test set itself.
    pub two_sample: Option<TwoSample>,
}

impl Metrics {
    /// Worst class accuracy.
    pub fn worst(&self) -> (usize, f64) {
        self.accuracy_per_class
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    }

    /// A short human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} ({} images): accuracy {:.2}%, worst digit {} {:.2}%, FID {:.3}, diversity {:.3} ({:.2}x real)",
            self.name,
            self.images,
            self.accuracy * 100.0,
            self.worst().0,
            self.worst().1 * 100.0,
            self.fid,
            self.diversity_per_class.iter().sum::<f64>() / NUM_CLASSES as f64,
            self.diversity_ratio,
        );
        if let Some(t) = &self.two_sample {
            s.push_str(&format!(
                ", two-sample {:.3} (real {:.3}, generated {:.3})",
                t.accuracy, t.accuracy_real, t.accuracy_generated
            ));
        }
        s.push_str("\n  per digit:");
        for a in self.accuracy_per_class {
            s.push_str(&format!(" {:.1}", a * 100.0));
        }
        s
    }
}

/// The real test set, prepared once for scoring generators against it.
#[derive(Debug)]
pub struct Reference {
    classifier: Classifier,
    /// The real test digits, for the two-sample test.
    test: Mnist,
    features: Vec<f32>,
    diversity: [f64; NUM_CLASSES],
    /// Scores of the real test set itself (FID against 10k training images).
    pub floor: Metrics,
}

impl Reference {
    /// Scores the real test set and keeps its features.
    pub fn new(classifier: Classifier, train: &Mnist, test: &Mnist) -> Self {
        let (_, features) = classify(&classifier, &test.images);
        let diversity = diversity(&test.images, &test.labels, 300);
        let sub = train.take(10_000);
        let mut reference = Self {
            classifier,
            test: test.take(test.len()),
            features,
            diversity,
            floor: empty_metrics(),
        };
        let mut floor = reference.figures("real MNIST test set", &test.images, &test.labels);
        let (_, train_feats) = classify(&reference.classifier, &sub.images);
        floor.fid = frechet_distance(&train_feats, &reference.features, FEATURES);
        reference.floor = floor;
        reference
    }

    /// Scores labelled generated images (`labels[i]` = the digit that was asked for), the
    /// two-sample test included.
    pub fn score(&self, name: &str, images: &[u8], labels: &[u8]) -> anyhow::Result<Metrics> {
        self.score_with(name, images, labels, &TwoSampleConfig::new())
    }

    /// [`score`](Self::score) with another two-sample critic (more passes, wider, another
    /// seed), to check that the protocol's critic is strong enough.
    pub fn score_with(
        &self,
        name: &str,
        images: &[u8],
        labels: &[u8],
        config: &TwoSampleConfig,
    ) -> anyhow::Result<Metrics> {
        let mut m = self.figures(name, images, labels);
        let (real, generated) = matched_by_digit(&self.test, images, labels);
        let device = self.classifier.device();
        m.two_sample = Some(
            two_sample_test(&real, &generated, config, &device)
                .with_context(|| format!("two-sample test of {name}"))?,
        );
        Ok(m)
    }

    /// Every figure but the two-sample test (which trains a classifier, about half a minute).
    pub fn figures(&self, name: &str, images: &[u8], labels: &[u8]) -> Metrics {
        let (pred, feats) = classify(&self.classifier, images);
        let mut right = [0usize; NUM_CLASSES];
        let mut total = [0usize; NUM_CLASSES];
        for (p, &l) in pred.iter().zip(labels) {
            total[l as usize] += 1;
            right[l as usize] += (*p == l) as usize;
        }
        let accuracy_per_class = std::array::from_fn(|c| right[c] as f64 / total[c].max(1) as f64);
        let diversity_per_class = diversity(images, labels, 300);
        let ratio = diversity_per_class.iter().sum::<f64>() / self.diversity.iter().sum::<f64>();
        Metrics {
            name: name.to_string(),
            images: labels.len(),
            accuracy_per_class,
            accuracy: right.iter().sum::<usize>() as f64 / labels.len().max(1) as f64,
            fid: frechet_distance(&feats, &self.features, FEATURES),
            diversity_per_class,
            diversity_ratio: ratio,
            two_sample: None,
        }
    }
}

/// Real test digits and generated digits with the same count of each digit: for each digit,
/// the first `k` of each kind, `k` the smaller of the two counts. A two-sample test on these
/// cannot tell the sets apart by how often each digit occurs.
pub fn matched_by_digit(test: &Mnist, images: &[u8], labels: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let of_digit = |labels: &[u8], d: usize| -> Vec<usize> {
        (0..labels.len())
            .filter(|&i| labels[i] as usize == d)
            .collect()
    };
    let (mut real, mut generated) = (Vec::new(), Vec::new());
    for d in 0..NUM_CLASSES {
        let (r, g) = (of_digit(&test.labels, d), of_digit(labels, d));
        for (&i, &j) in r.iter().zip(&g) {
            real.extend_from_slice(&test.images[i * IMAGE_PIXELS..][..IMAGE_PIXELS]);
            generated.extend_from_slice(&images[j * IMAGE_PIXELS..][..IMAGE_PIXELS]);
        }
    }
    (real, generated)
}

fn empty_metrics() -> Metrics {
    Metrics {
        name: String::new(),
        images: 0,
        accuracy_per_class: [0.0; NUM_CLASSES],
        accuracy: 0.0,
        fid: 0.0,
        diversity_per_class: [0.0; NUM_CLASSES],
        diversity_ratio: 0.0,
        two_sample: None,
    }
}

/// Labels for `per_class` images of each digit, and the seeds to draw them with.
pub fn eval_labels(per_class: usize, seed_base: u32) -> (Vec<u8>, Vec<u32>) {
    let labels: Vec<u8> = (0..NUM_CLASSES * per_class)
        .map(|i| (i / per_class) as u8)
        .collect();
    let seeds = (0..labels.len() as u32)
        .map(|i| seed_base.wrapping_add(i))
        .collect();
    (labels, seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frechet_distance_of_identical_sets_is_zero_and_shift_is_squared() {
        let mut rng = Rng::new(3);
        let mut a = vec![0f32; 2000 * 4];
        rng.fill_normal(&mut a);
        assert!(frechet_distance(&a, &a, 4).abs() < 1e-6);
        let b: Vec<f32> = a.iter().map(|v| v + 2.0).collect();
        // Shifting every coordinate by 2 adds |2|^2 * 4 = 16.
        assert!((frechet_distance(&a, &b, 4) - 16.0).abs() < 1e-6);
    }

    #[test]
    fn diversity_is_zero_for_copies() {
        let img = vec![7u8; IMAGE_PIXELS * 3];
        let d = diversity(&img, &[1, 1, 1], 10);
        assert_eq!(d, [0.0; NUM_CLASSES]);
    }

    /// An image whose pixel `i` is `f(i)`.
    fn image(f: impl Fn(usize) -> u8) -> Vec<u8> {
        (0..IMAGE_PIXELS).map(f).collect()
    }

    #[test]
    fn diversity_is_the_mean_pairwise_distance_within_each_class() {
        // Digit 3: a black image, one with 4 white pixels, one with 9 other white pixels
        // (distances 2, 3 and sqrt(4 + 9) with pixels in [0, 1]), then an all-white one.
        let black = image(|_| 0);
        let four = image(|i| if i < 4 { 255 } else { 0 });
        let nine = image(|i| if (4..13).contains(&i) { 255 } else { 0 });
        let white = image(|_| 255);
        // Digit 7: two images 51/255 = 0.2 apart in 25 pixels: distance sqrt(25 * 0.04) = 1.
        let grey = image(|_| 100);
        let lighter = image(|i| if i < 25 { 151 } else { 100 });
        // Digit 5 has one image (no pair), the other digits none.
        let images = [&black[..], &grey, &four, &white, &lighter, &nine, &white].concat();
        let labels = [3, 7, 3, 5, 7, 3, 3];

        let close = |got: f64, want: f64| (got - want).abs() < 1e-12;
        let check = |per_class: usize, want3: f64| {
            let d = diversity(&images, &labels, per_class);
            assert!(
                close(d[3], want3),
                "per_class {per_class}: {} vs {want3}",
                d[3]
            );
            assert!(close(d[7], 1.0), "per_class {per_class}: {}", d[7]);
            for c in [0, 1, 2, 4, 5, 6, 8, 9] {
                assert_eq!(d[c], 0.0, "per_class {per_class}, digit {c}");
            }
        };
        let s13 = 13f64.sqrt();
        // The first `per_class` images of each class, in order, count.
        check(2, 2.0);
        check(3, (2.0 + 3.0 + s13) / 3.0);
        // All four: the white image is sqrt(784), sqrt(780) and sqrt(775) from the others.
        let all = (2.0 + 3.0 + s13 + 28.0 + 780f64.sqrt() + 775f64.sqrt()) / 6.0;
        check(4, all);
        check(100, all);
        // One image per class: no pairs.
        assert_eq!(diversity(&images, &labels, 1), [0.0; NUM_CLASSES]);
    }
}
