//! Readers of sequence data and weights: NumPy `.npz` archives (real numpy output, the g2p_en
//! checkpoint, hostile archives) and the CMU Pronouncing Dictionary.

use pretune::data::cmudict::{parse_cmudict_bytes, read_cmudict};
use pretune::interop::npz::{read_npy_bytes, read_npz, read_npz_bytes};
use std::collections::HashMap;
use std::io::{Cursor, Write};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

// The .npz reader on real numpy output, the g2p_en checkpoint, and hostile archives.
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

fn f4_header(shape: &str) -> String {
    format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}")
}

fn zip_of(members: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, method) in members {
        w.start_file(
            *name,
            SimpleFileOptions::default().compression_method(*method),
        )
        .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn error(data: &[u8]) -> String {
    read_npz_bytes(data, "x.npz", 1 << 30)
        .unwrap_err()
        .to_string()
}

#[test]
fn numpy_written_members() {
    let a = read_npz(std::path::Path::new("tests/fixtures").join("npz_numpy.npz")).unwrap();
    let get = |k: &str| (a[k].shape.clone(), a[k].data.clone());
    assert_eq!(
        get("f4"),
        (vec![2, 3], vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    );
    assert_eq!(get("f8"), (vec![3], vec![0.125, -2.5, 1024.0]));
    assert_eq!(get("i4"), (vec![2, 2], vec![-3.0, 0.0, 7.0, 2147483647.0]));
    assert_eq!(get("i8"), (vec![], vec![-9.0]));
    assert_eq!(get("u1"), (vec![4], vec![0.0, 1.0, 128.0, 255.0]));
    assert_eq!(get("empty"), (vec![0, 3], vec![]));
    assert_eq!(get("v2"), (vec![2], vec![1.5, -0.25]));
    assert_eq!(get("v3"), (vec![1, 1, 2], vec![3.0, 4.0]));
    assert_eq!(a.len(), 8);
    let e = read_npz(std::path::Path::new("tests/fixtures").join("npz_fortran.npz"))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("npz_fortran.npz: member \"f.npy\": fortran_order arrays are not supported (C order only)"), "{e}");
    let e = read_npz(std::path::Path::new("tests/fixtures").join("npz_bigendian.npz"))
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("member \"b.npy\": unsupported dtype \">f4\""),
        "{e}"
    );
}

#[test]
fn g2p_en_checkpoint() {
    let path = std::path::Path::new("models/g2p-en/checkpoint20.npz");
    if !path.exists() {
        eprintln!(
            "skipped: {} not found (bash scripts/g2p.sh)",
            path.display()
        );
        return;
    }
    let v = read_npz(path).unwrap();
    let shapes: Vec<(&str, Vec<usize>)> = v
        .iter()
        .map(|(k, a)| (k.as_str(), a.shape.clone()))
        .collect();
    let mut want = vec![
        ("enc_emb", vec![29, 256]),
        ("dec_emb", vec![74, 256]),
        ("fc_w", vec![74, 256]),
        ("fc_b", vec![74]),
    ];
    for p in ["enc", "dec"] {
        for (s, shape) in [
            ("w_ih", vec![768, 256]),
            ("w_hh", vec![768, 256]),
            ("b_ih", vec![768]),
            ("b_hh", vec![768]),
        ] {
            want.push((Box::leak(format!("{p}_{s}").into_boxed_str()), shape));
        }
    }
    want.sort();
    assert_eq!(shapes, want);
    // Values as numpy prints them (f32 widened to f64).
    let at = |k: &str, i: usize| f64::from(v[k].data[i]);
    assert_eq!(at("enc_emb", 3 * 256), -0.08606979250907898);
    assert_eq!(at("enc_emb", 3 * 256 + 2), -1.3195526599884033);
    assert_eq!(at("fc_b", 73), 0.058137986809015274);
    assert_eq!(at("dec_w_hh", 767 * 256 + 255), 0.05062803998589516);
    let sum: f64 = v
        .values()
        .flat_map(|a| a.data.iter())
        .map(|&x| x as f64)
        .sum();
    assert!((sum - 539.361263960317).abs() < 1e-6, "{sum}");
}

