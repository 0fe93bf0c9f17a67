//! A guard run over a PyTorch pickle before any of it is read: every Python callable the
//! pickle names (`GLOBAL`, `STACK_GLOBAL`, `INST`, extension codes) must be one that rebuilds
//! tensors or containers, as with PyTorch's own `weights_only=True`. Anything else — `os.system`,
//! `builtins.eval`, `subprocess.Popen` — refuses the file. pretune never runs Python, so
//! nothing could execute anyway; refusing says clearly that the file is not plain weights.

use std::io::Read;
use std::path::Path;

use anyhow::Result;

use crate::{bail_input, input_error};

/// Callables a PyTorch state_dict pickle legitimately names.
fn allowed(module: &str, name: &str) -> bool {
    match module {
        "collections" => name == "OrderedDict",
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor"
                | "_rebuild_tensor_v2"
                | "_rebuild_tensor_v3"
                | "_rebuild_parameter"
                | "_rebuild_parameter_with_state"
        ),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => {
            name.ends_with("Storage")
                || matches!(
                    name,
                    "Size"
                        | "float32"
                        | "float16"
                        | "bfloat16"
                        | "float64"
                        | "int64"
                        | "int32"
                        | "int16"
                        | "int8"
                        | "uint8"
                        | "bool"
                )
        }
        "torch.storage" => name == "UntypedStorage",
        "builtins" | "__builtin__" => matches!(name, "set" | "frozenset"),
        "_codecs" => name == "encode",
        _ => false,
    }
}

/// Check the pickles of a `torch.save` file: the `data.pkl` of a zip archive, or the leading
/// pickles of the legacy format.
pub fn check_file(path: &Path) -> Result<()> {
    let bytes =
        std::fs::read(path).map_err(|e| input_error!("{}: cannot read: {e}", path.display()))?;
    let refuse = |what: String| input_error!("{}: {what}", path.display());
    if bytes.starts_with(b"PK") {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes))
            .map_err(|e| refuse(format!("not a readable PyTorch zip archive: {e}")))?;
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.map(|n| n.into_owned()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| refuse(format!("damaged zip directory: {e}")))?;
        let pickles: Vec<&String> = names.iter().filter(|n| n.ends_with(".pkl")).collect();
        if pickles.is_empty() {
            bail_input!(
                "{}: a zip archive without data.pkl: not a torch.save file",
                path.display()
            );
        }
        for name in pickles {
            let mut entry = archive
                .by_name(name)
                .map_err(|e| refuse(format!("cannot read {name}: {e}")))?;
            let mut data = Vec::new();
            entry
                .by_ref()
                .take(1 << 30)
                .read_to_end(&mut data)
                .map_err(|e| refuse(format!("cannot read {name}: {e}")))?;
            scan(&data, 1).map_err(|e| refuse(format!("{name}: {e}")))?;
        }
        Ok(())
    } else {
        // Legacy format: magic number, protocol, system info, the data, the storage keys.
        scan(&bytes, 5).map_err(refuse)
    }
}

#[derive(Clone)]
enum Item {
    Str(String),
    Mark,
    Other,
}

/// Walk up to `pickles` consecutive pickles in `data`, checking every callable they name.
/// Returns the message for the first one refused or the first malformed opcode.
pub fn scan(data: &[u8], pickles: usize) -> std::result::Result<(), String> {
    let mut pos = 0;
    for _ in 0..pickles {
        if pos >= data.len() {
            break;
        }
        pos = scan_one(data, pos)?;
    }
    Ok(())
}

