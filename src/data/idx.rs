//! The IDX format of MNIST and Fashion-MNIST: a big-endian header, then raw `u8` data.
//!
//! Header: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
//! then each dimension as a big-endian `u32`. Files may be gzip-compressed; we look at the
//! bytes, not the file name. Everything is validated before the data is allocated.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::read::GzDecoder;

use super::{ImageSet, Split, classes};
use crate::bail_input;

/// An n-dimensional array of bytes read from an IDX file.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Size of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// The values in row-major order.
    pub data: Vec<u8>,
}

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Datasets recognised by the sha256 of their label values (the data after the IDX header), so
/// that a copy anywhere gets its class names, and no other data gets them by its path.
const KNOWN_LABELS: [(&str, &[&str]); 2] = [
    // Fashion-MNIST, train-labels-idx1-ubyte and t10k-labels-idx1-ubyte.
    (
        "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        &FASHION_MNIST_CLASSES,
    ),
    (
        "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
        &FASHION_MNIST_CLASSES,
    ),
];

/// The class names of a known dataset with exactly these labels.
fn known_dataset(labels: &[u8]) -> Option<&'static [&'static str]> {
    let hash = crate::fs::sha256_hex(labels);
    KNOWN_LABELS
        .iter()
        .find(|(h, _)| *h == hash)
        .map(|(_, names)| *names)
}

/// Gzip streams expand at most ~1032× (deflate's limit); a header that claims more is lying.
const MAX_GZIP_RATIO: u64 = 1100;

/// Read an IDX file (raw or gzip) whose data type must be `u8` and whose rank must be `rank`.
pub fn read_idx(path: &Path, rank: usize) -> Result<IdxArray> {
    let shown = path.display();
    let file = File::open(path).with_context(|| format!("{shown}: cannot open"))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("{shown}: cannot stat"))?
        .len();
    let mut raw = BufReader::new(file);
    let mut magic2 = [0u8; 2];
    let peeked =
        read_up_to(&mut raw, &mut magic2).with_context(|| format!("{shown}: read error"))?;
    let gzipped = peeked == 2 && magic2 == [0x1f, 0x8b];
    let prefix = std::io::Cursor::new(magic2[..peeked].to_vec());
    let (mut reader, max_payload): (Box<dyn Read>, u64) = if gzipped {
        (
            Box::new(GzDecoder::new(prefix.chain(raw))),
            file_len.saturating_mul(MAX_GZIP_RATIO),
        )
    } else {
        (Box::new(prefix.chain(raw)), file_len)
    };

    let mut header = [0u8; 4];
    let n = read_up_to(&mut reader, &mut header).with_context(|| format!("{shown}: read error"))?;
    if n < 4 {
        bail_input!("{shown}: truncated: the file ends inside the 4-byte IDX header");
    }
    let [z0, z1, dtype, ndim] = header;
    if z0 != 0 || z1 != 0 {
        bail_input!(
            "{shown}: not an IDX file: magic number 0x{:08x}, expected 0x0000080{rank} (an IDX file of rank {rank})",
            u32::from_be_bytes(header)
        );
    }
    if dtype != 0x08 {
        bail_input!(
            "{shown}: IDX data type 0x{dtype:02x} is not supported, expected 0x08 (unsigned byte)"
        );
    }
    if ndim as usize != rank {
        bail_input!(
            "{shown}: wrong magic number 0x{:08x}: {ndim} dimensions, expected {rank} (magic 0x0000080{rank})",
            u32::from_be_bytes(header)
        );
    }
    let mut dims = Vec::with_capacity(rank);
    for d in 0..rank {
        let mut b = [0u8; 4];
        if read_up_to(&mut reader, &mut b).with_context(|| format!("{shown}: read error"))? < 4 {
            bail_input!(
                "{shown}: truncated: the file ends inside the header (dimension {d} of {rank})"
            );
        }
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let header_len = 4 + 4 * rank as u64;
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let expected = match expected {
        Some(e) if e <= max_payload.saturating_sub(if gzipped { 0 } else { header_len }) => e,
        _ => bail_input!(
            "{shown}: truncated: the header promises dimensions {dims:?} ({} bytes of data) but the file is only {file_len} bytes",
            expected.map_or("too many".to_string(), |e| e.to_string())
        ),
    };

    let mut data = Vec::with_capacity(initial_capacity(expected, file_len, gzipped));
    (&mut reader)
        .take(expected)
        .read_to_end(&mut data)
        .with_context(|| format!("{shown}: read error (corrupt gzip stream?)"))?;
    if (data.len() as u64) < expected {
        bail_input!(
            "{shown}: truncated: dimensions {dims:?} need {expected} bytes of data, found {}",
            data.len()
        );
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut reader, &mut extra).with_context(|| format!("{shown}: read error"))? != 0 {
        bail_input!(
            "{shown}: more data than dimensions {dims:?} describe: the header and the data disagree"
        );
    }
    Ok(IdxArray { dims, data })
}

