//! Labelled texts: CSV/TSV/JSONL files with a text and a label column, or a directory of topic
//! files (one file per class, entries separated by lines holding only `%`, as the fortunes
//! package has them). Sources have no test split of their own: a text belongs to the test split
//! when the hash of its content says so (1 in 5), so `eval --split test` always sees the same
//! texts whatever the seed or the classes chosen.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::Split;
use super::classes::MAX_CLASSES;
use crate::{bail_input, input_error};

/// Texts with integer labels.
#[derive(Debug, Clone, Default)]
pub struct TextSet {
    pub texts: Vec<String>,
    /// One label per text: an index into `class_names`.
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
}

/// Which columns of a CSV/TSV/JSONL file hold the text and the label.
#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct Columns {
    /// Text data (CSV/TSV/JSONL): the column holding the text.
    #[arg(long = "text-column", default_value = "text")]
    #[serde(default = "text_column")]
    pub text: String,
    /// Text data (CSV/TSV/JSONL): the column holding the label.
    #[arg(long = "label-column", default_value = "label")]
    #[serde(default = "label_column")]
    pub label: String,
}

fn text_column() -> String {
    "text".into()
}
fn label_column() -> String {
    "label".into()
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            text: text_column(),
            label: label_column(),
        }
    }
}

/// Whether `text` belongs to the test split: decided by its content alone.
pub fn in_test_split(text: &str) -> bool {
    let digest = Sha256::digest(text.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap()) % 5 == 0
}

impl TextSet {
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The texts at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> TextSet {
        TextSet {
            texts: indices.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// Keep only the texts of `classes` and relabel them 0..classes.len() in that order.
    pub fn restrict_to(&self, classes: &[usize]) -> TextSet {
        let (keep, labels) = super::classes::relabel(&self.labels, self.class_names.len(), classes);
        TextSet {
            texts: keep.iter().map(|&i| self.texts[i].clone()).collect(),
            labels,
            class_names: classes
                .iter()
                .map(|&c| self.class_names[c].clone())
                .collect(),
        }
    }

    fn push(&mut self, text: String, label: usize, split: Split) {
        if in_test_split(&text) == (split == Split::Test) {
            self.texts.push(text);
            self.labels.push(label);
        }
    }
}

/// Load the `split` half of a text source: a topic directory, a `.txt` corpus (one text per
/// line, one class), or a `.csv`, `.tsv` or `.jsonl` file whose `columns` hold the text and the
/// label.
pub fn load(path: &Path, split: Split, columns: &Columns) -> Result<TextSet> {
    let set = if path.is_dir() {
        read_topics(path, split)?
    } else {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "csv" | "tsv" => read_delimited(
                path,
                split,
                columns,
                if ext == "tsv" { b'\t' } else { b',' },
            )?,
            "jsonl" | "json" => read_jsonl(path, split, columns)?,
            "txt" => read_lines(path, split)?,
            _ => bail_input!(
                "{}: not a text dataset (expected a directory of topic files, a .txt corpus, or a .csv, .tsv or .jsonl file)",
                path.display()
            ),
        }
    };
    if set.is_empty() {
        bail_input!("{}: no texts in its {split:?} split", path.display());
    }
    Ok(set)
}

/// A directory of topic files: every file without an extension is a class named after it
/// (fortunes' `.dat` and `.u8` index files are skipped).
fn read_topics(dir: &Path, split: Split) -> Result<TextSet> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| input_error!("{}: cannot list: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    let mut set = TextSet::default();
    if files.len() > MAX_CLASSES {
        bail_input!(
            "{}: {} topic files; at most {MAX_CLASSES} classes are supported",
            dir.display(),
            files.len()
        );
    }
    for (label, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file)
            .map_err(|e| input_error!("{}: cannot read: {e}", file.display()))?;
        // A binary file among the topics would otherwise become a class of garbage.
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) if !t.contains('\0') => t,
            _ => bail_input!(
                "{}: not a UTF-8 text file; a topic directory holds only text files (one per \
                 class, entries separated by lines holding only `%`)",
                file.display()
            ),
        };
        set.class_names
            .push(file.file_name().unwrap().to_string_lossy().into_owned());
        for entry in text
            .split("\n%\n")
            .map(str::trim)
            .filter(|e| !e.is_empty() && *e != "%")
        {
            set.push(entry.to_string(), label, split);
        }
    }
    Ok(set)
}

/// A plain corpus for masked language modelling: every non-blank line is a text, all of one
/// class named after the file.
fn read_lines(path: &Path, split: Split) -> Result<TextSet> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error!("{}: cannot read as UTF-8 text: {e}", path.display()))?;
    let mut set = TextSet {
        class_names: vec![
            path.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into(),
        ],
        ..Default::default()
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        set.push(line.to_string(), 0, split);
    }
    Ok(set)
}

