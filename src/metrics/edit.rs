//! Edit distances and error rates over token sequences: Levenshtein distance, token error rate
//! (phoneme/character error rate), sequence accuracy, and word error rate over whitespace-split
//! words with optional normalisation. Arguments are always (reference, hypothesis).
//!
//! Two alignments are offered. [`levenshtein`] is the unit-cost edit distance (every
//! substitution, insertion and deletion costs 1), the usual definition of TER/PER/WER.
//! [`align_sclite`] reproduces NIST sclite's word alignment (SCTK `sclite`, default options):
//! substitution 4, insertion 3, deletion 3, preferring the diagonal on ties, then deletion, then
//! insertion. sclite minimises `4S + 3(D + I)`, so on rare pairs its `S + D + I` exceeds the
//! Levenshtein distance (reference `a a c a c b`, hypothesis `c b b b a a a`: 7 against 6);
//! use it to report numbers comparable with sclite's.

use serde::{Deserialize, Serialize};

/// Unit-cost Levenshtein distance between two sequences, in O(min(len)) memory.
pub fn levenshtein<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> usize {
    let (long, short) = if reference.len() >= hypothesis.len() {
        (reference, hypothesis)
    } else {
        (hypothesis, reference)
    };
    let mut row: Vec<usize> = (0..=short.len()).collect();
    for (i, x) in long.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, y) in short.iter().enumerate() {
            let next = (diag + usize::from(x != y))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[short.len()]
}

/// Counts of an alignment: correct, substituted, deleted (in the reference, missing from the
/// hypothesis) and inserted (in the hypothesis only) tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Alignment {
    pub correct: usize,
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
}

impl Alignment {
    /// `S + D + I`.
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Tokens of the reference.
    pub fn reference_words(&self) -> usize {
        self.correct + self.substitutions + self.deletions
    }

    /// Errors per reference token (the insertions for an empty reference).
    pub fn rate(&self) -> f64 {
        match self.reference_words() {
            0 => self.insertions as f64,
            n => self.errors() as f64 / n as f64,
        }
    }
}

impl std::ops::Add for Alignment {
    type Output = Alignment;
    fn add(self, o: Alignment) -> Alignment {
        Alignment {
            correct: self.correct + o.correct,
            substitutions: self.substitutions + o.substitutions,
            deletions: self.deletions + o.deletions,
            insertions: self.insertions + o.insertions,
        }
    }
}

impl std::iter::Sum for Alignment {
    fn sum<I: Iterator<Item = Alignment>>(iter: I) -> Alignment {
        iter.fold(Alignment::default(), |a, b| a + b)
    }
}

/// sclite's alignment (weights: correct 0, substitution 4, insertion 3, deletion 3; per cell the
/// diagonal when it is no worse than both others, else deletion when strictly cheaper than
/// insertion, else insertion; backtrace from the end), as in SCTK's `net_dp.c` and `word.c`.
/// O(len(reference) × len(hypothesis)) time and memory.
pub fn align_sclite<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> Alignment {
    #[derive(Clone, Copy)]
    enum Op {
        Diag,
        Del,
        Ins,
    }
    let (n, m) = (reference.len(), hypothesis.len());
    let w = m + 1;
    let mut cost = vec![0u64; (n + 1) * w];
    let mut back = vec![Op::Diag; (n + 1) * w];
    for j in 1..=m {
        cost[j] = cost[j - 1] + 3;
        back[j] = Op::Ins;
    }
    for i in 1..=n {
        cost[i * w] = cost[(i - 1) * w] + 3;
        back[i * w] = Op::Del;
        for j in 1..=m {
            let sub = cost[(i - 1) * w + j - 1]
                + if reference[i - 1] == hypothesis[j - 1] {
                    0
                } else {
                    4
                };
            let del = cost[(i - 1) * w + j] + 3;
            let ins = cost[i * w + j - 1] + 3;
            let (c, op) = if sub <= del && sub <= ins {
                (sub, Op::Diag)
            } else if del < ins {
                (del, Op::Del)
            } else {
                (ins, Op::Ins)
            };
            cost[i * w + j] = c;
            back[i * w + j] = op;
        }
    }
    let mut a = Alignment::default();
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        match back[i * w + j] {
            Op::Diag => {
                if reference[i - 1] == hypothesis[j - 1] {
                    a.correct += 1;
                } else {
                    a.substitutions += 1;
                }
                i -= 1;
                j -= 1;
            }
            Op::Del => {
                a.deletions += 1;
                i -= 1;
            }
            Op::Ins => {
                a.insertions += 1;
                j -= 1;
            }
        }
    }
    a
}

/// Accumulated errors over sequence pairs: token error rate and sequence accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorRate {
    /// Sum of the edit distances.
    pub errors: usize,
    /// Sum of the reference lengths.
    pub reference_tokens: usize,
    /// Pairs added.
    pub sequences: usize,
    /// Pairs whose hypothesis equals the reference.
    pub exact: usize,
}

