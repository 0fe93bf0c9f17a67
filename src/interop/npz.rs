//! Reading NumPy `.npz` archives (a zip of `.npy` members, as `np.savez` and
//! `np.savez_compressed` write them) into f32 arrays.
//!
//! `.npy` format (numpy `lib/format.py`): the magic `\x93NUMPY`, a major and minor version byte,
//! the header length (little-endian u16 for version 1, u32 for versions 2 and 3), then the header:
//! a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (29, 256), }` padded
//! with spaces and ended by a newline (ASCII/latin-1 in v1 and v2, UTF-8 in v3), then the data.
//! Accepted dtypes: `<f4`, `<f8`, `<i4`, `<i8`, `|u1` (converted to f32 with `as`: f8 and large
//! i4/i8 values round). Only C order (`fortran_order: False`).
//!
//! Hostile input: every size is checked before anything is allocated. A member's declared
//! (uncompressed) size must equal its `.npy` header plus `product(shape) × itemsize` exactly;
//! the sum of declared sizes and of the f32 output is bounded by a byte limit; a member is read
//! for exactly its declared size and must end there (a deflate stream that inflates past its
//! declared size is refused without being inflated further), and the zip CRC is checked.
//! Errors are one line: `FILE: member NAME: what is wrong`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

/// Default bound on the bytes one archive may make us hold: 4 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;
/// Longest `.npy` header accepted (numpy itself refuses headers over 10,000 bytes by default).
pub const MAX_HEADER_BYTES: usize = 1 << 16;

/// An error reading an `.npz` or `.npy`: one line naming the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {what}")]
pub struct NpzError {
    pub file: String,
    pub what: String,
}