/// Bytes to reserve up front for `expected` bytes of data. A raw file holds them (checked).
/// A gzip header's claim is bounded only by deflate's ratio (~1100x the file), so a crafted
/// 2 MB file could make us reserve 2.2 GB, and a 30 MB one more memory than the machine has
/// (an abort, not an error; the `idx` fuzz target's malloc limit reports it): reserve at most
/// 16x the file (MNIST's ratio is ~2x) and let the buffer grow with data actually decompressed.
fn initial_capacity(expected: u64, file_len: u64, gzipped: bool) -> usize {
    let bound = if gzipped {
        file_len.saturating_mul(16)
    } else {
        file_len
    };
    expected.min(bound) as usize
}

/// Like `read_exact`, but reports how many bytes it got instead of failing at end of file.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Encode an IDX file of `u8` values (used by tests and by `pretune export`-style tools).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Whether `dir` has the IDX images file of `split`.
pub fn idx_dir_holds(dir: &Path, split: Split) -> bool {
    let name = format!("{}-images-idx3-ubyte", idx_prefix(split));
    dir.join(&name).is_file() || dir.join(format!("{name}.gz")).is_file()
}

fn idx_prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

/// Load the `split` half of an IDX dataset directory (MNIST layout: `train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-…`).
///
/// Class names come from `classes.txt` in the directory (one per line) when present, else
/// from a known dataset recognised by its labels (Fashion-MNIST), else `0..N`.
pub fn load_idx_dir(dir: &Path, split: Split) -> Result<ImageSet> {
    if !dir.is_dir() {
        bail_input!(
            "{}: not a directory (expected a dataset directory with IDX files such as train-images-idx3-ubyte.gz)",
            dir.display()
        );
    }
    let prefix = idx_prefix(split);
    let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&images_path, 3)?;
    let labels = read_idx(&labels_path, 1)?;
    let (n, height, width) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        bail_input!(
            "{}: {} labels, but {} holds {n} images: the counts must agree",
            labels_path.display(),
            labels.dims[0],
            images_path.display()
        );
    }
    let known = known_dataset(&labels.data);
    let labels: Vec<usize> = labels.data.iter().map(|&l| l as usize).collect();
    let num_classes = labels.iter().max().map_or(0, |m| m + 1);
    let class_names = class_names_for(dir, num_classes, known)?;
    if let Some(bad) = labels.iter().position(|&l| l >= class_names.len()) {
        bail_input!(
            "{}: label {} at position {bad} is out of range: the dataset has {} classes",
            labels_path.display(),
            labels[bad],
            class_names.len()
        );
    }
    Ok(ImageSet {
        channels: 1,
        height,
        width,
        pixels: images.data,
        labels,
        class_names,
    })
}

fn class_names_for(dir: &Path, num_classes: usize, known: Option<&[&str]>) -> Result<Vec<String>> {
    let listed = dir.join("classes.txt");
    if listed.is_file() {
        let names = classes::read_names(&listed)?;
        if names.len() < num_classes {
            bail_input!(
                "{}: names {} classes, but the labels go up to {}",
                listed.display(),
                names.len(),
                num_classes - 1
            );
        }
        return Ok(names);
    }
    Ok(match known {
        Some(names) => names.iter().map(|s| s.to_string()).collect(),
        None => (0..num_classes).map(|i| i.to_string()).collect(),
    })
}

