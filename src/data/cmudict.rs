//! Reading the CMU Pronouncing Dictionary's text format.
//!
//! One entry a line: a headword, whitespace, then ARPAbet phonemes separated by whitespace
//! (`tomato T AH M EY T OW`; CMU's own releases use upper-case words and two spaces). A second,
//! third … pronunciation repeats the word with `(2)`, `(3)`: `tomato(2) T AH M AA T OW`. Vowels
//! may carry a stress digit 0, 1 or 2 (`AH0`); Debian's pocketsphinx `cmudict-en-us.dict` has
//! none. Lines starting with `;;;` are comments, as are blank lines; a ` #` starts a trailing
//! comment (the GitHub cmudict.dict uses it). Phonemes must be among the 39 ARPAbet symbols.

use std::path::Path;

/// The 39 ARPAbet phonemes of CMUdict, without stress.
pub const PHONEMES: [&str; 39] = [
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH",
    "UW", "V", "W", "Y", "Z", "ZH",
];

/// One pronunciation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The headword as written, without the `(n)` suffix.
    pub word: String,
    /// 1 for the first pronunciation (`word`), n for `word(n)`.
    pub variant: u32,
    /// The phonemes as written (with stress digits when the file has them).
    pub phonemes: Vec<String>,
}

/// An error reading a dictionary: one line naming the file, the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {what}")]
pub struct CmudictError {
    pub file: String,
    /// 1-based; 0 when the whole file is at fault.
    pub line: usize,
    pub what: String,
}

/// Parse a whole dictionary file.
pub fn read_cmudict(path: impl AsRef<Path>) -> Result<Vec<Entry>, CmudictError> {
    let path = path.as_ref();
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| CmudictError {
        file: label.clone(),
        line: 0,
        what: format!("cannot read ({e})"),
    })?;
    parse_cmudict_bytes(&bytes, &label)
}

/// Parse dictionary bytes (UTF-8; each line checked); `label` names them in errors.
pub fn parse_cmudict_bytes(bytes: &[u8], label: &str) -> Result<Vec<Entry>, CmudictError> {
    let mut out = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let fail = |what: String| CmudictError {
            file: label.to_string(),
            line: n + 1,
            what,
        };
        let line = std::str::from_utf8(line).map_err(|_| fail("not UTF-8".into()))?;
        if let Some(e) = parse_line(line).map_err(fail)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Parse dictionary text; `label` names it in errors.
pub fn parse_cmudict(text: &str, label: &str) -> Result<Vec<Entry>, CmudictError> {
    parse_cmudict_bytes(text.as_bytes(), label)
}

/// One line: `Ok(None)` for comments and blank lines.
pub fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.starts_with(";;;") {
        return Ok(None);
    }
    let content = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    let mut fields = content.split_whitespace();
    let Some(head) = fields.next() else {
        return Ok(None);
    };
    let (word, variant) = match head.strip_suffix(')').and_then(|h| h.rsplit_once('(')) {
        Some((w, n)) => {
            let v: u32 = n
                .parse()
                .map_err(|_| format!("bad variant number in {head:?}"))?;
            if v < 1 {
                return Err(format!("bad variant number in {head:?}"));
            }
            (w, v)
        }
        None => (head, 1),
    };
    if word.is_empty() {
        return Err(format!("empty headword in {head:?}"));
    }
    let phonemes: Vec<String> = fields.map(str::to_string).collect();
    if phonemes.is_empty() {
        return Err(format!("{head:?} has no phonemes"));
    }
    if let Some(p) = phonemes.iter().find(|p| !is_phoneme(p)) {
        return Err(format!("{head:?}: unknown phoneme {p:?}"));
    }
    Ok(Some(Entry {
        word: word.to_string(),
        variant,
        phonemes,
    }))
}

/// An ARPAbet phoneme, with an optional stress digit 0–2 (on vowels only).
pub fn is_phoneme(p: &str) -> bool {
    let bare = strip_stress(p);
    PHONEMES.contains(&bare) && (bare.len() == p.len() || is_vowel(bare))
}

/// `AH0` → `AH`; anything else unchanged.
pub fn strip_stress(p: &str) -> &str {
    p.strip_suffix(['0', '1', '2']).unwrap_or(p)
}

fn is_vowel(p: &str) -> bool {
    matches!(
        p,
        "AA" | "AE"
            | "AH"
            | "AO"
            | "AW"
            | "AY"
            | "EH"
            | "ER"
            | "EY"
            | "IH"
            | "IY"
            | "OW"
            | "OY"
            | "UH"
            | "UW"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let e = parse_line("tomato(2) T AH M AA T OW").unwrap().unwrap();
        assert_eq!(
            (e.word.as_str(), e.variant, e.phonemes.len()),
            ("tomato", 2, 6)
        );
        let e = parse_line("ABKHAZIAN  AE0 B K AA1 Z IY0 AH0 N # place, foreign")
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.word.as_str(), e.variant, e.phonemes[0].as_str()),
            ("ABKHAZIAN", 1, "AE0")
        );
        assert_eq!(parse_line(";;; comment").unwrap(), None);
        assert_eq!(parse_line("   ").unwrap(), None);
        assert_eq!(
            parse_line("(2) AH").unwrap_err(),
            "empty headword in \"(2)\""
        );
        assert!(parse_line("word").is_err());
        assert!(parse_line("word(x) AH").is_err());
        assert!(parse_line("word(0) AH").is_err());
        assert!(parse_line("word AH3").is_err());
        assert!(parse_line("word K1").is_err());
        assert!(parse_line("word QQ").is_err());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_cmudict("a AH\n;;; x\nb QQ\n", "dict.txt").unwrap_err();
        assert_eq!(e.to_string(), "dict.txt:3: \"b\": unknown phoneme \"QQ\"");
        let e = parse_cmudict_bytes(b"a AH\n\xff B\n", "d").unwrap_err();
        assert_eq!(e.to_string(), "d:2: not UTF-8");
    }
}
