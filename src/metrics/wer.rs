//! Word error rate as NIST's sclite computes it, and the text normalisation a speech
//! recogniser's output gets before it is scored.
//!
//! sclite aligns reference and hypothesis words with costs correct 0, substitution 4,
//! insertion 3, deletion 3 (SCTK `word.c`), preferring in each cell the diagonal when it is no
//! worse than both others, then a deletion when strictly cheaper than an insertion, else the
//! insertion (`net_dp.c`), and counts errors along the path back from the end. That minimises
//! 4S + 3(D + I), so on rare pairs it counts more errors than the Levenshtein distance;
//! `tests/fixtures/wer_sclite.json` holds sclite 2.10's counts for 50 pairs.

use serde::{Deserialize, Serialize};

/// Correct words, substitutions, deletions and insertions of an alignment (or a sum of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordErrors {
    pub correct: usize,
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
}

impl WordErrors {
    /// Words of the reference.
    pub fn reference_words(&self) -> usize {
        self.correct + self.substitutions + self.deletions
    }

    /// Substitutions, deletions and insertions.
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Errors per reference word (0 for an empty reference without insertions).
    pub fn rate(&self) -> f64 {
        match self.reference_words() {
            0 => self.insertions as f64,
            n => self.errors() as f64 / n as f64,
        }
    }
}

impl std::ops::Add for WordErrors {
    type Output = WordErrors;
    fn add(self, o: WordErrors) -> WordErrors {
        WordErrors {
            correct: self.correct + o.correct,
            substitutions: self.substitutions + o.substitutions,
            deletions: self.deletions + o.deletions,
            insertions: self.insertions + o.insertions,
        }
    }
}

impl std::iter::Sum for WordErrors {
    fn sum<I: Iterator<Item = WordErrors>>(iter: I) -> WordErrors {
        iter.fold(WordErrors::default(), |a, b| a + b)
    }
}

/// sclite's alignment of the whitespace-separated words of `reference` and `hypothesis`;
/// `fold_case` compares ASCII letters case-insensitively (sclite's default).
pub fn word_errors(reference: &str, hypothesis: &str, fold_case: bool) -> WordErrors {
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    let same = |a: &str, b: &str| {
        if fold_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    const SUB: u32 = 4;
    const GAP: u32 = 3;
    #[derive(Clone, Copy)]
    enum Move {
        Diagonal,
        Deletion,
        Insertion,
    }
    let (n, m) = (r.len(), h.len());
    let mut cost = vec![0u32; (n + 1) * (m + 1)];
    let mut moves = vec![Move::Diagonal; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 1..=n {
        cost[at(i, 0)] = GAP * i as u32;
        moves[at(i, 0)] = Move::Deletion;
    }
    for j in 1..=m {
        cost[at(0, j)] = GAP * j as u32;
        moves[at(0, j)] = Move::Insertion;
    }
    for i in 1..=n {
        for j in 1..=m {
            let diagonal = cost[at(i - 1, j - 1)] + if same(r[i - 1], h[j - 1]) { 0 } else { SUB };
            let deletion = cost[at(i - 1, j)] + GAP;
            let insertion = cost[at(i, j - 1)] + GAP;
            let (c, mv) = if diagonal <= deletion && diagonal <= insertion {
                (diagonal, Move::Diagonal)
            } else if deletion < insertion {
                (deletion, Move::Deletion)
            } else {
                (insertion, Move::Insertion)
            };
            cost[at(i, j)] = c;
            moves[at(i, j)] = mv;
        }
    }
    let mut e = WordErrors::default();
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        match moves[at(i, j)] {
            Move::Diagonal => {
                if same(r[i - 1], h[j - 1]) {
                    e.correct += 1;
                } else {
                    e.substitutions += 1;
                }
                i -= 1;
                j -= 1;
            }
            Move::Deletion => {
                e.deletions += 1;
                i -= 1;
            }
            Move::Insertion => {
                e.insertions += 1;
                j -= 1;
            }
        }
    }
    e
}

/// A transcript as it is scored: lower case, "Mr." as "mister" (and the like), hyphens as
/// spaces, numbers spelled out ("10" → "ten", "33" → "thirty three"), other punctuation
/// removed (apostrophes inside words kept).
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase().replace(['-', '–', '—', '/'], " ");
    let mut words = Vec::new();
    for raw in lower.split_whitespace() {
        let word = match raw.trim_end_matches([',', ';', ':', '!', '?', '"', ')']) {
            "mr." => "mister",
            "mrs." => "missus",
            "dr." => "doctor",
            "st." => "saint",
            w => w,
        };
        // Thousands separators go before the number is read.
        let digits: String = word
            .trim_end_matches('.')
            .chars()
            .filter(|c| *c != ',')
            .collect();
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            words.extend(spell_number(&digits));
            continue;
        }
        let kept: String = word
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'')
            .collect();
        let kept = kept.trim_matches('\'');
        if !kept.is_empty() {
            words.push(kept.to_string());
        }
    }
    words.join(" ")
}

