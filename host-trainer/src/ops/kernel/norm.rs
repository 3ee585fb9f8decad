//! Training-mode batch norm followed by ReLU on plain `f32` slices: the batch statistics,
//! the forward pass and the backward pass (through the batch statistics), for NCHW tensors.
//!
//! Sums run in `f64`, channel by channel, in a fixed order, so results do not depend on the
//! thread count.

use rayon::prelude::*;

/// Shape of an NCHW tensor: `batch` images of `channels` planes of `plane` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormShape {
    /// Images.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Values per channel plane (`h * w`).
    pub plane: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    /// Values of channel `c` in image `b`.
    fn at<'a>(&self, x: &'a [f32], b: usize, c: usize) -> &'a [f32] {
        &x[(b * self.channels + c) * self.plane..][..self.plane]
    }

    fn check(&self, x: &[f32]) {
        assert!(
            self.batch > 0 && self.channels > 0 && self.plane > 0,
            "empty batch norm {self:?}"
        );
        assert_eq!(x.len(), self.len(), "values of {self:?}");
    }
}

/// Per-channel batch mean and biased variance (what Burn's `batch_norm_train` computes and
/// feeds to the running statistics): `[mean_0 .. mean_{C-1}, var_0 .. var_{C-1}]`.
pub fn stats(shape: &NormShape, x: &[f32]) -> Vec<f32> {
    shape.check(x);
    let n = (shape.batch * shape.plane) as f64;
    let per_channel: Vec<(f32, f32)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = (0..shape.batch)
                .map(|b| lane_sum(shape.at(x, b, c), |v| v as f64))
                .sum();
            let mean = sum / n;
            let sq: f64 = (0..shape.batch)
                .map(|b| lane_sum(shape.at(x, b, c), |v| (v as f64 - mean).powi(2)))
                .sum();
            (mean as f32, (sq / n) as f32)
        })
        .collect();
    let (mean, var): (Vec<f32>, Vec<f32>) = per_channel.into_iter().unzip();
    [mean, var].concat()
}

/// `y = relu(gamma * (x - mean) / sqrt(var + eps) + beta)` with `stats` from [`stats`].
pub fn forward(
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    eps: f64,
) -> Vec<f32> {
    shape.check(x);
    let (scale, shift) = affine(shape, gamma, beta, stats, eps);
    let mut y = vec![0f32; shape.len()];
    y.par_chunks_mut(shape.plane)
        .zip(x.par_chunks(shape.plane))
        .enumerate()
        .for_each(|(i, (out, inp))| {
            let c = i % shape.channels;
            let (a, s) = (scale[c], shift[c]);
            out.iter_mut()
                .zip(inp)
                .for_each(|(o, &v)| *o = (a * v + s).max(0.0));
        });
    y
}

/// Per-channel `gamma / sqrt(var + eps)` and `beta - mean * that`.
fn affine(
    shape: &NormShape,
    gamma: &[f32],
    beta: &[f32],
    stats: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    let c = shape.channels;
    assert_eq!(
        (gamma.len(), beta.len(), stats.len()),
        (c, c, 2 * c),
        "parameters of {shape:?}"
    );
    let scale: Vec<f32> = (0..c)
        .map(|i| gamma[i] * inv_std(stats[c + i], eps))
        .collect();
    let shift = (0..c).map(|i| beta[i] - stats[i] * scale[i]).collect();
    (scale, shift)
}

/// Lanes of the partial sums below: the sums run in a fixed order (lane by lane, then the
/// lanes in order), which the compiler can vectorise, unlike one running sum.
const LANES: usize = 8;

/// `sum(f(v))` over `xs` in `f64`, in [`LANES`] interleaved partial sums.
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Over one plane: `(sum g, sum g * (x - mean))` in `f64`, `g = dy` where the ReLU passed
/// (`y > 0`), else 0; in [`LANES`] interleaved partial sums.
fn lane_sums2(xs: &[f32], ys: &[f32], ds: &[f32], mean: f64) -> (f64, f64) {
    let term = |x: f32, y: f32, d: f32| {
        let g = if y > 0.0 { d as f64 } else { 0.0 };
        (g, g * (x as f64 - mean))
    };
    let (mut sg, mut sgx) = ([0f64; LANES], [0f64; LANES]);
    let n = xs.len() / LANES * LANES;
    for ((xc, yc), dc) in xs[..n]
        .chunks_exact(LANES)
        .zip(ys[..n].chunks_exact(LANES))
        .zip(ds[..n].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let (g, gx) = term(xc[l], yc[l], dc[l]);
            sg[l] += g;
            sgx[l] += gx;
        }
    }
    let (mut g, mut gx) = (sg.iter().sum::<f64>(), sgx.iter().sum::<f64>());
    for i in n..xs.len() {
        let (a, b) = term(xs[i], ys[i], ds[i]);
        g += a;
        gx += b;
    }
    (g, gx)
}

