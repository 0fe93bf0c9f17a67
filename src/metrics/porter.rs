//! NLTK's Porter stemmer in its default mode, `NLTK_EXTENSIONS`.
//!
//! A port of `nltk.stem.porter.PorterStemmer()` (nltk 3.10.4), the stemmer that Google's
//! rouge-score uses with `use_stemmer=True`. It is Martin Porter's 1980 algorithm with Porter's
//! own later extensions plus NLTK's: a table of irregular forms, words of one or two letters left
//! alone, `ies`/`ied` on four-letter words, a stricter `y` → `i` rule, `alli` handled first,
//! `fulli` and `logi` rules, and a two-letter `*o` condition. Snowball ("Porter2") stems differ
//! (`generate` → `gener` here, `generat` there), so a Snowball crate cannot stand in for it.
//!
//! Rule lists behave as NLTK's `_apply_rule_list`: the first rule whose suffix matches decides;
//! when its condition fails the word is returned unchanged, without trying later rules.

/// NLTK's `PorterStemmer()` (mode `NLTK_EXTENSIONS`). Stateless; `stem` never panics.
#[derive(Debug, Clone, Copy, Default)]
pub struct PorterStemmer;

/// NLTK's table of irregular forms (`irregular_forms`, inverted): form → stem.
const IRREGULAR: &[(&str, &str)] = &[
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

type Word = Vec<char>;
type Cond<'a> = Option<&'a dyn Fn(&[char]) -> bool>;

impl PorterStemmer {
    /// A stemmer; the same as `PorterStemmer::default()`.
    pub fn new() -> Self {
        Self
    }

    /// The stem of `word`, as NLTK's `PorterStemmer().stem(word)` (which lower-cases first).
    pub fn stem(&self, word: &str) -> String {
        let lower = word.to_lowercase();
        if let Some(&(_, stem)) = IRREGULAR.iter().find(|(form, _)| *form == lower) {
            return stem.to_string();
        }
        // NLTK tests the length of the word as given, before lower-casing.
        if word.chars().count() <= 2 {
            return lower;
        }
        let mut w: Word = lower.chars().collect();
        w = step1a(w);
        w = step1b(w);
        w = step1c(w);
        w = step2(w);
        w = step3(w);
        w = step4(w);
        w = step5a(w);
        w = step5b(w);
        w.into_iter().collect()
    }
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// `_is_consonant`: `y` is a consonant at the start of the word or after a vowel.
fn is_consonant(w: &[char], mut i: usize) -> bool {
    if is_vowel(w[i]) {
        return false;
    }
    if w[i] != 'y' {
        return true;
    }
    let mut negate = false;
    while i > 0 && w[i] == 'y' {
        negate = !negate;
        i -= 1;
    }
    // NLTK: `(word[i] not in vowels) != negate`.
    is_vowel(w[i]) == negate
}

/// `_consonant_flags`: `is_consonant` for every position, in one pass.
fn consonant_flags(w: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(w.len());
    for (i, &c) in w.iter().enumerate() {
        let f = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !flags[i - 1]
        } else {
            true
        };
        flags.push(f);
    }
    flags
}

/// `_measure`: m in `[C](VC){m}[V]`, the number of vowel→consonant transitions.
fn measure(w: &[char]) -> usize {
    let f = consonant_flags(w);
    f.windows(2).filter(|p| !p[0] && p[1]).count()
}

fn contains_vowel(w: &[char]) -> bool {
    consonant_flags(w).iter().any(|&c| !c)
}

/// `*d`: ends with a double consonant.
fn ends_double_consonant(w: &[char]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1)
}

/// `*o`: ends consonant-vowel-consonant, the last not w, x or y; NLTK also: a two-letter
/// vowel-consonant word.
fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3
        && is_consonant(w, n - 3)
        && !is_consonant(w, n - 2)
        && is_consonant(w, n - 1)
        && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1))
}

fn ends_with(w: &[char], suffix: &str) -> bool {
    let s: Vec<char> = suffix.chars().collect();
    w.len() >= s.len() && w[w.len() - s.len()..] == s[..]
}

/// `w` with its last `n` chars (a suffix known to match) replaced by `replacement`.
fn replace_tail(w: &[char], n: usize, replacement: &str) -> Word {
    let mut out = w[..w.len() - n].to_vec();
    out.extend(replacement.chars());
    out
}

/// `_apply_rule_list`. A rule is (suffix, replacement, condition on the stem). The suffix
/// `"*d"` means "ends with a double consonant" (the stem then loses both letters).
fn apply_rules(w: Word, rules: &[(&str, &str, Cond)]) -> Word {
    for &(suffix, replacement, cond) in rules {
        if suffix == "*d" && ends_double_consonant(&w) {
            let stem = &w[..w.len() - 2];
            return if cond.is_none_or(|c| c(stem)) {
                replace_tail(&w, 2, replacement)
            } else {
                w
            };
        }
        if ends_with(&w, suffix) {
            let n = suffix.chars().count();
            let stem = &w[..w.len() - n];
            return if cond.is_none_or(|c| c(stem)) {
                replace_tail(&w, n, replacement)
            } else {
                w
            };
        }
    }
    w
}

fn positive_measure(stem: &[char]) -> bool {
    measure(stem) > 0
}

fn measure_gt_1(stem: &[char]) -> bool {
    measure(stem) > 1
}

fn step1a(w: Word) -> Word {
    if ends_with(&w, "ies") && w.len() == 4 {
        return replace_tail(&w, 3, "ie");
    }
    apply_rules(
        w,
        &[
            ("sses", "ss", None),
            ("ies", "i", None),
            ("ss", "ss", None),
            ("s", "", None),
        ],
    )
}