/// The English words of a whole number given as digits ("29340" → "twenty nine thousand three
/// hundred forty"); more than 15 digits are read digit by digit.
pub fn spell_number(digits: &str) -> Vec<String> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    const SCALES: [&str; 5] = ["", "thousand", "million", "billion", "trillion"];
    let Ok(mut n) = digits
        .parse::<u64>()
        .map_err(|_| ())
        .and_then(|n| if digits.len() <= 15 { Ok(n) } else { Err(()) })
    else {
        return digits
            .chars()
            .filter_map(|c| c.to_digit(10))
            .map(|d| ONES[d as usize].to_string())
            .collect();
    };
    if n == 0 {
        return vec![ONES[0].into()];
    }
    let below_thousand = |n: u64| {
        let mut w = Vec::new();
        let (hundreds, rest) = (n / 100, n % 100);
        if hundreds > 0 {
            w.extend([ONES[hundreds as usize], "hundred"]);
        }
        if rest >= 20 {
            w.push(TENS[(rest / 10) as usize]);
            if rest % 10 > 0 {
                w.push(ONES[(rest % 10) as usize]);
            }
        } else if rest > 0 {
            w.push(ONES[rest as usize]);
        }
        w
    };
    let mut groups = Vec::new();
    while n > 0 {
        groups.push(n % 1000);
        n /= 1000;
    }
    let mut words = Vec::new();
    for (scale, &group) in groups.iter().enumerate().rev() {
        if group > 0 {
            words.extend(below_thousand(group));
            if scale > 0 {
                words.push(SCALES[scale]);
            }
        }
    }
    words.into_iter().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sclite 2.10's counts for 50 pairs, both case-sensitive and case-insensitive
    /// (`bench/parity/wer_sclite.py`).
    #[test]
    fn counts_agree_with_sclite() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/wer_sclite.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let pairs = fixture["pairs"].as_array().unwrap();
        assert_eq!(pairs.len(), 50);
        for (key, fold) in [("case_sensitive", false), ("case_insensitive", true)] {
            let mut total = WordErrors::default();
            for p in pairs {
                let (r, h) = (
                    p["reference"].as_str().unwrap(),
                    p["hypothesis"].as_str().unwrap(),
                );
                let e = word_errors(r, h, fold);
                let want = &p[key];
                let got = [e.correct, e.substitutions, e.deletions, e.insertions];
                let expected = ["c", "s", "d", "i"].map(|k| want[k].as_u64().unwrap() as usize);
                assert_eq!(got, expected, "{key}: {r:?} vs {h:?}");
                total = total + e;
            }
            let wer = fixture["totals"][key]["wer"].as_f64().unwrap();
            assert!(
                (total.rate() - wer).abs() < 1e-12,
                "{key}: {} vs {wer}",
                total.rate()
            );
        }
    }

    /// The hypotheses of `tests/fixtures/whisper/wer/*.hyp.trn` are faster-whisper's texts
    /// normalised this way, and sclite's summaries are these rates.
    #[test]
    fn normalised_whisper_output_scores_as_sclite_reported() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whisper/");
        let transcripts: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{fixture}transcripts.json")).unwrap(),
        )
        .unwrap();
        for (set, percent) in [("librivox", 4.2), ("cards", 14.3)] {
            let trn = std::fs::read_to_string(format!("{fixture}wer/{set}.hyp.trn")).unwrap();
            let expected: Vec<&str> = trn
                .lines()
                .map(|l| l.rsplit_once(" (").unwrap().0)
                .collect();
            let recordings: Vec<&serde_json::Value> = transcripts["recordings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["file"].as_str().unwrap().starts_with(set))
                .collect();
            let mut total = WordErrors::default();
            for (r, want) in recordings.iter().zip(&expected) {
                let hyp = normalize(r["text"].as_str().unwrap());
                assert_eq!(&hyp, want);
                total = total + word_errors(r["reference"].as_str().unwrap(), &hyp, true);
            }
            assert_eq!(recordings.len(), 5);
            assert!(
                ((total.rate() * 1000.0).round() / 10.0 - percent).abs() < 1e-9,
                "{set}"
            );
        }
    }

    #[test]
    fn numbers_and_punctuation() {
        assert_eq!(normalize(" Go forward 10 meters."), "go forward ten meters");
        assert_eq!(
            normalize("33 for 692."),
            "thirty three for six hundred ninety two"
        );
        assert_eq!(
            normalize("29340."),
            "twenty nine thousand three hundred forty"
        );
        assert_eq!(
            normalize("1,000,005 it's O'Brien's—"),
            "one million five it's o'brien's"
        );
        assert_eq!(
            normalize("\"Cold-hearted,\" Mr. Smith"),
            "cold hearted mister smith"
        );
        assert_eq!(spell_number("0"), ["zero"]);
        assert_eq!(spell_number("1234567890123456").len(), 16);
    }
}
