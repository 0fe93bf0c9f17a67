//! Word error rate as NIST's sclite computes it ([`word_errors`], on [`align_sclite`]), and the
//! text normalisation a speech recogniser's output gets before it is scored.
//! `tests/fixtures/wer_sclite.json` holds sclite 2.10's counts for 50 pairs.

use super::edit::{Alignment, align_sclite};

/// sclite's alignment ([`align_sclite`]) of the whitespace-separated words of `reference` and
/// `hypothesis`; `fold_case` compares ASCII letters case-insensitively (sclite's default).
pub fn word_errors(reference: &str, hypothesis: &str, fold_case: bool) -> Alignment {
    let split = |t: &str| -> Vec<String> {
        t.split_whitespace()
            .map(|w| {
                if fold_case {
                    w.to_ascii_lowercase()
                } else {
                    w.to_string()
                }
            })
            .collect()
    };
    align_sclite(&split(reference), &split(hypothesis))
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
            let mut total = Alignment::default();
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
            let mut total = Alignment::default();
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
