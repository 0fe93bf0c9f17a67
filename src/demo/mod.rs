//! The demos: the proof that pretraining pays, measured against training from scratch.
//! [`vision`] on Fashion-MNIST, [`topics`] on fortunes topics, [`g2p`] on British
//! pronunciations, [`speech`] on spoken card names; each writes its results for `crate::report`.

pub mod g2p;
pub mod speech;
pub mod summarize;
pub mod topics;
pub mod vision;

/// Mean and sample standard deviation.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }
}
