//! Seeded subsets of a training set: a validation hold-out and few-shot draws.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Split `0..n` into (train, validation), holding out `round(n * fraction)` indices chosen by `seed`.
/// Both lists come back sorted, so the split does not depend on how they are used later.
pub fn holdout(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5EED_0001));
    let n_val = ((n as f64) * fraction).round() as usize;
    let (val, train) = order.split_at(n_val.min(n));
    let (mut train, mut val) = (train.to_vec(), val.to_vec());
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// From `candidates` (indices into `labels`), draw up to `per_class` of each class, chosen by `seed`.
pub fn per_class(
    labels: &[usize],
    candidates: &[usize],
    per_class: usize,
    seed: u64,
) -> Vec<usize> {
    let mut order = candidates.to_vec();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5EED_0002));
    let num_classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut taken = vec![0; num_classes];
    let mut out: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let keep = taken[labels[i]] < per_class;
            taken[labels[i]] += keep as usize;
            keep
        })
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_seeded_disjoint_and_sized() {
        let (t, v) = holdout(1000, 0.1, 7);
        assert_eq!((t.len(), v.len()), (900, 100));
        assert!(v.iter().all(|i| !t.contains(i)));
        assert_eq!(holdout(1000, 0.1, 7), (t.clone(), v.clone()));
        assert_ne!(holdout(1000, 0.1, 8).1, v);
        assert_eq!(holdout(10, 0.0, 1).1.len(), 0);
    }

    #[test]
    fn per_class_takes_n_of_each() {
        let labels: Vec<usize> = (0..300).map(|i| i % 3).collect();
        let cand: Vec<usize> = (0..300).collect();
        let pick = per_class(&labels, &cand, 5, 1);
        assert_eq!(pick.len(), 15);
        for c in 0..3 {
            assert_eq!(pick.iter().filter(|&&i| labels[i] == c).count(), 5);
        }
        assert_eq!(pick, per_class(&labels, &cand, 5, 1));
        assert_ne!(pick, per_class(&labels, &cand, 5, 2));
    }
}