#[test]
fn hostile_members_are_refused_with_one_line_errors() {
    let st = CompressionMethod::Stored;
    let df = CompressionMethod::Deflated;
    let good = npy(&f4_header("(2,)"), &[0, 0, 128, 63, 0, 0, 0, 64]);
    assert_eq!(
        read_npz_bytes(&zip_of(&[("a.npy", &good, df)]), "x", 1 << 20).unwrap()["a"].data,
        [1.0, 2.0]
    );

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"not a zip at all".to_vec(),
            "x.npz: not a readable zip archive",
        ),
        (
            zip_of(&[("a.npy", b"NOTNUMPY\x01\x00\x10\x00{}", st)]),
            "member \"a.npy\": not an .npy file (bad magic)",
        ),
        (
            zip_of(&[("a.npy", b"\x93NU", st)]),
            "member \"a.npy\": not an .npy file (bad magic)",
        ),
        (
            zip_of(&[("a.npy", &good[..good.len() - 3], st)]),
            "needs 8 data bytes but there are 5",
        ),
        (
            zip_of(&[("a.npy", &npy(&f4_header("(100,)"), &[0; 8]), df)]),
            "shape [100] of F32 needs 400 data bytes but there are 8",
        ),
        (
            zip_of(&[(
                "a.npy",
                &npy(&f4_header("(4294967296, 4294967296, 4294967296)"), &[]),
                st,
            )]),
            "overflows",
        ),
        (
            zip_of(&[("a.npy", &npy(&f4_header("(4611686018427387904,)"), &[]), st)]),
            "is too large",
        ),
        (
            zip_of(&[("a.npy", &npy(&f4_header("(1099511627776,)"), &[]), st)]),
            "needs 4398046511104 data bytes but there are 0",
        ),
        (
            zip_of(&[(
                "a.npy",
                &npy(
                    "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 8],
                ),
                st,
            )]),
            "unsupported dtype \"<c8\"",
        ),
        (
            zip_of(&[(
                "a.npy",
                &npy(
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
                    &[0; 8],
                ),
                st,
            )]),
            "fortran_order",
        ),
        (
            zip_of(&[(
                "a.npy",
                &npy("{'descr': '<f4', 'shape': (2,), }", &[0; 8]),
                st,
            )]),
            "missing key",
        ),
        (zip_of(&[("a.npy", &npy("[1, 2]", &[0; 8]), st)]), "no '{'"),
        (
            zip_of(&[("a.npy", b"\x93NUMPY\x01\x00\xff\xff{", st)]),
            "does not fit in the member's",
        ),
        (
            zip_of(&[("a.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{", st)]),
            "header of 2147483647 bytes is longer than 65536",
        ),
        (
            zip_of(&[("a.npy", b"\x93NUMPY\x09\x00\x10\x00", st)]),
            "unsupported .npy version 9.0",
        ),
        (
            zip_of(&[("a.txt", b"hello", st)]),
            "member \"a.txt\": not an .npy file",
        ),
    ];
    for (data, want) in cases {
        let e = error(&data);
        assert!(e.contains(want), "expected {want:?} in {e:?}");
        assert!(e.starts_with("x.npz: ") && !e.contains('\n'), "{e:?}");
    }
    // A truncated archive, cut anywhere.
    let real = std::fs::read(std::path::Path::new("tests/fixtures").join("npz_numpy.npz")).unwrap();
    for cut in 0..real.len() {
        assert!(
            read_npz_bytes(&real[..cut], "t", 1 << 20).is_err(),
            "cut at {cut}"
        );
    }
    // The byte limit covers declared sizes and the f32 output.
    let e = read_npz_bytes(&real, "t", 100).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
}

/// A deflated member whose real data is far larger than its zip headers declare: read up to the
/// declared size only, then refused.
#[test]
fn zip_bomb_bounded_by_declared_size() {
    let big = npy(&f4_header("(4000000,)"), &vec![0u8; 16_000_000]);
    let mut data = zip_of(&[("a.npy", &big, CompressionMethod::Deflated)]);
    assert!(data.len() < 100_000);
    // Over the limit: refused before inflating.
    let e = read_npz_bytes(&data, "bomb.npz", 1 << 20)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("declares 16000128 bytes, over the 1048576-byte limit"),
        "{e}"
    );
    // Lie in the local and central headers: declare the header plus 400 bytes, and a shape of 100.
    let small = npy(&f4_header("(100,)"), &[]);
    let old = big[..small.len()].to_vec();
    let declared = (small.len() + 400) as u32;
    for (sig, off) in [
        ([0x50, 0x4b, 0x03, 0x04], 22),
        ([0x50, 0x4b, 0x01, 0x02], 24),
    ] {
        let at = data.windows(4).position(|w| w == sig).unwrap();
        data[at + off..at + off + 4].copy_from_slice(&declared.to_le_bytes());
    }
    // The header bytes are inside the deflate stream, so the shape stays 4000000: a mismatch.
    let e = read_npz_bytes(&data, "bomb.npz", 1 << 30)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bomb.npz: member \"a.npy\": "), "{e}");
    assert_eq!(old.len(), small.len());
    // Same lie with a header that agrees with the declared size: the stream inflates past it.
    let mut liar = npy(&f4_header("(100,)"), &[]);
    liar.extend(vec![0u8; 16_000_000]);
    let mut data = zip_of(&[("a.npy", &liar, CompressionMethod::Deflated)]);
    for (sig, off) in [
        ([0x50, 0x4b, 0x03, 0x04], 22),
        ([0x50, 0x4b, 0x01, 0x02], 24),
    ] {
        let at = data.windows(4).position(|w| w == sig).unwrap();
        data[at + off..at + off + 4].copy_from_slice(&declared.to_le_bytes());
    }
    let e = read_npz_bytes(&data, "bomb.npz", 1 << 30)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bomb.npz: member \"a.npy\": "), "{e}");
    eprintln!("{e}");
}