fn step1b(w: Word) -> Word {
    if ends_with(&w, "ied") {
        return replace_tail(&w, 3, if w.len() == 4 { "ie" } else { "i" });
    }
    if ends_with(&w, "eed") {
        let stem = &w[..w.len() - 3];
        return if measure(stem) > 0 {
            replace_tail(&w, 3, "ee")
        } else {
            w
        };
    }
    let mut intermediate = None;
    for suffix in ["ed", "ing"] {
        if ends_with(&w, suffix) {
            let stem = &w[..w.len() - suffix.len()];
            if contains_vowel(stem) {
                intermediate = Some(stem.to_vec());
                break;
            }
        }
    }
    let Some(stem) = intermediate else { return w };
    // A stem with a vowel is not empty.
    let last = stem[stem.len() - 1];
    let last_str = last.to_string();
    let not_lsz = move |_: &[char]| !matches!(last, 'l' | 's' | 'z');
    let m1_cvc = |s: &[char]| measure(s) == 1 && ends_cvc(s);
    apply_rules(
        stem,
        &[
            ("at", "ate", None),
            ("bl", "ble", None),
            ("iz", "ize", None),
            ("*d", &last_str, Some(&not_lsz)),
            ("", "e", Some(&m1_cvc)),
        ],
    )
}

fn step1c(w: Word) -> Word {
    let cond = |s: &[char]| s.len() > 1 && is_consonant(s, s.len() - 1);
    apply_rules(w, &[("y", "i", Some(&cond))])
}

fn step2(w: Word) -> Word {
    if ends_with(&w, "alli") && positive_measure(&w[..w.len() - 4]) {
        return step2(replace_tail(&w, 4, "al"));
    }
    let pm: Cond = Some(&positive_measure);
    // The 'l' of 'logi' stays with the stem for the condition (NLTK: word[:-3]).
    let logi_stem: Word = if w.len() >= 3 {
        w[..w.len() - 3].to_vec()
    } else {
        Vec::new()
    };
    let logi = move |_: &[char]| positive_measure(&logi_stem);
    apply_rules(
        w,
        &[
            ("ational", "ate", pm),
            ("tional", "tion", pm),
            ("enci", "ence", pm),
            ("anci", "ance", pm),
            ("izer", "ize", pm),
            ("bli", "ble", pm),
            ("alli", "al", pm),
            ("entli", "ent", pm),
            ("eli", "e", pm),
            ("ousli", "ous", pm),
            ("ization", "ize", pm),
            ("ation", "ate", pm),
            ("ator", "ate", pm),
            ("alism", "al", pm),
            ("iveness", "ive", pm),
            ("fulness", "ful", pm),
            ("ousness", "ous", pm),
            ("aliti", "al", pm),
            ("iviti", "ive", pm),
            ("biliti", "ble", pm),
            ("fulli", "ful", pm),
            ("logi", "log", Some(&logi)),
        ],
    )
}

fn step3(w: Word) -> Word {
    let pm: Cond = Some(&positive_measure);
    apply_rules(
        w,
        &[
            ("icate", "ic", pm),
            ("ative", "", pm),
            ("alize", "al", pm),
            ("iciti", "ic", pm),
            ("ical", "ic", pm),
            ("ful", "", pm),
            ("ness", "", pm),
        ],
    )
}

fn step4(w: Word) -> Word {
    let m2: Cond = Some(&measure_gt_1);
    let ion = |s: &[char]| measure(s) > 1 && matches!(s.last(), Some('s' | 't'));
    apply_rules(
        w,
        &[
            ("al", "", m2),
            ("ance", "", m2),
            ("ence", "", m2),
            ("er", "", m2),
            ("ic", "", m2),
            ("able", "", m2),
            ("ible", "", m2),
            ("ant", "", m2),
            ("ement", "", m2),
            ("ment", "", m2),
            ("ent", "", m2),
            ("ion", "", Some(&ion)),
            ("ou", "", m2),
            ("ism", "", m2),
            ("ate", "", m2),
            ("iti", "", m2),
            ("ous", "", m2),
            ("ive", "", m2),
            ("ize", "", m2),
        ],
    )
}

fn step5a(w: Word) -> Word {
    if ends_with(&w, "e") {
        let stem = &w[..w.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            return stem.to_vec();
        }
    }
    w
}

fn step5b(w: Word) -> Word {
    let m = if w.is_empty() {
        0
    } else {
        measure(&w[..w.len() - 1])
    };
    let cond = move |_: &[char]| m > 1;
    apply_rules(w, &[("ll", "l", Some(&cond))])
}

#[cfg(test)]
mod tests {
    use super::PorterStemmer;

    #[test]
    fn paper_and_nltk_examples() {
        let s = PorterStemmer::new();
        for (word, stem) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("enjoy", "enjoy"),
            ("relational", "relat"),
            ("generously", "gener"),
            ("skies", "sky"),
            ("dying", "die"),
            ("Running", "run"),
            ("yyyy", "yyyi"),
            ("a", "a"),
            ("", ""),
        ] {
            assert_eq!(s.stem(word), stem, "{word}");
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let s = PorterStemmer::new();
        for w in [
            "*d",
            "a*d",
            "ied",
            "eed",
            "ing",
            "ed",
            "s",
            "ss",
            "İİİ",
            "ßßß",
            "éies",
            "\u{0}\u{0}\u{0}",
        ] {
            let _ = s.stem(w);
        }
    }
}
