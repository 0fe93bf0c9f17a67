use super::*;

/// One variable for [`write_ct2`]: name, shape, dtype code (or item size before v4), data.
type Var<'a> = (&'a str, &'a [u32], u8, Vec<u8>);

/// A model.bin writer that follows `ModelSpec._serialize`, for building test files.
fn write_ct2(
    version: u32,
    spec: &str,
    revision: u32,
    vars: &[Var<'_>],
    aliases: &[(&str, &str)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = version.to_le_bytes().to_vec();
    if version >= 2 {
        string(&mut out, spec);
        out.extend_from_slice(&revision.to_le_bytes());
    }
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for (name, shape, dtype, data) in vars {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for d in *shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.push(*dtype);
        let count = if version >= 4 {
            data.len()
        } else {
            data.len() / usize::from(*dtype)
        };
        out.extend_from_slice(&(count as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    if version >= 3 {
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            string(&mut out, a);
            string(&mut out, t);
        }
    }
    out
}

fn f16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A small version-6 model with every dtype, a scalar and an alias.
fn sample() -> Vec<u8> {
    write_ct2(
        6,
        "WhisperSpec",
        3,
        &[
            (
                "a/bf16",
                &[2],
                5,
                [1.5f32, -2.0]
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            (
                "a/f16",
                &[2, 3],
                4,
                f16_bytes(&[0.0, 1.0, -2.5, 65504.0, 6.0e-8, 0.333_251_95]),
            ),
            ("a/f32", &[3], 0, f32_bytes(&[1.0, -0.5, 3.25])),
            (
                "a/i16",
                &[2],
                2,
                [-300i16, 7].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            ("a/i32", &[1], 3, 123_456i32.to_le_bytes().to_vec()),
            ("a/i8", &[3], 1, vec![0xff, 0x7f, 0x80]),
            ("heads", &[], 2, 6i16.to_le_bytes().to_vec()),
        ],
        &[("b/tied", "a/f16")],
    )
}

fn parse(bytes: &[u8]) -> Result<Ct2Model, Ct2Error> {
    parse_ct2(bytes, Path::new("dir/model.bin"))
}

fn error(bytes: &[u8]) -> String {
    let e = parse(bytes).expect_err("must be rejected").to_string();
    assert!(e.starts_with("dir/model.bin: "), "{e}");
    assert!(!e.contains('\n'), "{e}");
    e
}

#[test]
fn reads_every_dtype_scalars_and_aliases() {
    let m = parse(&sample()).unwrap();
    assert_eq!(
        (m.binary_version, m.spec.as_str(), m.revision),
        (6, "WhisperSpec", 3)
    );
    assert_eq!(m.variables.len(), 7);
    let f16 = &m.variables["a/f16"];
    assert_eq!(
        (f16.shape.as_slice(), f16.dtype),
        (&[2usize, 3][..], Ct2Dtype::F16)
    );
    // 6.0e-8 is the smallest f16 subnormal, 2^-24; 0.33325195 is exactly representable.
    assert_eq!(
        f16.data,
        [0.0, 1.0, -2.5, 65504.0, 2f32.powi(-24), 0.333_251_95]
    );
    assert_eq!(m.variables["a/bf16"].data, [1.5, -2.0]);
    assert_eq!(m.variables["a/f32"].data, [1.0, -0.5, 3.25]);
    assert_eq!(m.variables["a/i8"].data, [-1.0, 127.0, -128.0]);
    assert_eq!(m.variables["a/i16"].data, [-300.0, 7.0]);
    assert_eq!(m.variables["a/i32"].data, [123_456.0]);
    assert_eq!(m.scalar("heads"), Some(6.0));
    assert_eq!(m.scalar("a/f32"), None, "not a scalar");
    assert_eq!(m.get("b/tied"), Some(f16));
    assert_eq!(m.aliases["b/tied"], "a/f16");
    assert!(m.get("nope").is_none());
}

#[test]
fn reads_old_binary_versions() {
    // v1: no spec name, no aliases, item sizes instead of dtypes (2 bytes = int16).
    let v1 = write_ct2(
        1,
        "",
        0,
        &[
            ("w", &[2], 4, f32_bytes(&[1.0, 2.0])),
            ("n", &[], 2, vec![5, 0]),
        ],
        &[],
    );
    let m = parse(&v1).unwrap();
    assert_eq!((m.spec.as_str(), m.revision), ("", 1));
    assert_eq!(m.variables["w"].data, [1.0, 2.0]);
    assert_eq!(m.variables["n"].dtype, Ct2Dtype::I16);
    // v3: aliases, still item sizes.
    let v3 = write_ct2(
        3,
        "TransformerSpec",
        2,
        &[("w", &[1], 1, vec![0xfe])],
        &[("x", "w")],
    );
    let m = parse(&v3).unwrap();
    assert_eq!(m.get("x").unwrap().data, [-2.0]);
}

#[test]
fn every_truncation_is_an_error() {
    let full = sample();
    for len in 0..full.len() {
        let e = error(&full[..len]);
        assert!(
            e.contains("truncated") || e.contains("empty") || e.contains("cannot fit"),
            "cut at {len}: {e}"
        );
    }
}

#[test]
fn hostile_headers_are_rejected_without_allocating() {
    let ok = sample();
    // The variable count sits after version (4), spec string (2 + 12) and revision (4).
    let count_at = 4 + 2 + 12 + 4;
    let mut huge = ok.clone();
    huge[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(error(&huge).contains("4294967295 variables cannot fit"));

    // A variable claiming 4 GB of data in a tiny file.
    let big = write_ct2(6, "S", 1, &[("w", &[1 << 30], 0, vec![])], &[]);
    assert!(
        error(&big).contains("cannot hold the 0 bytes"),
        "{}",
        error(&big)
    );
    // ... and one whose shape agrees with a 4 GB byte count, in a tiny file.
    let mut big = write_ct2(
        6,
        "S",
        1,
        &[("w", &[(1 << 30) - 1], 0, f32_bytes(&[1.0]))],
        &[],
    );
    let size_at = 4 + 2 + 2 + 4 + 4 + 2 + 2 + 1 + 4 + 1; // version, spec, revision, count, name, rank, dim, dtype
    big[size_at..size_at + 4].copy_from_slice(&0xffff_fffcu32.to_le_bytes());
    assert!(
        error(&big).contains("truncated: variable 'w' needs 4294967292 bytes but only 8 remain"),
        "{}",
        error(&big)
    );

    // Dimensions whose product overflows u64.
    let overflow = write_ct2(6, "S", 1, &[("w", &[u32::MAX; 8], 0, vec![])], &[]);
    assert!(error(&overflow).contains("cannot hold"));

    // An unknown dtype, a rank past MAX_RANK, an unknown pre-v4 item size.
    assert!(
        error(&write_ct2(6, "S", 1, &[("w", &[1], 9, vec![0])], &[]))
            .contains("unknown dtype code 9")
    );
    assert!(
        error(&write_ct2(
            6,
            "S",
            1,
            &[("w", &[1; 9], 0, f32_bytes(&[1.0]))],
            &[]
        ))
        .contains("rank 9")
    );
    assert!(
        error(&write_ct2(3, "S", 1, &[("w", &[1], 3, vec![0; 3])], &[]))
            .contains("unknown item size 3")
    );

    // A huge alias count.
    let mut aliases = write_ct2(6, "S", 1, &[], &[]);
    let n = aliases.len();
    aliases[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(error(&aliases).contains("aliases cannot fit"));
}

#[test]
fn bad_strings_are_rejected() {
    // A name whose length runs past the end of the file.
    let mut past = write_ct2(6, "S", 1, &[("name", &[], 1, vec![0])], &[]);
    let name_at = 4 + 2 + 2 + 4 + 4;
    past[name_at..name_at + 2].copy_from_slice(&60_000u16.to_le_bytes());
    assert!(error(&past).contains("variable name is 60000 bytes long"));
    // Length 0, which CTranslate2 rejects too.
    let mut zero = write_ct2(6, "S", 1, &[], &[]);
    zero[4..6].copy_from_slice(&0u16.to_le_bytes());
    assert!(error(&zero).contains("spec name has length 0"));
    // Missing NUL, invalid UTF-8.
    let mut no_nul = write_ct2(6, "Spec", 1, &[], &[]);
    no_nul[6 + 4] = b'!';
    assert!(error(&no_nul).contains("not NUL-terminated"));
    let mut utf = write_ct2(6, "Spec", 1, &[], &[]);
    utf[6] = 0xff;
    assert!(error(&utf).contains("not UTF-8"));
}

#[test]
fn inconsistent_models_are_rejected() {
    assert!(error(&[]).contains("empty"));
    assert!(error(&0u32.to_le_bytes()).contains("unsupported binary version 0"));
    let mut v7 = sample();
    v7[..4].copy_from_slice(&7u32.to_le_bytes());
    assert!(error(&v7).contains("unsupported binary version 7"));
    // Not a model.bin at all: a PNG signature reads as a huge version number.
    assert!(error(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").contains("unsupported binary version"));
    let mut trailing = sample();
    trailing.push(0);
    assert!(error(&trailing).contains("1 unexpected bytes after the last alias"));
    let dup = write_ct2(
        6,
        "S",
        1,
        &[("w", &[], 1, vec![1]), ("w", &[], 1, vec![2])],
        &[],
    );
    assert!(error(&dup).contains("'w' appears twice"));
    let missing = write_ct2(6, "S", 1, &[("w", &[], 1, vec![1])], &[("x", "y")]);
    assert!(error(&missing).contains("alias 'x' names a missing variable 'y'"));
    let shadow = write_ct2(6, "S", 1, &[("w", &[], 1, vec![1])], &[("w", "w")]);
    assert!(error(&shadow).contains("alias 'w' is defined twice"));
}

#[test]
fn missing_file_is_an_io_error() {
    let e = read_ct2(Path::new("/nonexistent/model.bin")).unwrap_err();
    assert!(matches!(e, Ct2Error::Io { .. }));
    assert!(e.to_string().starts_with("/nonexistent/model.bin: "));
}

/// The real Whisper tiny.en from `scripts/whisper.sh`.
#[test]
fn reads_the_real_whisper_tiny_en() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/whisper-tiny.en/model.bin"
    ));
    assert!(
        path.exists(),
        "{} is missing: run scripts/whisper.sh",
        path.display()
    );
    let m = read_ct2(path).unwrap();
    assert_eq!(
        (m.binary_version, m.spec.as_str(), m.revision),
        (6, "WhisperSpec", 3)
    );
    assert_eq!(m.variables.len(), 148);
    assert_eq!(m.aliases.len(), 1);
    assert_eq!(
        m.aliases["decoder/projection/weight"],
        "decoder/embeddings/weight"
    );
    let shape = |n: &str| m.get(n).unwrap().shape.clone();
    assert_eq!(shape("encoder/conv1/weight"), [384, 80, 3]);
    assert_eq!(shape("encoder/conv2/weight"), [384, 384, 3]);
    assert_eq!(shape("encoder/position_encodings/encodings"), [1500, 384]);
    assert_eq!(
        shape("encoder/layer_3/self_attention/linear_0/weight"),
        [1152, 384]
    );
    assert_eq!(
        shape("decoder/layer_0/attention/linear_1/weight"),
        [768, 384]
    );
    assert_eq!(shape("decoder/embeddings/weight"), [51864, 384]);
    assert_eq!(shape("decoder/projection/weight"), [51864, 384]);
    assert_eq!(shape("decoder/position_encodings/encodings"), [448, 384]);
    for (name, v) in &m.variables {
        let expected = if v.shape.is_empty() {
            [Ct2Dtype::I8, Ct2Dtype::I16]
        } else {
            [Ct2Dtype::F16; 2]
        };
        assert!(expected.contains(&v.dtype), "{name}: {}", v.dtype);
        assert!(v.data.iter().all(|x| x.is_finite()), "{name}");
    }
    assert_eq!(m.scalar("encoder/num_heads"), Some(6.0));
    assert_eq!(m.scalar("decoder/num_heads"), Some(6.0));
    assert_eq!(m.scalar("decoder/pre_norm"), Some(1.0));
    assert_eq!(m.scalar("decoder/scale_embeddings"), Some(0.0));
    assert_eq!(m.scalar("decoder/activation"), Some(3.0), "GELU (erf)");
    // Values read by numpy from the same file (float16 values, here multiples of 2^-11).
    assert_eq!(
        m.get("decoder/layer_0/self_attention/layer_norm/gamma")
            .unwrap()
            .data[..4],
        [2464.0f32, 1313.0, 1041.0, 1416.0].map(|v| v / 2048.0)
    );
    // Whisper's key projections have no bias: the fused K slice is all zeros.
    let qkv = &m
        .get("encoder/layer_0/self_attention/linear_0/bias")
        .unwrap()
        .data;
    assert!(qkv[384..768].iter().all(|&b| b == 0.0));
    assert!(qkv[..384].iter().any(|&b| b != 0.0) && qkv[768..].iter().any(|&b| b != 0.0));
}

/// xorshift64*: a deterministic source for the mutation test without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutate a valid file in the ways that hit header fields: bit flips, byte sets, u32 and u16
/// fields overwritten with boundary values, truncation, insertion, deletion.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(d.len());
        match rng.below(7) {
            0 if !d.is_empty() => d[at] ^= 1 << rng.below(8),
            1 if !d.is_empty() => d[at] = rng.next() as u8,
            2 if d.len() >= 4 => {
                let at = rng.below(d.len() - 3);
                let v = [
                    0,
                    1,
                    2,
                    0x7fff_ffff,
                    u32::MAX,
                    input.len() as u32,
                    rng.next() as u32,
                ][rng.below(7)];
                d[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 if d.len() >= 2 => {
                let at = rng.below(d.len() - 1);
                let v = [0u16, 1, 0xffff, 0x8000, rng.next() as u16][rng.below(5)];
                d[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
            4 => d.truncate(at),
            5 => d.insert(at.min(d.len()), rng.next() as u8),
            _ if !d.is_empty() => {
                d.remove(at);
            }
            _ => {}
        }
    }
    d
}

#[test]
fn fuzz_body_survives_random_and_mutated_inputs() {
    let seeds = [
        sample(),
        write_ct2(1, "", 0, &[("w", &[2], 4, f32_bytes(&[1.0, 2.0]))], &[]),
        write_ct2(3, "S", 2, &[("w", &[1], 1, vec![1])], &[("x", "w")]),
        write_ct2(
            6,
            "S",
            1,
            &[("w", &[2, 2], 4, f16_bytes(&[1.0, 2.0, 3.0, 4.0]))],
            &[("x", "w")],
        ),
    ];
    let mut rng = Rng(0x5eed_c72b_0000_0001);
    let mut accepted = 0;
    let iterations = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    for i in 0..iterations {
        let input = if i % 10 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, &seeds[i % seeds.len()])
        };
        fuzz_read_ct2(&input);
        accepted += usize::from(parse(&input).is_ok());
    }
    // Some mutations (a flipped data bit) stay valid: the test reaches past the headers.
    assert!(accepted > 100, "only {accepted} accepted");
}
