//! ROUGE-1, ROUGE-2 and ROUGE-L exactly as Google's `rouge-score` (0.1.2) computes them.
//!
//! Tokenizer (`rouge_score/tokenize.py`): lower-case the text (full Unicode lower-casing, as
//! Python's `str.lower`), replace every run of characters other than ASCII `a-z0-9` by a space,
//! split, stem tokens longer than 3 characters with NLTK's Porter stemmer when asked, and drop
//! empty tokens. So apostrophes, hyphens and every non-ASCII letter separate tokens
//! (`naïve` → `na`, `ve`).
//!
//! Scores (`rouge_scorer.py`, `scoring.py`): ROUGE-N counts clipped n-gram overlaps,
//! `P = overlap / max(#prediction n-grams, 1)`, `R = overlap / max(#reference n-grams, 1)`;
//! ROUGE-L uses the longest common subsequence, `P = lcs / len(prediction)`,
//! `R = lcs / len(reference)`, and is 0 when either side has no tokens. `F = 2PR / (P + R)`,
//! or 0 when `P + R = 0`. The arithmetic is the same, in f64, as the Python's.

use std::collections::HashMap;

use super::porter::PorterStemmer;

/// Precision, recall and F1 of one ROUGE variant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Score {
    fn new(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// ROUGE-1, ROUGE-2 and ROUGE-L of one (reference, prediction) pair.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RougeScores {
    pub rouge1: Score,
    pub rouge2: Score,
    pub rouge_l: Score,
}

/// A scorer: `RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer)` of rouge-score.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rouge {
    stemmer: Option<PorterStemmer>,
}

impl Rouge {
    /// A scorer, with NLTK's Porter stemmer applied to tokens longer than 3 characters when
    /// `use_stemmer`.
    pub fn new(use_stemmer: bool) -> Self {
        Self {
            stemmer: use_stemmer.then(PorterStemmer::new),
        }
    }

    /// rouge-score's default tokenizer.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let lower = text.to_lowercase();
        lower
            .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
            .filter(|t| !t.is_empty())
            .map(|t| match &self.stemmer {
                Some(s) if t.len() > 3 => s.stem(t),
                _ => t.to_string(),
            })
            .filter(|t| {
                !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            .collect()
    }

    /// All three scores of `prediction` against `reference` (note the order: rouge-score's
    /// `score(target, prediction)` takes the reference first too).
    pub fn score(&self, reference: &str, prediction: &str) -> RougeScores {
        let r = self.tokenize(reference);
        let p = self.tokenize(prediction);
        RougeScores {
            rouge1: rouge_n(&r, &p, 1),
            rouge2: rouge_n(&r, &p, 2),
            rouge_l: rouge_l(&r, &p),
        }
    }
}

/// ROUGE-N of token lists (reference first). `n = 0` scores 0.
pub fn rouge_n<T: AsRef<str>>(reference: &[T], prediction: &[T], n: usize) -> Score {
    if n == 0 {
        return Score::default();
    }
    let r = ngram_counts(reference, n);
    let p = ngram_counts(prediction, n);
    let overlap: usize = r
        .iter()
        .map(|(g, &c)| c.min(p.get(g).copied().unwrap_or(0)))
        .sum();
    let total_r = reference.len().saturating_sub(n - 1);
    let total_p = prediction.len().saturating_sub(n - 1);
    Score::new(
        overlap as f64 / total_p.max(1) as f64,
        overlap as f64 / total_r.max(1) as f64,
    )
}

fn ngram_counts<T: AsRef<str>>(tokens: &[T], n: usize) -> HashMap<Vec<&str>, usize> {
    let mut counts = HashMap::new();
    if tokens.len() >= n {
        for w in tokens.windows(n) {
            *counts
                .entry(w.iter().map(AsRef::as_ref).collect())
                .or_insert(0) += 1;
        }
    }
    counts
}

/// ROUGE-L of token lists (reference first).
pub fn rouge_l<T: AsRef<str>>(reference: &[T], prediction: &[T]) -> Score {
    if reference.is_empty() || prediction.is_empty() {
        return Score::default();
    }
    let lcs = lcs_len(reference, prediction);
    Score::new(
        lcs as f64 / prediction.len() as f64,
        lcs as f64 / reference.len() as f64,
    )
}

/// Length of the longest common subsequence, in O(len(b)) memory.
pub fn lcs_len<T: AsRef<str>>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x.as_ref() == y.as_ref() {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Mean precision, recall and F1 over pairs, as a plain average of the per-pair values (not
/// rouge-score's bootstrap aggregator).
#[derive(Debug, Clone, Default)]
pub struct MeanRouge {
    sums: [[f64; 3]; 3],
    count: usize,
}

impl MeanRouge {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, s: &RougeScores) {
        for (acc, sc) in self.sums.iter_mut().zip([s.rouge1, s.rouge2, s.rouge_l]) {
            acc[0] += sc.precision;
            acc[1] += sc.recall;
            acc[2] += sc.fmeasure;
        }
        self.count += 1;
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The means (all zero when nothing was added).
    pub fn mean(&self) -> RougeScores {
        let n = self.count.max(1) as f64;
        let s = |a: [f64; 3]| Score {
            precision: a[0] / n,
            recall: a[1] / n,
            fmeasure: a[2] / n,
        };
        RougeScores {
            rouge1: s(self.sums[0]),
            rouge2: s(self.sums[1]),
            rouge_l: s(self.sums[2]),
        }
    }
}

/// Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 of `predictions` against `references` (lower-cased,
/// no stemming).
pub fn mean_f1<R: AsRef<str>, P: AsRef<str>>(references: &[R], predictions: &[P]) -> [f64; 3] {
    let scorer = Rouge::new(false);
    let mut mean = MeanRouge::new();
    for (r, p) in references.iter().zip(predictions) {
        mean.add(&scorer.score(r.as_ref(), p.as_ref()));
    }
    let m = mean.mean();
    [m.rouge1.fmeasure, m.rouge2.fmeasure, m.rouge_l.fmeasure]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_matches_rouge_score() {
        let r = Rouge::new(false);
        assert_eq!(
            r.tokenize("Don't stop-me_now, naïve café!"),
            ["don", "t", "stop", "me", "now", "na", "ve", "caf"]
        );
        assert_eq!(
            r.tokenize("İstanbul \u{212A}elvin"),
            ["i", "stanbul", "kelvin"]
        );
        assert!(r.tokenize(" ... ").is_empty());
        let s = Rouge::new(true);
        assert_eq!(
            s.tokenize("Running was this libraries"),
            ["run", "was", "thi", "librari"]
        );
    }

    #[test]
    fn empty_and_identical() {
        let r = Rouge::new(false);
        assert_eq!(r.score("", "something"), RougeScores::default());
        let same = r.score("a b c", "a b c");
        assert_eq!(same.rouge1.fmeasure, 1.0);
        assert_eq!(same.rouge2.fmeasure, 1.0);
        assert_eq!(same.rouge_l.fmeasure, 1.0);
        assert_eq!(r.score("tool", "tool").rouge2, Score::default());
    }
}
