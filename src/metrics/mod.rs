//! Metrics: classification (accuracy, per-class precision/recall/F1, confusion matrix, here),
//! sequences ([`edit`]: token error rate, word error rate, sequence accuracy), speech
//! recognition's sclite-exact word error rate with transcript normalisation ([`wer`]) and
//! summaries ([`rouge`], with NLTK's Porter stemmer as rouge-score uses it: [`porter`]).

pub mod edit;
pub mod porter;
pub mod rouge;
pub mod wer;

use serde::Serialize;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of true examples of this class.
    pub support: usize,
}

/// The evaluation of a classifier on a labelled set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    pub class_names: Vec<String>,
    /// Examples scored (images or texts).
    pub examples: usize,
}

impl Report {
    /// Compare `predicted` labels against `truth` over `class_names.len()` classes.
    pub fn new(truth: &[usize], predicted: &[usize], class_names: &[String]) -> Report {
        let k = class_names.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion[c][c];
                let support: usize = confusion[c].iter().sum();
                let predicted_c: usize = confusion.iter().map(|row| row[c]).sum();
                let (precision, recall) = (ratio(tp, predicted_c), ratio(tp, support));
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassMetrics {
                    class: class_names[c].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
        Report {
            accuracy: ratio(correct, truth.len()),
            macro_f1: per_class.iter().map(|m| m.f1).sum::<f64>() / k.max(1) as f64,
            per_class,
            confusion,
            class_names: class_names.to_vec(),
            examples: truth.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_a_hand_worked_example() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // truth:     a a a b b c
        // predicted: a a b b c c
        let r = Report::new(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], &names);
        assert_eq!(
            r.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let a = &r.per_class[0];
        assert_eq!((a.precision, a.support), (1.0, 3));
        assert!((a.recall - 2.0 / 3.0).abs() < 1e-12);
        let b = &r.per_class[1];
        assert!((b.precision - 0.5).abs() < 1e-12 && (b.recall - 0.5).abs() < 1e-12);
        assert!((r.per_class[2].precision - 0.5).abs() < 1e-12);
    }
}