fn inv_std(var: f32, eps: f64) -> f32 {
    (1.0 / (var as f64 + eps).sqrt()) as f32
}

/// Gradients of [`forward`] given its input `x`, output `y` and the output gradient `dy`:
/// `(dx, dgamma, dbeta)`, with `dx` through the batch statistics (training mode).
pub fn backward(
    shape: &NormShape,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    gamma: &[f32],
    stats: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    shape.check(x);
    assert_eq!(
        (y.len(), dy.len()),
        (x.len(), x.len()),
        "sizes of {shape:?}"
    );
    let c_n = shape.channels;
    let n = (shape.batch * shape.plane) as f64;
    // Per channel: sum of g and of g * xhat, g = dy where the ReLU passed.
    let sums: Vec<(f64, f64)> = (0..c_n)
        .into_par_iter()
        .map(|c| {
            let (mean, is) = (stats[c] as f64, inv_std(stats[c_n + c], eps) as f64);
            let (mut sg, mut sgx) = (0f64, 0f64);
            for b in 0..shape.batch {
                let (xs, ys, ds) = (shape.at(x, b, c), shape.at(y, b, c), shape.at(dy, b, c));
                let (g, gx) = lane_sums2(xs, ys, ds, mean);
                sg += g;
                sgx += gx * is;
            }
            (sg, sgx)
        })
        .collect();
    let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let dgamma: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
    let mut dx = vec![0f32; shape.len()];
    dx.par_chunks_mut(shape.plane)
        .enumerate()
        .for_each(|(i, out)| {
            let (b, c) = (i / c_n, i % c_n);
            let (mean, is) = (stats[c], inv_std(stats[c_n + c], eps));
            let k = gamma[c] * is;
            let (mg, mgx) = ((sums[c].0 / n) as f32, (sums[c].1 / n) as f32);
            let (xs, ys, ds) = (shape.at(x, b, c), shape.at(y, b, c), shape.at(dy, b, c));
            for (((o, &xv), &yv), &dv) in out.iter_mut().zip(xs).zip(ys).zip(ds) {
                let g = if yv > 0.0 { dv } else { 0.0 };
                *o = k * (g - mg - (xv - mean) * is * mgx);
            }
        });
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(99);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 500.0 - 2.0
            })
            .collect()
    }

    const SHAPE: NormShape = NormShape {
        batch: 3,
        channels: 2,
        plane: 13,
    };

    #[test]
    fn stats_are_the_batch_mean_and_biased_variance() {
        let x = values(SHAPE.len(), 1);
        let s = stats(&SHAPE, &x);
        for c in 0..2 {
            let v: Vec<f64> = (0..3)
                .flat_map(|b| SHAPE.at(&x, b, c).iter().map(|&v| v as f64))
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / v.len() as f64;
            assert!((s[c] as f64 - mean).abs() < 1e-6);
            assert!((s[2 + c] as f64 - var).abs() < 1e-5);
        }
    }

    /// The loss `sum(y * r)` differentiated by central differences in f64-free f32 steps.
    #[test]
    fn gradients_match_finite_differences() {
        let x = values(SHAPE.len(), 2);
        let (gamma, beta) = (vec![1.3, -0.7], vec![0.2, 0.1]);
        let r = values(SHAPE.len(), 3);
        let eps = 1e-5;
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            let y = forward(&SHAPE, x, gamma, beta, &stats(&SHAPE, x), eps);
            y.iter().zip(&r).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        let st = stats(&SHAPE, &x);
        let y = forward(&SHAPE, &x, &gamma, &beta, &st, eps);
        let (dx, dg, db) = backward(&SHAPE, &x, &y, &r, &gamma, &st, eps);
        let h = 1e-2f32;
        let central = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
        for i in 0..x.len() {
            let d = central(&|e| {
                let mut xp = x.clone();
                xp[i] += e;
                loss(&xp, &gamma, &beta)
            });
            assert!((d - dx[i] as f64).abs() < 2e-2, "dx[{i}]: {d} vs {}", dx[i]);
        }
        for c in 0..2 {
            let d = central(&|e| {
                let mut g = gamma.clone();
                g[c] += e;
                loss(&x, &g, &beta)
            });
            assert!((d - dg[c] as f64).abs() < 2e-2, "dgamma[{c}]");
            let d = central(&|e| {
                let mut b = beta.clone();
                b[c] += e;
                loss(&x, &gamma, &b)
            });
            assert!((d - db[c] as f64).abs() < 2e-2, "dbeta[{c}]");
        }
    }
}
