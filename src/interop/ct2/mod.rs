//! Reader for CTranslate2's `model.bin`, the weights file of a converted model (here OpenAI's
//! Whisper tiny.en as faster-whisper ships it).
//!
//! The layout, as CTranslate2's `Model::load` (src/models/model.cc) reads it and
//! `ModelSpec._serialize` (python/ctranslate2/specs/model_spec.py) writes it; all integers are
//! little-endian and nothing is aligned or padded:
//!
//! ```text
//! u32 binary_version                    1..=6 (6 is current)
//! string spec_name, u32 revision        only from version 2 on (else "" and 1)
//! u32 variable_count
//! variable_count times:
//!   string name
//!   u8 rank, then rank x u32 dims
//!   version >= 4: u8 dtype (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 byte_count
//!   version <= 3: u8 item_size (4 f32, 2 i16, 1 i8), u32 element_count
//!   the data: byte_count bytes, row-major
//! version >= 3: u32 alias_count, then alias_count x (string alias, string target)
//! ```
//!
//! A string is a u16 length that counts a trailing NUL, then that many bytes.
//!
//! Every size is checked against the bytes that are left before anything is allocated, so a
//! hostile header cannot make the reader allocate more than about twice the file's size.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Newest `binary_version` that CTranslate2 writes (`current_binary_version` in model.h).
pub const MAX_BINARY_VERSION: u32 = 6;

/// No CTranslate2 variable has more than 3 dimensions (conv weights); 8 leaves room and still
/// rejects garbage early.
pub const MAX_RANK: usize = 8;

/// A model.bin, with every variable converted to `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Model {
    pub binary_version: u32,
    /// The spec's class name, e.g. `WhisperSpec` ("" for version 1 files).
    pub spec: String,
    /// The spec's revision: bumped by CTranslate2 whenever that spec's weight layout changes
    /// (a rename, a new variable). Whisper's is 3.
    pub revision: u32,
    /// Variables by name. CTranslate2 writes them sorted by name, so this keeps the file order.
    pub variables: BTreeMap<String, Ct2Variable>,
    /// alias -> the variable it stands for (a deduplicated, tied weight such as Whisper's
    /// `decoder/projection/weight` -> `decoder/embeddings/weight`).
    pub aliases: BTreeMap<String, String>,
}

/// One stored tensor: its shape, the type it was stored in, and its values as `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Variable {
    /// Empty for a scalar (CTranslate2 stores flags and settings such as `num_heads` as
    /// rank-0 variables).
    pub shape: Vec<usize>,
    pub dtype: Ct2Dtype,
    /// Row-major, `shape.iter().product()` values. Floats convert exactly; integers convert
    /// exactly up to 2^24 in magnitude, beyond which `f32` rounds them. int8/int16 weights are
    /// the raw quantised values: the model's `<name>_scale` variable dequantises them.
    pub data: Vec<f32>,
}

/// The element types of CTranslate2's `DataType` enum (include/ctranslate2/types.h), in its
/// order: the discriminant is the code stored in version >= 4 files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32 = 0,
    I8 = 1,
    I16 = 2,
    I32 = 3,
    F16 = 4,
    Bf16 = 5,
}

impl Ct2Dtype {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    /// Versions before 4 stored only the item size; CTranslate2 maps it like this
    /// (`get_dtype_from_item_size`), so a 2-byte item is int16, never float16.
    fn from_item_size(size: u8) -> Option<Self> {
        Some(match size {
            4 => Self::F32,
            2 => Self::I16,
            1 => Self::I8,
            _ => return None,
        })
    }

    pub fn item_size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

impl fmt::Display for Ct2Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::Bf16 => "bfloat16",
        })
    }
}

impl Ct2Model {
    /// A variable by name or by alias.
    pub fn get(&self, name: &str) -> Option<&Ct2Variable> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        self.variables.get(name)
    }

    /// The value of a rank-0 variable such as `encoder/num_heads` or `decoder/pre_norm`.
    pub fn scalar(&self, name: &str) -> Option<f32> {
        self.get(name)
            .filter(|v| v.shape.is_empty())
            .map(|v| v.data[0])
    }
}

/// Why a model.bin could not be read. Displays as one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid CTranslate2 model.bin: {reason} (at byte {offset})", path.display())]
    Format {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
}