/// `dir/name`, or `dir/name.gz`, whichever exists.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail_input!(
        "{}: no {name} or {name}.gz in this directory",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn message(r: Result<IdxArray>) -> String {
        let err = r.unwrap_err();
        assert!(
            crate::error::is_input_error(&err),
            "not an input error: {err:#}"
        );
        format!("{err:#}")
    }

    #[test]
    fn reads_raw_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let bytes = encode_idx(&[2, 3, 4], &data);
        let raw = read_idx(&write(dir.path(), "a-idx3-ubyte", &bytes), 3).unwrap();
        let gz = read_idx(&write(dir.path(), "a-idx3-ubyte.gz", &gzip(&bytes)), 3).unwrap();
        assert_eq!(raw.dims, vec![2, 3, 4]);
        assert_eq!(raw.data, data);
        assert_eq!(raw, gz);
    }

    #[test]
    fn truncated_data_names_file_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = encode_idx(&[10, 28, 28], &vec![7; 10 * 784]);
        bytes.truncate(bytes.len() - 100);
        let p = write(dir.path(), "t.gz", &gzip(&bytes));
        let msg = message(read_idx(&p, 3));
        assert!(msg.contains("t.gz") && msg.contains("truncated"), "{msg}");
        assert!(msg.contains("7840") && msg.contains("7740"), "{msg}");
        // Raw: the size check fires before allocating anything.
        let p = write(dir.path(), "t.raw", &bytes);
        let msg = message(read_idx(&p, 3));
        assert!(msg.contains("t.raw") && msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn truncated_gzip_stream_is_an_input_error() {
        let dir = tempfile::tempdir().unwrap();
        let gz = gzip(&encode_idx(&[100, 28, 28], &vec![3; 100 * 784]));
        let p = write(dir.path(), "cut.gz", &gz[..gz.len() / 2]);
        let msg = message(read_idx(&p, 3));
        assert!(msg.contains("cut.gz"), "{msg}");
    }

    #[test]
    fn wrong_magic_and_rank_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "png", b"\x89PNG\r\n\x1a\n....");
        let msg = message(read_idx(&p, 3));
        assert!(
            msg.contains("not an IDX file") && msg.contains("0x00000803"),
            "{msg}"
        );
        // A label file (rank 1) where images (rank 3) were expected.
        let p = write(dir.path(), "labels", &encode_idx(&[3], &[1, 2, 3]));
        let msg = message(read_idx(&p, 3));
        assert!(msg.contains("1 dimensions, expected 3"), "{msg}");
    }

    #[test]
    fn header_claiming_huge_sizes_is_rejected_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "huge",
            &encode_idx(&[u32::MAX as usize, 4096, 4096], &[]),
        );
        let msg = message(read_idx(&p, 3));
        assert!(msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn gzip_header_claiming_more_than_the_file_holds_reserves_little() {
        // 2.1 MB of gzip whose header claims 2.2 GB (within deflate's ratio): the reader used to
        // reserve all of it up front (libFuzzer: out-of-memory (malloc(2200000000))).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..2_100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let gz = gzip(&encode_idx(&[2200, 1000, 1000], &noise));
        assert!(gz.len() as u64 * MAX_GZIP_RATIO >= 2_200_000_000);
        let dir = tempfile::tempdir().unwrap();
        let msg = message(read_idx(&write(dir.path(), "bomb.gz", &gz), 3));
        assert!(
            msg.contains("truncated") && msg.contains("2200000000"),
            "{msg}"
        );
        assert_eq!(
            initial_capacity(2_200_000_000, gz.len() as u64, true),
            16 * gz.len()
        );
        assert_eq!(initial_capacity(784, 800, false), 784);
    }

    #[test]
    fn trailing_bytes_mean_counts_disagree() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = encode_idx(&[2], &[0, 1]);
        bytes.push(9);
        let msg = message(read_idx(&write(dir.path(), "l", &bytes), 1));
        assert!(msg.contains("disagree"), "{msg}");
    }

    #[test]
    fn missing_file_is_an_input_error() {
        let msg = message(read_idx(
            Path::new("/nonexistent/train-images-idx3-ubyte.gz"),
            3,
        ));
        assert!(
            msg.contains("/nonexistent/train-images-idx3-ubyte.gz"),
            "{msg}"
        );
    }
}