fn scan_one(data: &[u8], mut pos: usize) -> std::result::Result<usize, String> {
    let truncated = || "truncated pickle".to_string();
    let take = |pos: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(truncated)?;
        let s = &data[*pos..end];
        *pos = end;
        Ok(s)
    };
    let line = |pos: &mut usize| -> std::result::Result<String, String> {
        let rest = &data[*pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(truncated)?;
        *pos += n + 1;
        Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
    };
    let le = |b: &[u8]| {
        b.iter()
            .rev()
            .fold(0usize, |acc, &x| (acc << 8) | x as usize)
    };
    let refuse = |module: &str, name: &str| {
        format!(
            "the pickle asks to call {module}.{name}; refused (pretune reads only tensors from \
             PyTorch files and never runs code from them; re-save the weights with \
             `torch.save(model.state_dict(), path)` or as safetensors)"
        )
    };
    // A shadow of the pickle machine's stack and memo, tracking only strings: enough to know
    // which names a STACK_GLOBAL combines.
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: std::collections::HashMap<usize, Item> = Default::default();
    let pop_mark = |stack: &mut Vec<Item>| {
        while let Some(item) = stack.pop() {
            if matches!(item, Item::Mark) {
                break;
            }
        }
    };
    loop {
        let op = *take(&mut pos, 1)?.first().unwrap();
        match op {
            b'.' => return Ok(pos), // STOP
            b'c' => {
                let (module, name) = (line(&mut pos)?, line(&mut pos)?);
                if !allowed(&module, &name) {
                    return Err(refuse(&module, &name));
                }
                stack.push(Item::Other);
            }
            0x93 => {
                // STACK_GLOBAL: module and name are the top two stack items.
                let name = stack.pop();
                let module = stack.pop();
                match (module, name) {
                    (Some(Item::Str(m)), Some(Item::Str(n))) if allowed(&m, &n) => {
                        stack.push(Item::Other)
                    }
                    (Some(Item::Str(m)), Some(Item::Str(n))) => return Err(refuse(&m, &n)),
                    _ => return Err("the pickle builds a callable's name in a way that cannot be checked; refused".into()),
                }
            }
            b'i' => {
                let (module, name) = (line(&mut pos)?, line(&mut pos)?);
                return Err(refuse(&module, &name));
            }
            0x82..=0x84 => {
                return Err("the pickle calls through the extension registry; refused".into());
            }
            // Strings.
            b'X' | b'T' | b'B' => {
                let n = le(take(&mut pos, 4)?);
                let s = take(&mut pos, n)?;
                stack.push(Item::Str(String::from_utf8_lossy(s).into_owned()));
            }
            0x8c | b'U' | b'C' => {
                let n = le(take(&mut pos, 1)?);
                let s = take(&mut pos, n)?;
                stack.push(Item::Str(String::from_utf8_lossy(s).into_owned()));
            }
            0x8d | 0x8e | 0x96 => {
                let n = le(take(&mut pos, 8)?);
                let s = take(&mut pos, n)?;
                stack.push(Item::Str(String::from_utf8_lossy(s).into_owned()));
            }
            b'V' | b'S' => {
                let s = line(&mut pos)?;
                stack.push(Item::Str(
                    s.trim_matches(|c| c == '\'' || c == '"').to_string(),
                ));
            }
            // Memo.
            b'p' => {
                let i = line(&mut pos)?
                    .trim()
                    .parse()
                    .map_err(|_| "bad PUT".to_string())?;
                memo.insert(i, stack.last().cloned().unwrap_or(Item::Other));
            }
            b'q' | b'r' => {
                let i = le(take(&mut pos, if op == b'q' { 1 } else { 4 })?);
                memo.insert(i, stack.last().cloned().unwrap_or(Item::Other));
            }
            0x94 => {
                let i = memo.len();
                memo.insert(i, stack.last().cloned().unwrap_or(Item::Other));
            }
            b'g' => {
                let i: usize = line(&mut pos)?
                    .trim()
                    .parse()
                    .map_err(|_| "bad GET".to_string())?;
                stack.push(memo.get(&i).cloned().unwrap_or(Item::Other));
            }
            b'h' | b'j' => {
                let i = le(take(&mut pos, if op == b'h' { 1 } else { 4 })?);
                stack.push(memo.get(&i).cloned().unwrap_or(Item::Other));
            }
            // Other values with arguments.
            b'K' | 0x80 => {
                take(&mut pos, 1)?;
                if op == b'K' {
                    stack.push(Item::Other);
                }
            }
            b'M' => {
                take(&mut pos, 2)?;
                stack.push(Item::Other);
            }
            b'J' => {
                take(&mut pos, 4)?;
                stack.push(Item::Other);
            }
            b'G' => {
                take(&mut pos, 8)?;
                stack.push(Item::Other);
            }
            0x95 => {
                take(&mut pos, 8)?; // FRAME
            }
            0x8a | 0x8b => {
                let n = le(take(&mut pos, if op == 0x8a { 1 } else { 4 })?);
                take(&mut pos, n)?;
                stack.push(Item::Other);
            }
            b'I' | b'L' | b'F' => {
                line(&mut pos)?;
                stack.push(Item::Other);
            }
            b'P' => {
                line(&mut pos)?;
                stack.push(Item::Other);
            }
            // No arguments.
            b'(' => stack.push(Item::Mark),
            b'N' | 0x88 | 0x89 | b'}' | b']' | b')' | 0x8f => stack.push(Item::Other),
            b'0' => {
                stack.pop();
            }
            b'1' => pop_mark(&mut stack),
            b'2' => {
                let top = stack.last().cloned().unwrap_or(Item::Other);
                stack.push(top);
            }
            // Pop to the mark, push one result.
            b't' | b'l' | b'd' | 0x91 => {
                pop_mark(&mut stack);
                stack.push(Item::Other);
            }
            // Pop to the mark into the object below.
            b'e' | b'u' | 0x90 => pop_mark(&mut stack),
            b'o' => {
                pop_mark(&mut stack);
                stack.push(Item::Other);
            }
            // Fixed pops and one push.
            0x85 | b'Q' => {
                stack.pop();
                stack.push(Item::Other);
            }
            0x86 | b'R' | 0x81 => {
                stack.truncate(stack.len().saturating_sub(2));
                stack.push(Item::Other);
            }
            0x87 | 0x92 => {
                stack.truncate(stack.len().saturating_sub(3));
                stack.push(Item::Other);
            }
            b'a' | b'b' => {
                stack.pop();
            }
            b's' => {
                stack.truncate(stack.len().saturating_sub(2));
            }
            0x97 | 0x98 => stack.push(Item::Other),
            other => return Err(format!("invalid pickle opcode 0x{other:02x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_calls_outside_the_allowlist() {
        // pickle.dumps of os.system("echo hi") with protocol 2 (GLOBAL + REDUCE) and protocol 4
        // (STACK_GLOBAL of memoised strings).
        let p2 = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03.";
        let err = scan(p2, 1).unwrap_err();
        assert!(err.contains("posix.system"), "{err}");
        let p4 = b"\x80\x04\x95\x22\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x07echo hi\x94\x85\x94R\x94.";
        let err = scan(p4, 1).unwrap_err();
        assert!(err.contains("posix.system"), "{err}");
        // An OrderedDict of plain values passes.
        let ok = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00aq\x02K\x01s.";
        scan(ok, 1).unwrap();
        assert!(scan(b"\x80\x02ccollections\n", 1).is_err());
    }

    /// Legacy `torch.save` files (EfficientNet-Lite's) end their state dict with a `BUILD`
    /// that sets `_metadata` on the OrderedDict: pickle.dumps of such a dict passes.
    #[test]
    fn accepts_an_ordered_dict_built_with_metadata() {
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00aq\x02K\x01s}q\x03X\t\x00\x00\x00_metadataq\x04h\x00)Rq\x05X\x00\x00\x00\x00q\x06}q\x07X\x07\x00\x00\x00versionq\x08K\x01sssb.";
        scan(p, 1).unwrap();
    }
}
