//! GELU (the exact, erf form BERT uses) and its derivative with branch-free `exp` and `erf`
//! approximations the compiler vectorises. Burn's flex evaluates libm's scalar `erff` and
//! `expf` per element, forward and again backward: ~15% of MiniLM training.

use rayon::prelude::*;

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;

use super::{tensor, values};

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

/// `e^x` to about 2 ulp: x = n·ln2 + r, |r| ≤ ln2/2, e^r by its degree-6 Taylor polynomial,
/// 2^n by building the float's exponent. Results below 2⁻¹²⁶ (x < -87.3) are 0, so a softmax
/// gives masked positions exactly 0; x is capped at 88.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    let x = x.clamp(-88.0, 88.0);
    // Round to nearest without a libm call: adding 1.5·2²³ pushes the fraction out.
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 in two parts, so n·ln2 is subtracted without losing r's low bits (Cody & Waite).
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `erf(x)` to 1.5e-7 absolute in exact arithmetic (Abramowitz & Stegun 7.1.26); in f32 the
/// cancellation in `1 - poly·e^(-x²)` near 0 makes it 1e-6, which GELU scales by x/2.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π)
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `x · Φ(x)` for each element, Φ the standard normal's distribution function.
pub fn forward(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, x)| {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = 0.5 * v * (1.0 + erf(v * FRAC_1_SQRT_2));
            }
        });
    out
}

/// The input's gradient: `dy · (Φ(x) + x·φ(x))`, φ the standard normal's density.
pub fn backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(out, (x, dy))| {
            for ((o, &v), &g) in out.iter_mut().zip(x).zip(dy) {
                let cdf = 0.5 * (1.0 + erf(v * FRAC_1_SQRT_2));
                let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * v * v);
                *o = g * (cdf + v * pdf);
            }
        });
    out
}

pub(super) fn grad(x: &FlexTensor, dy: &FlexTensor) -> FlexTensor {
    tensor(backward(values(x), values(dy)), x.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (-20_000..=20_000).map(|i| i as f32 * 1e-3)
    }

    #[test]
    fn exp_and_erf_match_libm() {
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(-1e9), 0.0);
        for x in grid().chain([-87.0, -50.0, 50.0, 88.0]) {
            let (ours, exact) = (exp(x), (x as f64).exp());
            assert!(
                ((ours as f64 - exact) / exact).abs() < 5e-7,
                "exp({x}): {ours} vs {exact}"
            );
            let (ours, exact) = (erf(x), libm::erf(x as f64));
            assert!(
                (ours as f64 - exact).abs() < 1e-6,
                "erf({x}): {ours} vs {exact}"
            );
        }
    }

    #[test]
    fn gelu_and_its_derivative_match_the_definition() {
        let x: Vec<f32> = grid().collect();
        let dy: Vec<f32> = x.iter().map(|v| 1.0 + 0.1 * v).collect();
        let (y, dx) = (forward(&x), backward(&x, &dy));
        for i in 0..x.len() {
            let v = x[i] as f64;
            let cdf = 0.5 * (1.0 + libm::erf(v / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (y[i] as f64 - v * cdf).abs() < 1e-6 * (1.0 + v.abs()),
                "gelu({v})"
            );
            let expected = dy[i] as f64 * (cdf + v * pdf);
            assert!(
                (dx[i] as f64 - expected).abs() < 1e-6 * (1.0 + expected.abs()),
                "gelu'({v})"
            );
        }
    }
}