impl ErrorRate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one pair, scored with [`levenshtein`].
    pub fn add<T: PartialEq>(&mut self, reference: &[T], hypothesis: &[T]) {
        self.add_counts(levenshtein(reference, hypothesis), reference.len());
    }

    /// Score whitespace-separated token sequences: each output against its reference.
    pub fn of_token_texts<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut rate = Self::new();
        for (reference, output) in pairs {
            let r: Vec<&str> = reference.split_whitespace().collect();
            let o: Vec<&str> = output.split_whitespace().collect();
            rate.add(&r, &o);
        }
        rate
    }

    /// Add one pair already scored: its error count and reference length (0 errors = exact).
    pub fn add_counts(&mut self, errors: usize, reference_tokens: usize) {
        self.errors += errors;
        self.reference_tokens += reference_tokens;
        self.sequences += 1;
        self.exact += usize::from(errors == 0);
    }

    /// Errors over reference tokens: 0 when there were no errors, +∞ when there were errors but
    /// no reference tokens.
    pub fn rate(&self) -> f64 {
        match (self.errors, self.reference_tokens) {
            (0, _) => 0.0,
            (_, 0) => f64::INFINITY,
            (e, r) => e as f64 / r as f64,
        }
    }

    /// Fraction of pairs reproduced exactly (0 when none were added).
    pub fn accuracy(&self) -> f64 {
        if self.sequences == 0 {
            0.0
        } else {
            self.exact as f64 / self.sequences as f64
        }
    }
}

/// Token error rate over (reference, hypothesis) pairs: Σ distance / Σ reference length.
pub fn token_error_rate<'a, T: PartialEq + 'a>(
    pairs: impl IntoIterator<Item = (&'a [T], &'a [T])>,
) -> ErrorRate {
    let mut e = ErrorRate::new();
    for (r, h) in pairs {
        e.add(r, h);
    }
    e
}

/// How text is normalised before it is split into words for [`wer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WordOptions {
    /// Applied first, to the whole text.
    pub custom: Option<fn(&str) -> String>,
    /// Unicode lower-casing (`str::to_lowercase`). sclite's own case-insensitive mode folds
    /// ASCII letters only.
    pub lowercase: bool,
    /// Delete every character that is neither alphanumeric nor whitespace (`it's` → `its`,
    /// `well-known` → `wellknown`); words left empty disappear.
    pub strip_punctuation: bool,
    /// Align as sclite does ([`align_sclite`]) instead of unit-cost Levenshtein.
    pub sclite: bool,
}

/// The words of `text` (split on Unicode whitespace) after the normalisation in `options`.
pub fn words(text: &str, options: &WordOptions) -> Vec<String> {
    let mut t = match options.custom {
        Some(f) => f(text),
        None => text.to_string(),
    };
    if options.lowercase {
        t = t.to_lowercase();
    }
    if options.strip_punctuation {
        t = t
            .chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect();
    }
    t.split_whitespace().map(str::to_string).collect()
}

/// Word error rate over (reference, hypothesis) texts.
pub fn wer<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    options: &WordOptions,
) -> ErrorRate {
    let mut e = ErrorRate::new();
    for (r, h) in pairs {
        let (r, h) = (words(r, options), words(h, options));
        let errors = if options.sclite {
            align_sclite(&r, &h).errors()
        } else {
            levenshtein(&r, &h)
        };
        e.add_counts(errors, r.len());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_basics() {
        let t = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&t("kitten"), &t("sitting")), 3);
        assert_eq!(levenshtein(&t(""), &t("abc")), 3);
        assert_eq!(levenshtein(&t("abc"), &t("")), 3);
        assert_eq!(levenshtein::<char>(&[], &[]), 0);
        assert_eq!(levenshtein(&t("flaw"), &t("lawn")), 2);
    }

    #[test]
    fn sclite_can_exceed_levenshtein() {
        let r: Vec<&str> = "a a c a c b".split(' ').collect();
        let h: Vec<&str> = "c b b b a a a".split(' ').collect();
        assert_eq!(levenshtein(&r, &h), 6);
        let a = align_sclite(&r, &h);
        assert_eq!(
            (a.correct, a.substitutions, a.deletions, a.insertions),
            (3, 0, 3, 4)
        );
    }

    #[test]
    fn rates() {
        let e = wer(
            [("the cat sat", "the cat sit"), ("a b", "a b")],
            &WordOptions::default(),
        );
        assert_eq!((e.errors, e.reference_tokens, e.exact), (1, 5, 1));
        assert!((e.rate() - 0.2).abs() < 1e-12);
        assert_eq!(e.accuracy(), 0.5);
        let opts = WordOptions {
            lowercase: true,
            strip_punctuation: true,
            ..Default::default()
        };
        assert_eq!(
            words("It's a Well-known FACT!", &opts),
            ["its", "a", "wellknown", "fact"]
        );
        assert_eq!(wer([("", "x")], &opts).rate(), f64::INFINITY);
        assert_eq!(wer([("", "")], &opts).rate(), 0.0);
    }
}
