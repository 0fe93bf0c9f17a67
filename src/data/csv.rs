//! Images stored one per CSV row: `H*W` pixel values, then the label — scikit-learn's
//! handwritten digits (`digits.csv.gz`, 8×8, values 0–16) are the example.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use flate2::read::GzDecoder;

use super::classes::MAX_CLASSES;
use super::{ImageSet, Split};
use crate::bail_input;

/// Every `TEST_EVERY`-th row is the test split; the rest is training data.
pub const TEST_EVERY: usize = 5;

/// Read a CSV image file (plain or gzip). Pixel values are scaled so the file's largest value
/// becomes 255. Rows are split deterministically: every 5th row is `test`, the others `train`.
pub fn read_csv_images(path: &Path, split: Split) -> Result<ImageSet> {
    let shown = path.display();
    let raw = std::fs::read(path).with_context(|| format!("{shown}: cannot open"))?;
    let mut text = String::new();
    let decoded = if raw.starts_with(&[0x1f, 0x8b]) {
        GzDecoder::new(&raw[..]).read_to_string(&mut text)
    } else {
        (&raw[..]).read_to_string(&mut text)
    };
    decoded.map_err(|e| crate::input_error!("{shown}: not a readable (gzip) text file: {e}"))?;

    let (mut rows, mut width) = (Vec::new(), None);
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let values: Result<Vec<f32>, _> =
            line.split(',').map(|v| v.trim().parse::<f32>()).collect();
        let Ok(values) = values else {
            bail_input!("{shown}:{}: expected comma-separated numbers", line_no + 1);
        };
        if *width.get_or_insert(values.len()) != values.len() {
            bail_input!(
                "{shown}:{}: {} values, but the first row has {}",
                line_no + 1,
                values.len(),
                width.unwrap()
            );
        }
        rows.push(values);
    }
    let Some(n_values) = width else {
        bail_input!("{shown}: no rows")
    };
    let side = ((n_values - 1) as f64).sqrt() as usize;
    if side * side != n_values - 1 || side == 0 {
        bail_input!(
            "{shown}: rows have {n_values} values; expected a square image's pixels and then the label (e.g. 64 + 1)"
        );
    }
    let max = rows
        .iter()
        .flat_map(|r| &r[..n_values - 1])
        .fold(0f32, |m, &v| m.max(v))
        .max(1.0);
    // Every row's label is checked, not only this split's: the class count comes from all.
    for (i, row) in rows.iter().enumerate() {
        let label = row[n_values - 1];
        if label < 0.0 || label.fract() != 0.0 || label >= MAX_CLASSES as f32 {
            bail_input!(
                "{shown}:{}: label {label} is not a class index (0 to {})",
                i + 1,
                MAX_CLASSES - 1
            );
        }
    }
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (i, row) in rows.iter().enumerate() {
        if (i % TEST_EVERY == 0) != (split == Split::Test) {
            continue;
        }
        let label = row[n_values - 1];
        pixels.extend(
            row[..n_values - 1]
                .iter()
                .map(|&v| (v.clamp(0.0, max) / max * 255.0).round() as u8),
        );
        labels.push(label as usize);
    }
    let num_classes = rows
        .iter()
        .map(|r| r[n_values - 1] as usize + 1)
        .max()
        .unwrap_or(0);
    Ok(ImageSet {
        channels: 1,
        height: side,
        width: side,
        pixels,
        labels,
        class_names: (0..num_classes).map(|c| c.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_scales_and_splits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        let rows: Vec<String> = (0..10)
            .map(|i| format!("0,8,16,{},{}", i % 3, i % 2))
            .collect();
        std::fs::write(&p, rows.join("\n")).unwrap();
        let train = read_csv_images(&p, Split::Train).unwrap();
        let test = read_csv_images(&p, Split::Test).unwrap();
        assert_eq!((train.len(), test.len(), train.height), (8, 2, 2));
        assert_eq!(&test.pixels[..4], &[0, 128, 255, 0]);
        assert_eq!(train.class_names, vec!["0", "1"]);
    }

    #[test]
    fn ragged_or_non_square_rows_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, "1,2,3,4,0\n1,2,3,0\n").unwrap();
        let msg = read_csv_images(&p, Split::Train).unwrap_err().to_string();
        assert!(
            msg.contains("bad.csv:2") && msg.contains("first row has 5"),
            "{msg}"
        );
        std::fs::write(&p, "1,2,3,0\n").unwrap();
        assert!(
            read_csv_images(&p, Split::Train)
                .unwrap_err()
                .to_string()
                .contains("square")
        );
        // A label in the other split's rows is checked too, before any class is allocated.
        std::fs::write(&p, "1,2,3,4,4000000000\n1,2,3,4,0\n").unwrap();
        let msg = read_csv_images(&p, Split::Train).unwrap_err().to_string();
        assert!(
            msg.contains("bad.csv:1") && msg.contains("not a class index"),
            "{msg}"
        );
    }
}
