//! Seeded subsets of a training set: a validation hold-out and few-shot draws.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::Validation;

/// The training and validation examples (indices into `labels`, sorted) of a run, and where
/// the validation came from:
/// - without `per_class`: a `val_fraction` of everything held out (or `val_per_class` of each
///   class), the rest trains;
/// - with `per_class`: a few-shot user has `per_class` labels of each class, so validation comes
///   out of those (`val_fraction` of each class's, at least one when that rounds to zero but
///   more than one label remains), or from `val_per_class` more labels drawn apart from them —
///   never from the thousands of labels such a user does not have.
pub fn draw(
    n: usize,
    labels: &[usize],
    per_class: Option<usize>,
    val_per_class: Option<usize>,
    val_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>, Validation) {
    let all: Vec<usize> = (0..labels.len()).collect();
    match (per_class, val_per_class) {
        (None, None) => {
            let (train, val) = holdout(n, val_fraction, seed);
            (
                train,
                val,
                Validation::HeldOut {
                    fraction: val_fraction,
                },
            )
        }
        (None, Some(v)) => {
            let val = self::per_class(labels, &all, v, seed ^ 0x5EED_0005);
            let train = all
                .into_iter()
                .filter(|i| val.binary_search(i).is_err())
                .collect();
            (train, val, Validation::PerClass { examples: v })
        }
        (Some(n), Some(v)) => {
            let budget = self::per_class(labels, &all, n + v, seed);
            let val = self::per_class(labels, &budget, v, seed ^ 0x5EED_0005);
            let train = budget
                .into_iter()
                .filter(|i| val.binary_search(i).is_err())
                .collect();
            (train, val, Validation::PerClass { examples: v })
        }
        (Some(n), None) => {
            let budget = self::per_class(labels, &all, n, seed);
            let mut by_class: Vec<Vec<usize>> = Vec::new();
            for &i in &budget {
                if by_class.len() <= labels[i] {
                    by_class.resize(labels[i] + 1, Vec::new());
                }
                by_class[labels[i]].push(i);
            }
            let mut val = Vec::new();
            for members in &by_class {
                let m = members.len();
                let wanted = (m as f64 * val_fraction).round() as usize;
                let held = if val_fraction > 0.0 && m > 1 {
                    wanted.max(1)
                } else {
                    wanted
                };
                let (_, picked) = holdout(m, held as f64 / m.max(1) as f64, seed);
                val.extend(picked.into_iter().map(|k| members[k]));
            }
            val.sort_unstable();
            let train = budget
                .into_iter()
                .filter(|i| val.binary_search(i).is_err())
                .collect();
            (
                train,
                val,
                Validation::LabelledBudget {
                    fraction: val_fraction,
                },
            )
        }
    }
}

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
    fn few_shot_validation_comes_from_the_labelled_budget() {
        let labels: Vec<usize> = (0..3000).map(|i| i % 3).collect();
        let count = |idx: &[usize], c: usize| idx.iter().filter(|&&i| labels[i] == c).count();
        // 20 labels per class, 10% of them validate: 18 train + 2 val per class, nothing more.
        let (train, val, how) = draw(labels.len(), &labels, Some(20), None, 0.1, 4);
        assert_eq!(how, Validation::LabelledBudget { fraction: 0.1 });
        for c in 0..3 {
            assert_eq!((count(&train, c), count(&val, c)), (18, 2));
        }
        assert!(val.iter().all(|i| train.binary_search(i).is_err()));
        // 5 labels at 10%: one of them validates rather than none.
        let (train, val, _) = draw(labels.len(), &labels, Some(5), None, 0.1, 4);
        assert_eq!((train.len(), val.len()), (12, 3));
        // An explicit validation budget: 20 train and 7 more per class.
        let (train, val, how) = draw(labels.len(), &labels, Some(20), Some(7), 0.1, 4);
        assert_eq!(how, Validation::PerClass { examples: 7 });
        assert_eq!((train.len(), val.len()), (60, 21));
        assert!(val.iter().all(|i| train.binary_search(i).is_err()));
        // Without --per-class, the hold-out is as before.
        let (train, val, _) = draw(labels.len(), &labels, None, None, 0.1, 4);
        assert_eq!((train, val), holdout(3000, 0.1, 4));
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