/// A few thousand mutations of real archives: no panic, whatever the bytes.
#[test]
fn fuzz_mutations_never_panic() {
    let mut seeds =
        vec![std::fs::read(std::path::Path::new("tests/fixtures").join("npz_numpy.npz")).unwrap()];
    seeds.push(zip_of(&[(
        "a.npy",
        &npy(&f4_header("(2, 3)"), &[1; 24]),
        CompressionMethod::Stored,
    )]));
    seeds.push(zip_of(&[(
        "b.npy",
        &npy(&f4_header("(3,)"), &[2; 12]),
        CompressionMethod::Deflated,
    )]));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for round in 0..6000 {
        let mut d = seeds[round % seeds.len()].clone();
        for _ in 0..1 + next() % 8 {
            let len = d.len().max(1);
            let at = (next() as usize) % len;
            match next() % 6 {
                0 if !d.is_empty() => d[at] ^= 1 << (next() % 8),
                1 if !d.is_empty() => d[at] = next() as u8,
                2 if !d.is_empty() => d[at] = [0, 0xff, 0x7f, 0x80][(next() % 4) as usize],
                3 => d.truncate(at),
                4 => d.insert(at.min(d.len()), next() as u8),
                _ if at + 4 <= d.len() => {
                    d[at..at + 4].copy_from_slice(&(next() as u32).to_le_bytes())
                }
                _ => {}
            }
        }
        parsed += usize::from(read_npz_bytes(&d, "m", 1 << 24).is_ok());
    }
    eprintln!("6000 mutated archives, {parsed} still read");
    // The bare .npy parser, on mutated headers.
    let base = npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }",
        &[3; 16],
    );
    for _ in 0..4000 {
        let mut d = base.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % d.len();
            let alphabet = b"(),' 0123456789{}:<|f48iuTrueFals\x00\xff";
            d[at] = alphabet[(next() % alphabet.len() as u64) as usize];
        }
        let _ = read_npy_bytes(&d, "m.npy");
        let _ = read_npy_bytes(&d[..(next() as usize) % d.len()], "m.npy");
    }
}

// The Debian CMUdict (pocketsphinx-en-us) and the g2p sample's dictionary column.
const DICT: &str = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";

#[test]
fn reads_the_debian_dictionary() {
    if !std::path::Path::new(DICT).exists() {
        eprintln!("skipped: {DICT} not found (apt-get install pocketsphinx-en-us)");
        return;
    }
    let entries = read_cmudict(DICT).unwrap();
    assert_eq!(entries.len(), 134_723);
    let mut first: HashMap<&str, &[String]> = HashMap::new();
    for e in &entries {
        if e.variant == 1 {
            assert!(
                first.insert(&e.word, &e.phonemes).is_none(),
                "{} twice",
                e.word
            );
        }
    }
    let tomato: Vec<_> = entries.iter().filter(|e| e.word == "tomato").collect();
    assert_eq!(tomato.len(), 2);
    assert_eq!(tomato[1].variant, 2);
    assert_eq!(tomato[1].phonemes.join(" "), "T AH M AA T OW");
    // The sample's cmudict column is the first pronunciation.
    let sample = std::fs::read_to_string(
        std::path::Path::new("tests/fixtures").join("g2p_cmudict_sample.tsv"),
    )
    .unwrap();
    for line in sample.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(first[cols[0]].join(" "), cols[2], "{}", cols[0]);
    }
}

#[test]
fn error_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("seqkit-cmudict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.dict");
    std::fs::write(&path, "a AH\nb B IY\nc(2)\n").unwrap();
    let e = read_cmudict(&path).unwrap_err().to_string();
    assert_eq!(e, format!("{}:3: \"c(2)\" has no phonemes", path.display()));
    let e = read_cmudict(dir.join("missing.dict"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.dict:0: cannot read"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let alphabet = b"abc()0123 \t\n;#AHKTSOW\xc3\xa9\xff\r";
    for _ in 0..3000 {
        let len = (state % 60) as usize;
        let mut d = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            d.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        if let Err(e) = parse_cmudict_bytes(&d, "f") {
            assert!(e.line >= 1 && !e.to_string().contains('\n'), "{e}");
        }
    }
}
