//! `--classes`: which classes of a dataset to use, by index, range or name.

use std::path::Path;

use anyhow::Result;

use crate::{bail_input, input_error};

/// The most classes a dataset may have. Every reader checks labels against it before
/// allocating per-class storage: a CSV label of 4,000,000,000 is a typo, not 4 billion classes.
pub const MAX_CLASSES: usize = 100_000;

/// Class names listed one per line in a text file (blank lines ignored).
pub fn read_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error!("{}: cannot read as text: {e}", path.display()))?;
    Ok(names_of(&text))
}

/// ImageNet-1k's 1000 class names in index order (torchvision's list, which tells the two
/// cranes apart): what `--classes imagenet` names the classes of ImageNet weights.
pub fn imagenet() -> Vec<String> {
    names_of(include_str!("../../assets/imagenet_classes.txt"))
}

fn names_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// For keeping only `classes` (indices among `num_classes`): the positions of the examples to
/// keep, and their new labels 0..classes.len() in the order `classes` gives.
pub fn relabel(
    labels: &[usize],
    num_classes: usize,
    classes: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    let mut new_label = vec![None; num_classes];
    for (new, &old) in classes.iter().enumerate() {
        new_label[old] = Some(new);
    }
    labels
        .iter()
        .enumerate()
        .filter_map(|(i, &l)| new_label[l].map(|new| (i, new)))
        .unzip()
}

/// Parse a class list such as `0-4`, `5,7,9` or `Sandal,Bag` (names match case-insensitively)
/// against `names`, returning class indices in the order given. `all` selects every class.
pub fn parse_classes(spec: &str, names: &[String]) -> Result<Vec<usize>> {
    let spec = spec.trim();
    if spec.is_empty() {
        bail_input!("--classes is empty: give indices, ranges or names (e.g. 0-4), or `all`");
    }
    if spec.eq_ignore_ascii_case("all") {
        return Ok((0..names.len()).collect());
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let chosen: Vec<usize> = if let Some(i) = lookup(part, names)? {
            vec![i]
        } else if let Some((lo, hi)) = part
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
        {
            let (lo, hi): (usize, usize) = (lo, hi);
            if lo > hi {
                bail_input!("--classes: range {part} runs backwards (expected LOW-HIGH, e.g. 0-4)");
            }
            for i in [lo, hi] {
                check_index(i, names)?;
            }
            (lo..=hi).collect()
        } else {
            bail_input!(
                "--classes: unknown class {part:?}: expected an index 0-{}, a range such as 0-4, or one of: {}",
                names.len().saturating_sub(1),
                names.join(", ")
            );
        };
        for c in chosen {
            if out.contains(&c) {
                bail_input!("--classes: class {c} ({}) is listed twice", names[c]);
            }
            out.push(c);
        }
    }
    if out.len() < 2 {
        bail_input!(
            "--classes: {spec:?} selects {} class; a classifier needs at least 2",
            out.len()
        );
    }
    Ok(out)
}

/// A part that is a single index or a single class name.
fn lookup(part: &str, names: &[String]) -> Result<Option<usize>> {
    if let Ok(i) = part.parse::<usize>() {
        check_index(i, names)?;
        return Ok(Some(i));
    }
    Ok(names.iter().position(|n| n.eq_ignore_ascii_case(part)))
}

fn check_index(i: usize, names: &[String]) -> Result<()> {
    if i >= names.len() {
        bail_input!(
            "--classes: class index {i} is out of range: the dataset has {} classes (0-{})",
            names.len(),
            names.len().saturating_sub(1)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fashion() -> Vec<String> {
        crate::data::idx::FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn indices_ranges_and_names() {
        let n = fashion();
        assert_eq!(parse_classes("0-4", &n).unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(parse_classes("5,7,9", &n).unwrap(), vec![5, 7, 9]);
        assert_eq!(parse_classes("Sandal,bag", &n).unwrap(), vec![5, 8]);
        assert_eq!(
            parse_classes("t-shirt/top, 3-4", &n).unwrap(),
            vec![0, 3, 4]
        );
        assert_eq!(parse_classes("all", &n).unwrap().len(), 10);
    }

    #[test]
    fn bad_specs_are_explained() {
        let n = fashion();
        let msg = |s: &str| format!("{}", parse_classes(s, &n).unwrap_err());
        assert!(msg("3,12").contains("class index 12 is out of range"));
        assert!(msg("8-12").contains("out of range"));
        assert!(msg("Sock").contains("unknown class \"Sock\""));
        assert!(msg("1,1").contains("listed twice"));
        assert!(msg("4-2").contains("backwards"));
        assert!(msg("3").contains("at least 2"));
        assert!(msg("").contains("--classes is empty"));
        assert!(msg(" ").contains("--classes is empty"));
    }
}
