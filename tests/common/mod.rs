//! Data the tests make themselves.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pretune::ImageSet;
use pretune::data::idx::encode_idx;

/// 28×28 images where class `c` is a bright 10×10 square at a class-specific place, on noise.
pub fn squares(per_class: usize, classes: usize, seed: u64) -> ImageSet {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8 % 60
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..per_class * classes {
        let c = i % classes;
        let (top, left) = ((c / 3) * 9, (c % 3) * 9);
        for y in 0..28 {
            for x in 0..28 {
                let inside = (top..top + 10).contains(&y) && (left..left + 10).contains(&x);
                pixels.push(if inside { 200 + noise() / 2 } else { noise() });
            }
        }
        labels.push(c);
    }
    ImageSet {
        channels: 1,
        height: 28,
        width: 28,
        pixels,
        labels,
        class_names: (0..classes).map(|c| format!("c{c}")).collect(),
    }
}

/// Write `train` and `test` as a gzipped IDX dataset directory, returning its path.
pub fn write_idx_dir(dir: &Path, train: &ImageSet, test: &ImageSet) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, set) in [("train", train), ("t10k", test)] {
        let images = encode_idx(&[set.len(), set.height, set.width], &set.pixels);
        let labels: Vec<u8> = set.labels.iter().map(|&l| l as u8).collect();
        write_gz(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")), &images);
        write_gz(
            &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            &encode_idx(&[set.len()], &labels),
        );
    }
    dir.to_path_buf()
}

pub fn write_gz(path: &Path, bytes: &[u8]) {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    std::fs::write(path, e.finish().unwrap()).unwrap();
}

/// The real Fashion-MNIST (apt-get install dataset-fashion-mnist), or `$PRETUNE_FASHION_MNIST`.
pub fn fashion_mnist() -> PathBuf {
    let dir = std::env::var_os("PRETUNE_FASHION_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    assert!(
        dir.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST not found at {}: apt-get install -y dataset-fashion-mnist",
        dir.display()
    );
    dir
}

/// A command line for the `pretune` binary: a string as a user types it (split on
/// whitespace; test paths have none), or a list of arguments when one holds spaces.
pub trait CommandLine {
    fn argv(&self) -> Vec<String>;
}

impl CommandLine for str {
    fn argv(&self) -> Vec<String> {
        self.split_whitespace().map(String::from).collect()
    }
}

impl CommandLine for String {
    fn argv(&self) -> Vec<String> {
        self.as_str().argv()
    }
}

impl CommandLine for [&str] {
    fn argv(&self) -> Vec<String> {
        self.iter().map(|a| a.to_string()).collect()
    }
}

impl<const N: usize> CommandLine for [&str; N] {
    fn argv(&self) -> Vec<String> {
        self[..].argv()
    }
}

impl CommandLine for Vec<String> {
    fn argv(&self) -> Vec<String> {
        self.clone()
    }
}

impl CommandLine for Vec<&str> {
    fn argv(&self) -> Vec<String> {
        self[..].argv()
    }
}

/// Run the `pretune` binary.
pub fn pretune<A: CommandLine + ?Sized>(args: &A) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pretune"))
        .args(args.argv())
        .output()
        .expect("run pretune")
}

/// Run pretune expecting success; returns stdout.
pub fn ok<A: CommandLine + ?Sized>(args: &A) -> String {
    let out = pretune(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pretune {:?} failed:\n{stderr}",
        args.argv()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run pretune with `args` (a run writing to `out` with `--save-every`) and stop it by Ctrl-C
/// as soon as it has saved its first resume state: it must exit 130, leaving that state.
pub fn interrupt_after_first_state<A: CommandLine + ?Sized>(args: &A, out: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pretune"))
        .args(args.argv())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !out.join("resume.state").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before any state was saved"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "stopped by Ctrl-C");
}

/// Runs pretune expecting exit code 2 and a one-line error without a panic; returns stderr.
pub fn input_error<A: CommandLine + ?Sized>(args: &A) -> String {
    let out = pretune(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "pretune {:?}: expected exit 2, stderr:\n{stderr}",
        args.argv()
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

/// The all-MiniLM-L6-v2 directory that `scripts/minilm.sh` unpacks, or `$PRETUNE_MINILM`.
pub fn minilm() -> PathBuf {
    let dir = std::env::var_os("PRETUNE_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found at {}: run scripts/minilm.sh",
        dir.display()
    );
    dir
}

/// The fortunes topic files (apt-get install fortunes).
pub fn fortunes() -> PathBuf {
    let dir = PathBuf::from("/usr/share/games/fortunes");
    assert!(
        dir.join("computers").is_file(),
        "fortunes not found at {}: apt-get install -y fortunes",
        dir.display()
    );
    dir
}

/// The device the library computes on in tests.
pub fn device() -> burn::prelude::Device {
    pretune::DeviceSpec::Cpu.device().unwrap()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Sequence pairs for a task with nothing to do with English: words of 3–5 letters from
/// `a`–`h`, each spelt backwards as upper-case tokens (`abc` → `C B A`). Writes `n` as a TSV.
pub fn reversed_words(path: &Path, n: usize) -> PathBuf {
    let mut rows = vec!["source\ttarget".to_string()];
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for _ in 0..n {
        let len = 3 + next() % 3;
        let word: String = (0..len)
            .map(|_| (b'a' + (next() % 8) as u8) as char)
            .collect();
        let target: Vec<String> = word
            .chars()
            .rev()
            .map(|c| c.to_ascii_uppercase().to_string())
            .collect();
        rows.push(format!("{word}\t{}", target.join(" ")));
    }
    std::fs::write(path, rows.join("\n")).unwrap();
    path.to_path_buf()
}