/// A C-order array converted to f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The element types this reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    I32,
    I64,
    U8,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Self> {
        Some(match descr {
            "<f4" => Self::F32,
            "<f8" => Self::F64,
            "<i4" => Self::I32,
            "<i8" => Self::I64,
            "|u1" | "<u1" => Self::U8,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
            Self::U8 => 1,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Bytes before the data: magic, version, length field and header.
    pub data_offset: usize,
    /// `product(shape) × itemsize`.
    pub data_bytes: usize,
}

/// Read every `.npy` member of the `.npz` at `path` (name without `.npy` → array), holding at
/// most [`DEFAULT_MAX_BYTES`].
pub fn read_npz(path: impl AsRef<Path>) -> Result<BTreeMap<String, Array>, NpzError> {
    read_npz_limited(path, DEFAULT_MAX_BYTES)
}

/// [`read_npz`] with an explicit bound on the bytes held (declared member sizes plus f32 output).
pub fn read_npz_limited(
    path: impl AsRef<Path>,
    max_bytes: u64,
) -> Result<BTreeMap<String, Array>, NpzError> {
    let path = path.as_ref();
    let label = path.display().to_string();
    let file = File::open(path).map_err(|e| err(&label, format!("cannot open ({e})")))?;
    let len = file
        .metadata()
        .map_err(|e| err(&label, format!("cannot stat ({e})")))?
        .len();
    read_archive(BufReader::new(file), len, &label, max_bytes)
}

/// [`read_npz_limited`] over bytes in memory; `label` names them in errors.
pub fn read_npz_bytes(
    data: &[u8],
    label: &str,
    max_bytes: u64,
) -> Result<BTreeMap<String, Array>, NpzError> {
    read_archive(Cursor::new(data), data.len() as u64, label, max_bytes)
}

/// Read one `.npy` file held in memory.
pub fn read_npy_bytes(data: &[u8], label: &str) -> Result<Array, NpzError> {
    let header = parse_npy_header(data).map_err(|w| err(label, w))?;
    let body = &data[header.data_offset.min(data.len())..];
    if body.len() != header.data_bytes {
        return Err(err(label, size_mismatch(&header, body.len())));
    }
    Ok(Array {
        data: convert(header.dtype, body),
        shape: header.shape,
    })
}

fn err(file: &str, what: impl Into<String>) -> NpzError {
    NpzError {
        file: file.to_string(),
        what: what.into(),
    }
}

fn size_mismatch(h: &NpyHeader, have: usize) -> String {
    format!(
        "shape {:?} of {:?} needs {} data bytes but there are {}",
        h.shape, h.dtype, h.data_bytes, have
    )
}

fn read_archive<R: Read + Seek>(
    reader: R,
    archive_len: u64,
    label: &str,
    max_bytes: u64,
) -> Result<BTreeMap<String, Array>, NpzError> {
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|e| err(label, format!("not a readable zip archive ({e})")))?;
    let mut budget = max_bytes;
    let mut out = BTreeMap::new();
    for index in 0..zip.len() {
        let mut entry = zip
            .by_index(index)
            .map_err(|e| err(label, format!("zip member #{index}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| err(label, format!("zip member #{index}: bad name ({e})")))?
            .into_owned();
        if entry.is_dir() {
            continue;
        }
        let fail = |what: String| err(label, format!("member {name:?}: {what}"));
        let Some(key) = name.strip_suffix(".npy") else {
            return Err(fail("not an .npy file".into()));
        };
        if entry.encrypted() {
            return Err(fail("encrypted".into()));
        }
        let declared = entry.size();
        if entry.compressed_size() > archive_len {
            return Err(fail(format!(
                "claims {} compressed bytes but the archive has {archive_len}",
                entry.compressed_size()
            )));
        }
        if declared > budget {
            return Err(fail(format!(
                "declares {declared} bytes, over the {max_bytes}-byte limit"
            )));
        }
        budget -= declared;
        // The header: the fixed prefix, then the dict, bounded by the declared size.
        let mut head = vec![0u8; 12.min(declared as usize)];
        entry
            .read_exact(&mut head)
            .map_err(|e| fail(format!("cannot read the .npy header ({e})")))?;
        let (prefix, header_len) = npy_prefix(&head).map_err(&fail)?;
        if (prefix + header_len) as u64 > declared {
            return Err(fail(format!(
                "header of {header_len} bytes does not fit in the member's {declared} bytes"
            )));
        }
        let mut bytes = head;
        bytes.resize(prefix + header_len, 0);
        if bytes.len() > 12 {
            entry
                .read_exact(&mut bytes[12..])
                .map_err(|e| fail(format!("cannot read the .npy header ({e})")))?;
        } else {
            bytes.truncate(prefix + header_len);
        }
        let header = parse_npy_header(&bytes).map_err(&fail)?;
        let body_len = declared - header.data_offset as u64;
        if body_len != header.data_bytes as u64 {
            return Err(fail(size_mismatch(&header, body_len as usize)));
        }
        let out_bytes = (header.data_bytes / header.dtype.size()) as u64 * 4;
        if out_bytes > budget {
            return Err(fail(format!(
                "{out_bytes} bytes of f32 exceed the {max_bytes}-byte limit"
            )));
        }
        budget -= out_bytes;
        let mut body = vec![0u8; header.data_bytes];
        entry
            .read_exact(&mut body)
            .map_err(|e| fail(format!("data ends early or is corrupt ({e})")))?;
        let mut probe = [0u8; 1];
        match entry.read(&mut probe) {
            Ok(0) => {}
            Ok(_) => {
                return Err(fail(format!(
                    "holds more than its declared {declared} bytes"
                )));
            }
            Err(e) => return Err(fail(format!("corrupt ({e})"))),
        }
        if out
            .insert(
                key.to_string(),
                Array {
                    data: convert(header.dtype, &body),
                    shape: header.shape,
                },
            )
            .is_some()
        {
            return Err(fail("appears twice".into()));
        }
    }
    Ok(out)
}

/// Magic and version; returns (bytes before the header, header length).
fn npy_prefix(b: &[u8]) -> Result<(usize, usize), String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (bad magic)".into());
    }
    match b[6] {
        1 => Ok((10, u16::from_le_bytes([b[8], b[9]]) as usize)),
        2 | 3 if b.len() >= 12 => Ok((12, u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize)),
        2 | 3 => Err("truncated .npy header".into()),
        v => Err(format!("unsupported .npy version {v}.{}", b[7])),
    }
    .and_then(|(p, h)| {
        if h > MAX_HEADER_BYTES {
            Err(format!(
                "header of {h} bytes is longer than {MAX_HEADER_BYTES}"
            ))
        } else {
            Ok((p, h))
        }
    })
}

/// Parse the magic, version and header dict at the start of `b` (which may hold more).
pub fn parse_npy_header(b: &[u8]) -> Result<NpyHeader, String> {
    let (prefix, len) = npy_prefix(b)?;
    let raw = b.get(prefix..prefix + len).ok_or("truncated .npy header")?;
    let text: String = if b[6] == 3 {
        std::str::from_utf8(raw)
            .map_err(|_| "header is not UTF-8")?
            .to_string()
    } else {
        raw.iter().map(|&c| c as char).collect() // latin-1
    };
    let (descr, fortran, shape) = parse_dict(&text)?;
    if fortran {
        return Err("fortran_order arrays are not supported (C order only)".into());
    }
    let dtype = Dtype::parse(&descr).ok_or_else(|| format!("unsupported dtype {descr:?}"))?;
    let elements = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let data_bytes = elements
        .checked_mul(dtype.size())
        .filter(|&n| n <= isize::MAX as usize / 4)
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    Ok(NpyHeader {
        dtype,
        shape,
        data_offset: prefix + len,
        data_bytes,
    })
}

/// The header dict: exactly the keys descr, fortran_order and shape, in any order.
fn parse_dict(text: &str) -> Result<(String, bool, Vec<usize>), String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let bad = |what: &str| format!("bad .npy header ({what}): {:?}", text.trim_end());
    p.ws();
    if !p.eat(b'{') {
        return Err(bad("no '{'"));
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string().ok_or_else(|| bad("key"))?;
        p.ws();
        if !p.eat(b':') {
            return Err(bad("no ':'"));
        }
        p.ws();
        let dup = match key.as_str() {
            "descr" => descr
                .replace(p.string().ok_or_else(|| bad("descr"))?)
                .is_some(),
            "fortran_order" => fortran
                .replace(p.boolean().ok_or_else(|| bad("fortran_order"))?)
                .is_some(),
            "shape" => shape
                .replace(p.tuple().ok_or_else(|| bad("shape"))?)
                .is_some(),
            _ => return Err(bad(&format!("unknown key {key:?}"))),
        };
        if dup {
            return Err(bad(&format!("{key} twice")));
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            if !p.eat(b'}') {
                return Err(bad("no ',' or '}'"));
            }
            break;
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(bad("text after '}'"));
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err(bad("missing key")),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Option<String> {
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.i + 1;
        let end = start + self.s.get(start..)?.iter().position(|&c| c == q)?;
        self.i = end + 1;
        String::from_utf8(self.s[start..end].to_vec()).ok()
    }

    fn boolean(&mut self) -> Option<bool> {
        for (word, v) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s.get(self.i..self.i + word.len()) == Some(word) {
                self.i += word.len();
                return Some(v);
            }
        }
        None
    }

    /// `()`, `(5,)`, `(2, 3)`, `(2, 3,)`.
    fn tuple(&mut self) -> Option<Vec<usize>> {
        if !self.eat(b'(') {
            return None;
        }
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                break;
            }
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).ok()?;
            dims.push(digits.parse::<usize>().ok()?);
            self.ws();
            if !self.eat(b',') {
                self.ws();
                if !self.eat(b')') {
                    return None;
                }
                if dims.len() == 1 {
                    return None; // `(5)` is an int in Python, not a tuple
                }
                break;
            }
        }
        Some(dims)
    }
}

fn convert(dtype: Dtype, b: &[u8]) -> Vec<f32> {
    match dtype {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::I32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        Dtype::I64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::U8 => b.iter().map(|&v| v as f32).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((h.len() as u16).to_le_bytes());
        v.extend(h.as_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn header_forms() {
        let a = read_npy_bytes(
            &npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                &[0, 0, 128, 63, 0, 0, 0, 64],
            ),
            "t",
        )
        .unwrap();
        assert_eq!((a.shape, a.data), (vec![2], vec![1.0, 2.0]));
        let a = read_npy_bytes(
            &npy(
                "{\"shape\": (), \"fortran_order\": False, \"descr\": \"|u1\"}",
                &[7],
            ),
            "t",
        )
        .unwrap();
        assert_eq!((a.shape, a.data), (vec![], vec![7.0]));
        for bad in [
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }",
            "{'descr': '<f4', 'fortran_order': False, }",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 9999999999), }",
        ] {
            let e = read_npy_bytes(&npy(bad, &[0; 8]), "t.npy").unwrap_err();
            assert!(e.to_string().starts_with("t.npy: "), "{e}");
        }
    }
}