/// Read and convert a CTranslate2 `model.bin`.
pub fn read_ct2(path: &Path) -> Result<Ct2Model, Ct2Error> {
    // Reading the whole file allocates its real size, never a size a header claims.
    let bytes = std::fs::read(path).map_err(|source| Ct2Error::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_ct2(&bytes, path)
}

/// Parse model.bin bytes; `path` only names the file in errors.
pub fn parse_ct2(bytes: &[u8], path: &Path) -> Result<Ct2Model, Ct2Error> {
    let mut r = Reader { bytes, pos: 0 };
    parse(&mut r).map_err(|(offset, reason)| Ct2Error::Format {
        path: path.to_owned(),
        offset,
        reason,
    })
}

/// A parse failure: the byte offset where it was noticed, and what is wrong.
type Failure = (usize, String);

fn parse(r: &mut Reader<'_>) -> Result<Ct2Model, Failure> {
    if r.bytes.is_empty() {
        return Err((0, "the file is empty".into()));
    }
    let binary_version = r.u32("binary version")?;
    if !(1..=MAX_BINARY_VERSION).contains(&binary_version) {
        return Err(r.fail_at(
            0,
            format!("unsupported binary version {binary_version} (CTranslate2 writes 1 to {MAX_BINARY_VERSION})"),
        ));
    }
    let (spec, revision) = if binary_version >= 2 {
        (r.string("spec name")?, r.u32("spec revision")?)
    } else {
        (String::new(), 1)
    };

    let count_at = r.pos;
    let count = r.u32("variable count")? as usize;
    // Each variable takes at least 2 (name length) + 1 (NUL) + 1 (rank) + 1 (dtype) + 4 (size)
    // bytes, so a count the file cannot hold is caught before anything is reserved.
    const MIN_VARIABLE_BYTES: usize = 9;
    if count > r.remaining() / MIN_VARIABLE_BYTES {
        return Err(r.fail_at(
            count_at,
            format!(
                "{count} variables cannot fit in the {} bytes that follow",
                r.remaining()
            ),
        ));
    }

    let mut variables = BTreeMap::new();
    for _ in 0..count {
        let name_at = r.pos;
        let name = r.string("variable name")?;
        let variable = variable(r, &name, binary_version)?;
        if variables.insert(name.clone(), variable).is_some() {
            return Err(r.fail_at(name_at, format!("variable '{name}' appears twice")));
        }
    }

    let mut aliases = BTreeMap::new();
    if binary_version >= 3 {
        let count_at = r.pos;
        let count = r.u32("alias count")? as usize;
        // An alias is two strings of at least 3 bytes each.
        if count > r.remaining() / 6 {
            return Err(r.fail_at(
                count_at,
                format!(
                    "{count} aliases cannot fit in the {} bytes that follow",
                    r.remaining()
                ),
            ));
        }
        for _ in 0..count {
            let at = r.pos;
            let alias = r.string("alias name")?;
            let target = r.string("alias target")?;
            // CTranslate2 silently skips an alias to a missing variable; for a reader that
            // hands weights to another implementation that would only move the error later.
            if !variables.contains_key(&target) {
                return Err(r.fail_at(
                    at,
                    format!("alias '{alias}' names a missing variable '{target}'"),
                ));
            }
            if variables.contains_key(&alias) || aliases.insert(alias.clone(), target).is_some() {
                return Err(r.fail_at(at, format!("alias '{alias}' is defined twice")));
            }
        }
    }

    if r.remaining() != 0 {
        return Err(r.fail(format!(
            "{} unexpected bytes after the last {}",
            r.remaining(),
            if binary_version >= 3 {
                "alias"
            } else {
                "variable"
            }
        )));
    }
    Ok(Ct2Model {
        binary_version,
        spec,
        revision,
        variables,
        aliases,
    })
}

fn variable(r: &mut Reader<'_>, name: &str, binary_version: u32) -> Result<Ct2Variable, Failure> {
    let rank_at = r.pos;
    let rank = usize::from(r.u8("rank")?);
    if rank > MAX_RANK {
        return Err(r.fail_at(
            rank_at,
            format!("variable '{name}' has rank {rank} (at most {MAX_RANK} allowed)"),
        ));
    }
    let mut shape = Vec::with_capacity(rank);
    for _ in 0..rank {
        shape.push(r.u32("dimension")? as usize);
    }

    let type_at = r.pos;
    let (dtype, byte_count) = if binary_version >= 4 {
        let code = r.u8("dtype")?;
        let dtype = Ct2Dtype::from_code(code).ok_or_else(|| {
            r.fail_at(
                type_at,
                format!("variable '{name}' has unknown dtype code {code}"),
            )
        })?;
        (dtype, u64::from(r.u32("byte count")?))
    } else {
        let size = r.u8("item size")?;
        let dtype = Ct2Dtype::from_item_size(size).ok_or_else(|| {
            r.fail_at(
                type_at,
                format!("variable '{name}' has unknown item size {size}"),
            )
        })?;
        (dtype, u64::from(r.u32("element count")?) * u64::from(size))
    };

    // Checked in u64: eight u32 dimensions can overflow even that, hence checked_mul.
    let expected = shape
        .iter()
        .try_fold(dtype.item_size() as u64, |acc, &d| {
            acc.checked_mul(d as u64)
        })
        .filter(|&n| n == byte_count)
        .ok_or_else(|| {
            r.fail_at(
                type_at,
                format!(
                    "variable '{name}' of shape {shape:?} and type {dtype} \
                                        cannot hold the {byte_count} bytes it declares"
                ),
            )
        })?;
    if expected > r.remaining() as u64 {
        return Err(r.fail(format!(
            "truncated: variable '{name}' needs {expected} bytes but only {} remain",
            r.remaining()
        )));
    }
    let raw = r.take(expected as usize)?;
    Ok(Ct2Variable {
        shape,
        dtype,
        data: to_f32(raw, dtype),
    })
}

fn to_f32(raw: &[u8], dtype: Ct2Dtype) -> Vec<f32> {
    match dtype {
        Ct2Dtype::F32 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Ct2Dtype::F16 => raw
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Ct2Dtype::Bf16 => raw
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Ct2Dtype::I8 => raw.iter().map(|&b| f32::from(b as i8)).collect(),
        Ct2Dtype::I16 => raw
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Ct2Dtype::I32 => raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
    }
}

/// A cursor over the file's bytes whose reads fail, never panic, past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn fail(&self, reason: String) -> Failure {
        (self.pos, reason)
    }

    fn fail_at(&self, offset: usize, reason: String) -> Failure {
        (offset, reason)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Failure> {
        if n > self.remaining() {
            return Err(self.fail(format!(
                "truncated: {n} bytes needed, {} remain",
                self.remaining()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Failure> {
        let at = self.pos;
        let b = self
            .take(N)
            .map_err(|_| self.fail_at(at, format!("truncated: the file ends inside the {what}")))?;
        Ok(b.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self, what: &str) -> Result<u8, Failure> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, Failure> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// u16 length (counting the NUL), the bytes, the NUL. CTranslate2 rejects length 0.
    fn string(&mut self, what: &str) -> Result<String, Failure> {
        let at = self.pos;
        let len = usize::from(u16::from_le_bytes(self.array(what)?));
        if len == 0 {
            return Err(self.fail_at(
                at,
                format!("the {what} has length 0 (it must count its NUL)"),
            ));
        }
        let bytes = self.take(len).map_err(|_| {
            self.fail_at(
                at,
                format!(
                    "truncated: the {what} is {len} bytes long but only {} remain",
                    self.remaining()
                ),
            )
        })?;
        let (text, nul) = bytes.split_at(len - 1);
        if nul != [0] {
            return Err(self.fail_at(at, format!("the {what} is not NUL-terminated")));
        }
        String::from_utf8(text.to_vec())
            .map_err(|_| self.fail_at(at, format!("the {what} is not UTF-8")))
    }
}

/// Fuzz target body (cargo-fuzz style): parse arbitrary bytes. Must never panic; a model it
/// accepts must be self-consistent.
pub fn fuzz_read_ct2(data: &[u8]) {
    if let Ok(model) = parse_ct2(data, Path::new("fuzz/model.bin")) {
        for (name, v) in &model.variables {
            assert_eq!(v.data.len(), v.shape.iter().product::<usize>(), "{name}");
            assert!(v.shape.len() <= MAX_RANK);
        }
        for (alias, target) in &model.aliases {
            assert!(model.variables.contains_key(target), "{alias}");
            assert!(model.get(alias).is_some());
        }
    }
}

#[cfg(test)]
mod tests;