/// Class names are the distinct label values, sorted. Rows are (text, label, where), `where`
/// naming the row for messages; an empty text or label is an error there.
fn labelled(path: &Path, rows: Vec<(String, String, String)>, split: Split) -> Result<TextSet> {
    for (text, label, at) in &rows {
        if text.trim().is_empty() {
            bail_input!("{}:{at}: the text is empty", path.display());
        }
        if label.trim().is_empty() {
            bail_input!("{}:{at}: the label is empty", path.display());
        }
    }
    let names: Vec<String> = rows
        .iter()
        .map(|(_, l, _)| l.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if names.len() > MAX_CLASSES {
        bail_input!(
            "{}: {} distinct labels; at most {MAX_CLASSES} classes are supported (is \
             --label-column the right column?)",
            path.display(),
            names.len()
        );
    }
    let mut set = TextSet {
        class_names: names.clone(),
        ..Default::default()
    };
    for (text, label, _) in rows {
        let index = names.binary_search(&label).expect("collected above");
        set.push(text, index, split);
    }
    Ok(set)
}

fn read_delimited(path: &Path, split: Split, columns: &Columns, delimiter: u8) -> Result<TextSet> {
    let shown = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(path)
        .map_err(|e| input_error!("{shown}: cannot read: {e}"))?;
    let headers = reader
        .headers()
        .map_err(|e| input_error!("{shown}: no header row: {e}"))?
        .clone();
    let column = |name: &str, flag: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            input_error!(
                "{shown}: no column {name:?} ({flag}); the columns are {}",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (t, l) = (
        column(&columns.text, "--text-column")?,
        column(&columns.label, "--label-column")?,
    );
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| input_error!("{shown}: row {}: {e}", i + 2))?;
        match (record.get(t), record.get(l)) {
            (Some(text), Some(label)) => rows.push((
                text.to_string(),
                label.to_string(),
                format!("row {}", i + 2),
            )),
            _ => bail_input!(
                "{shown}: row {} has no {} or {} field",
                i + 2,
                columns.text,
                columns.label
            ),
        }
    }
    labelled(path, rows, split)
}

fn read_jsonl(path: &Path, split: Split, columns: &Columns) -> Result<TextSet> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error!("{shown}: cannot read as UTF-8 text: {e}"))?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| input_error!("{shown}:{}: not a JSON object: {e}", i + 1))?;
        let field = |name: &str| match &value[name] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match (field(&columns.text), field(&columns.label)) {
            (Some(t), Some(l)) => rows.push((t, l, (i + 1).to_string())),
            _ => bail_input!(
                "{shown}:{}: no string field {:?} (--text-column) and {:?} (--label-column)",
                i + 1,
                columns.text,
                columns.label
            ),
        }
    }
    labelled(path, rows, split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_csv_and_jsonl_split_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let topics = dir.path().join("topics");
        std::fs::create_dir(&topics).unwrap();
        let entries = |word: &str| {
            (0..50)
                .map(|i| format!("{word} number {i}\nsecond line"))
                .collect::<Vec<_>>()
        };
        std::fs::write(topics.join("cats"), entries("cat").join("\n%\n") + "\n%\n").unwrap();
        std::fs::write(topics.join("dogs"), entries("dog").join("\n%\n")).unwrap();
        std::fs::write(topics.join("cats.dat"), [0u8, 1, 2]).unwrap();
        let cols = Columns::default();
        let train = load(&topics, Split::Train, &cols).unwrap();
        let test = load(&topics, Split::Test, &cols).unwrap();
        assert_eq!(train.class_names, ["cats", "dogs"]);
        assert_eq!(train.len() + test.len(), 100);
        assert!(test.len() > 5 && test.len() < 40);
        assert!(
            test.texts
                .iter()
                .all(|t| in_test_split(t) && !train.texts.contains(t))
        );

        let csv = dir.path().join("d.csv");
        std::fs::write(
            &csv,
            "label,text\npos,\"good, very good\"\nneg,bad\npos,fine\n",
        )
        .unwrap();
        let all: usize = [Split::Train, Split::Test]
            .iter()
            .map(|&s| load(&csv, s, &cols).unwrap().len())
            .sum();
        assert_eq!(all, 3);
        let err = load(
            &csv,
            Split::Train,
            &Columns {
                text: "body".into(),
                ..Columns::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("d.csv") && err.contains("\"body\"") && err.contains("label, text"),
            "{err}"
        );

        let jsonl = dir.path().join("d.jsonl");
        std::fs::write(
            &jsonl,
            "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 2}\n{\"text\": \"c\"\n",
        )
        .unwrap();
        let err = load(&jsonl, Split::Train, &cols).unwrap_err().to_string();
        assert!(err.contains("d.jsonl:3"), "{err}");

        // Empty texts and labels are named, not learned.
        std::fs::write(&csv, "label,text\npos,good\nneg,\n").unwrap();
        let err = load(&csv, Split::Train, &cols).unwrap_err().to_string();
        assert!(err.contains("d.csv:row 3: the text is empty"), "{err}");
        std::fs::write(&csv, "label,text\npos,good\n,bad\n").unwrap();
        let err = load(&csv, Split::Train, &cols).unwrap_err().to_string();
        assert!(err.contains("d.csv:row 3: the label is empty"), "{err}");

        // A binary file among the topics is refused by name.
        std::fs::write(topics.join("blob"), [0u8, 159, 146, 150, 0, 1]).unwrap();
        let err = load(&topics, Split::Train, &cols).unwrap_err().to_string();
        assert!(err.contains("blob: not a UTF-8 text file"), "{err}");
    }
}
