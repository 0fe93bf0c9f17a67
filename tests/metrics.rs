//! Sequence metrics against their references: word error rate against NIST sclite, ROUGE
//! against Google's rouge-score, the Porter stemmer against NLTK's (fixtures made by
//! bench/parity/wer_sclite.py and rouge_reference.py).

use pretune::metrics::edit::{WordOptions, align_sclite, levenshtein, wer, words};
use pretune::metrics::porter::PorterStemmer;
use pretune::metrics::rouge::{MeanRouge, Rouge, Score};
use serde_json::Value;

// WER against NIST sclite: tests/fixtures/wer_sclite.json (bench/parity/wer_sclite.py).
fn counts(v: &Value) -> (usize, usize, usize, usize) {
    let g = |k: &str| v[k].as_u64().unwrap() as usize;
    (g("c"), g("s"), g("d"), g("i"))
}

#[test]
fn alignments_match_sclite() {
    let text =
        std::fs::read_to_string(std::path::Path::new("tests/fixtures").join("wer_sclite.json"))
            .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let pairs = doc["pairs"].as_array().unwrap();
    let raw = WordOptions::default();
    let lower = WordOptions {
        lowercase: true,
        ..Default::default()
    };
    let mut differs = 0;
    for p in pairs {
        let (r, h) = (
            p["reference"].as_str().unwrap(),
            p["hypothesis"].as_str().unwrap(),
        );
        let (rw, hw) = (words(r, &raw), words(h, &raw));
        assert_eq!(rw.len() as u64, p["ref_words"].as_u64().unwrap(), "{r:?}");
        assert_eq!(
            levenshtein(&rw, &hw) as u64,
            p["levenshtein"].as_u64().unwrap(),
            "{r:?} / {h:?}"
        );
        let a = align_sclite(&rw, &hw);
        assert_eq!(
            (a.correct, a.substitutions, a.deletions, a.insertions),
            counts(&p["case_sensitive"]),
            "{r:?} / {h:?}"
        );
        if p["ascii"].as_bool().unwrap() {
            let a = align_sclite(&words(r, &lower), &words(h, &lower));
            assert_eq!(
                (a.correct, a.substitutions, a.deletions, a.insertions),
                counts(&p["case_insensitive"]),
                "{r:?} / {h:?}"
            );
        }
        differs += usize::from(a.errors() != levenshtein(&rw, &hw));
    }
    assert_eq!(
        differs,
        pairs
            .iter()
            .filter(|p| p["differs"].as_bool().unwrap())
            .count()
    );

    let it = pairs.iter().map(|p| {
        (
            p["reference"].as_str().unwrap(),
            p["hypothesis"].as_str().unwrap(),
        )
    });
    let total = &doc["totals"]["case_sensitive"];
    let e = wer(
        it.clone(),
        &WordOptions {
            sclite: true,
            ..Default::default()
        },
    );
    assert_eq!(
        e.reference_tokens as u64,
        doc["totals"]["ref_words"].as_u64().unwrap()
    );
    assert!(
        (e.rate() - total["wer"].as_f64().unwrap()).abs() < 1e-12,
        "{} vs {}",
        e.rate(),
        total["wer"]
    );
    let lev = wer(it, &raw);
    assert!(lev.errors <= e.errors);
    eprintln!(
        "WER {:.4} as sclite, {:.4} by Levenshtein",
        e.rate(),
        lev.rate()
    );
}

// rouge-score parity: tests/fixtures/rouge_reference.json (bench/parity/rouge_reference.py).
fn check(case: &str, setting: &str, kind: &str, got: Score, want: &Value) {
    for (name, g) in [("p", got.precision), ("r", got.recall), ("f", got.fmeasure)] {
        let w = want[name].as_f64().unwrap();
        assert!(
            (g - w).abs() <= 1e-6,
            "{case} {setting} {kind}.{name}: got {g}, rouge-score {w}"
        );
    }
}

#[test]
fn every_reference_pair_matches_rouge_score() {
    let text = std::fs::read_to_string(
        std::path::Path::new("tests/fixtures").join("rouge_reference.json"),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 300);
    let mut max_diff = 0f64;
    for setting in ["nostem", "stem"] {
        let scorer = Rouge::new(setting == "stem");
        for c in cases {
            let id = c["id"].as_str().unwrap();
            let s = scorer.score(
                c["reference"].as_str().unwrap(),
                c["prediction"].as_str().unwrap(),
            );
            let want = &c["scores"][setting];
            check(id, setting, "rouge1", s.rouge1, &want["rouge1"]);
            check(id, setting, "rouge2", s.rouge2, &want["rouge2"]);
            check(id, setting, "rougeL", s.rouge_l, &want["rougeL"]);
            for (g, k) in [
                (s.rouge1, "rouge1"),
                (s.rouge2, "rouge2"),
                (s.rouge_l, "rougeL"),
            ] {
                max_diff = max_diff.max((g.fmeasure - want[k]["f"].as_f64().unwrap()).abs());
            }
        }
    }
    eprintln!(
        "{} cases x 2 settings, largest F1 difference {max_diff:e}",
        cases.len()
    );
}

/// The lead-10 baseline over the whole test split, when data/debian-descriptions.jsonl.gz is here.
#[test]
fn lead10_baseline_on_the_test_split() {
    let path = std::path::Path::new("data/debian-descriptions.jsonl.gz");
    let Ok(file) = std::fs::File::open(path) else {
        eprintln!(
            "skipped: {} not found (scripts/make_debian_descriptions.sh)",
            path.display()
        );
        return;
    };
    let text = std::fs::read_to_string(
        std::path::Path::new("tests/fixtures").join("rouge_reference.json"),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let want = &doc["lead10_test"];
    let mut lines = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut lines).unwrap();
    let test: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["split"] == "test")
        .collect();
    assert_eq!(test.len() as u64, want["pairs"].as_u64().unwrap());
    for setting in ["nostem", "stem"] {
        let scorer = Rouge::new(setting == "stem");
        let mut mean = MeanRouge::new();
        for r in &test {
            let lead: Vec<&str> = r["text"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .take(10)
                .collect();
            mean.add(&scorer.score(r["summary"].as_str().unwrap(), &lead.join(" ")));
        }
        let m = mean.mean();
        check(
            "lead10",
            setting,
            "rouge1",
            m.rouge1,
            &want[setting]["rouge1"],
        );
        check(
            "lead10",
            setting,
            "rouge2",
            m.rouge2,
            &want[setting]["rouge2"],
        );
        check(
            "lead10",
            setting,
            "rougeL",
            m.rouge_l,
            &want[setting]["rougeL"],
        );
    }
}

// NLTK PorterStemmer() parity: tests/fixtures/porter_nltk.tsv (bench/parity/rouge_reference.py).
#[test]
fn every_word_stems_as_nltk() {
    let text =
        std::fs::read_to_string(std::path::Path::new("tests/fixtures").join("porter_nltk.tsv"))
            .unwrap();
    let s = PorterStemmer::new();
    let mut n = 0;
    let mut wrong = Vec::new();
    for line in text.lines().skip(1) {
        let (word, stem) = line.split_once('\t').unwrap();
        n += 1;
        let got = s.stem(word);
        if got != stem {
            wrong.push(format!("{word}: {got} (nltk {stem})"));
        }
    }
    assert!(n >= 2000, "{n} words");
    assert!(
        wrong.is_empty(),
        "{} of {n} differ: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
}
