use super::*;

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

/// Bit flips, byte sets, u32/u16 fields set to boundary values, truncation, insertion.
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
                    3,
                    0x7fff_ffff,
                    u32::MAX,
                    input.len() as u32,
                    rng.next() as u32,
                ][rng.below(7)];
                d[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 if d.len() >= 2 => {
                let at = rng.below(d.len() - 1);
                let v = [0u16, 1, 2, 3, 0xfffe, 0xffff, rng.next() as u16][rng.below(7)];
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

/// Sample layouts for [`wav`]: (format tag, bits per sample, bytes per sample).
const U8: (u16, u16, u16) = (1, 8, 1);
const S16: (u16, u16, u16) = (1, 16, 2);
const S24: (u16, u16, u16) = (1, 24, 3);
const S32: (u16, u16, u16) = (1, 32, 4);
const F32: (u16, u16, u16) = (3, 32, 4);
const F64: (u16, u16, u16) = (3, 64, 8);

/// A WAV file: `fmt ` (plain, or WAVE_FORMAT_EXTENSIBLE when `extensible`), optional extra
/// chunks before the data, then `data` holding `frames` (already encoded, interleaved).
fn wav(
    layout: (u16, u16, u16),
    channels: u16,
    rate: u32,
    extensible: bool,
    extra: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let (tag, bits, bytes) = layout;
    let block = channels * bytes;
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&(if extensible { 0xfffe } else { tag }).to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    fmt.extend_from_slice(&block.to_le_bytes());
    fmt.extend_from_slice(&(bytes * 8).to_le_bytes());
    if extensible {
        fmt.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        fmt.extend_from_slice(&bits.to_le_bytes()); // valid bits
        fmt.extend_from_slice(&(if channels == 1 { 4u32 } else { 3 }).to_le_bytes()); // speaker mask
        // KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT: the format tag, then a fixed GUID tail.
        fmt.extend_from_slice(&u32::from(tag).to_le_bytes());
        fmt.extend_from_slice(&[
            0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
        ]);
    }
    let mut body = b"WAVE".to_vec();
    chunk(&mut body, b"fmt ", &fmt);
    body.extend_from_slice(extra);
    chunk(&mut body, b"data", data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn chunk(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
}

fn s16(values: &[i16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode(bytes: &[u8], name: &str, rate: Option<u32>) -> Result<Vec<f32>, AudioError> {
    decode_audio(bytes, Path::new(name), rate)
}

/// The one-line error for bytes that must be rejected.
fn error(bytes: &[u8], name: &str) -> String {
    let e = decode(bytes, name, None)
        .expect_err("must be rejected")
        .to_string();
    assert!(e.starts_with(&format!("{name}: ")), "{e}");
    assert!(!e.contains('\n'), "{e}");
    e
}

#[test]
fn decodes_every_pcm_layout_exactly() {
    let ints = [-32768i16, -1, 0, 1, 12345, 32767];
    let expect16: Vec<f32> = ints.iter().map(|&v| f32::from(v) / 32768.0).collect();
    for extensible in [false, true] {
        assert_eq!(
            decode(
                &wav(S16, 1, 16_000, extensible, &[], &s16(&ints)),
                "a.wav",
                None
            )
            .unwrap(),
            expect16
        );

        let u8s = [0u8, 64, 128, 255];
        let got = decode(&wav(U8, 1, 16_000, extensible, &[], &u8s), "a.wav", None).unwrap();
        assert_eq!(got, [-1.0, -0.5, 0.0, 127.0 / 128.0]);

        let s24: Vec<u8> = [-8_388_608i32, -1, 4_194_304, 8_388_607]
            .iter()
            .flat_map(|v| v.to_le_bytes()[..3].to_vec())
            .collect();
        let got = decode(&wav(S24, 1, 16_000, extensible, &[], &s24), "a.wav", None).unwrap();
        assert_eq!(
            got,
            [-1.0, -1.0 / 8_388_608.0, 0.5, 8_388_607.0 / 8_388_608.0]
        );

        let s32: Vec<u8> = [i32::MIN, 1 << 30, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let got = decode(&wav(S32, 1, 16_000, extensible, &[], &s32), "a.wav", None).unwrap();
        assert_eq!(got, [-1.0, 0.5, 0.0]);

        let floats = [0.25f32, -1.5, 0.0, 1e-7];
        let f32s: Vec<u8> = floats.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            decode(&wav(F32, 1, 16_000, extensible, &[], &f32s), "a.wav", None).unwrap(),
            floats
        );

        let f64s: Vec<u8> = [0.25f64, -0.125, 1.0 / 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let got = decode(&wav(F64, 1, 16_000, extensible, &[], &f64s), "a.wav", None).unwrap();
        assert_eq!(got, [0.25, -0.125, (1.0f64 / 3.0) as f32]);
    }
}

#[test]
fn stereo_is_averaged_to_mono() {
    let lr = s16(&[1000, 3000, -2000, 2000, 32767, 32767]);
    let got = decode(&wav(S16, 2, 16_000, false, &[], &lr), "a.wav", None).unwrap();
    assert_eq!(got, [2000.0 / 32768.0, 0.0, 32767.0 / 32768.0]);
    let f: Vec<u8> = [0.5f32, -0.5, 1.0, 0.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(
        decode(&wav(F32, 2, 16_000, true, &[], &f), "a.wav", None).unwrap(),
        [0.0, 0.5]
    );
}

#[test]
fn skips_list_and_odd_sized_chunks() {
    let mut extra = Vec::new();
    let mut list = b"INFO".to_vec();
    chunk(&mut list, b"INAM", b"a title\0"); // 8 bytes
    chunk(&mut list, b"ICMT", b"odd"); // 3 bytes + pad
    chunk(&mut extra, b"LIST", &list);
    chunk(&mut extra, b"junk", b"x"); // odd size: a pad byte follows
    let got = decode(
        &wav(S16, 1, 16_000, false, &extra, &s16(&[7, -7])),
        "a.wav",
        None,
    )
    .unwrap();
    assert_eq!(got, [7.0 / 32768.0, -7.0 / 32768.0]);
}

#[test]
fn streamed_wav_with_unknown_sizes_reads_to_the_end() {
    let mut w = wav(S16, 1, 16_000, false, &[], &s16(&[1, 2, 3]));
    w[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let n = w.len();
    w[n - 10..n - 6].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode(&w, "a.wav", None).unwrap(),
        [1.0 / 32768.0, 2.0 / 32768.0, 3.0 / 32768.0]
    );
}

#[test]
fn raw_is_s16le_at_the_given_rate() {
    let bytes = s16(&[-32768, 0, 16384]);
    assert_eq!(decode(&bytes, "x.raw", None).unwrap(), [-1.0, 0.0, 0.5]);
    assert_eq!(
        decode(&bytes, "X.PCM", Some(16_000)).unwrap(),
        [-1.0, 0.0, 0.5]
    );
    // 8 kHz: twice as many samples come out (rubato's output length is ceil(n * ratio)).
    let tone: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * 0.3).sin() * 10_000.0) as i16)
        .collect();
    assert_eq!(
        decode(&s16(&tone), "x.raw", Some(8_000)).unwrap().len(),
        16_000
    );
}

#[test]
fn sixteen_khz_input_passes_through_bit_for_bit() {
    let samples: Vec<f32> = (0..5000)
        .map(|i| ((i * 7919) % 65_536) as f32 / 65_536.0 - 0.5)
        .collect();
    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
    let got = decode(&wav(F32, 1, 16_000, false, &[], &bytes), "a.wav", None).unwrap();
    assert!(
        got.iter()
            .zip(&samples)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert_eq!(resample_to_16k(samples.clone(), 16_000).unwrap(), samples);
}

/// A tone resampled to 16 kHz must still be that tone, with its amplitude, aligned in time to
/// within one output sample (rubato trims its delay in whole samples), and a tone above
/// 8 kHz must be filtered out rather than alias.
#[test]
fn resampling_keeps_tones_and_removes_aliases() {
    let tone = |f: f64, rate: u32, i: usize| {
        (2.0 * std::f64::consts::PI * f * i as f64 / rate as f64).sin() as f32 * 0.5
    };
    for rate in [8_000u32, 11_025, 22_050, 44_100, 48_000, 96_000] {
        let n = rate as usize; // one second
        let out = resample_to_16k((0..n).map(|i| tone(440.0, rate, i)).collect(), rate).unwrap();
        assert_eq!(out.len(), 16_000, "{rate} Hz");
        // Project the middle (away from the clip's edges) on sin and cos at 440 Hz.
        let w = 2.0 * std::f64::consts::PI * 440.0 / 16_000.0;
        let (mut s, mut c) = (0.0f64, 0.0f64);
        let middle = 400..out.len() - 400;
        for i in middle.clone() {
            s += f64::from(out[i]) * (w * i as f64).sin();
            c += f64::from(out[i]) * (w * i as f64).cos();
        }
        let amplitude = 2.0 * s.hypot(c) / middle.len() as f64;
        let lag = -c.atan2(s) / w; // output samples behind the input
        assert!(
            (amplitude - 0.5).abs() < 5e-3,
            "{rate} Hz: amplitude {amplitude}"
        );
        assert!(lag.abs() < 1.0, "{rate} Hz: {lag} samples out of time");
        if rate >= 22_050 {
            let out =
                resample_to_16k((0..n).map(|i| tone(10_000.0, rate, i)).collect(), rate).unwrap();
            let rms = (out[middle.clone()].iter().map(|x| x * x).sum::<f32>()
                / middle.len() as f32)
                .sqrt();
            assert!(
                rms < 1e-3,
                "{rate} Hz: a 10 kHz tone leaks through at rms {rms}"
            );
        }
    }
}

#[test]
fn reads_the_real_recordings() {
    let dir = Path::new("/usr/share/pocketsphinx/test/data");
    let raw = dir.join("goforward.raw");
    assert!(
        raw.exists(),
        "{} is missing: apt-get install pocketsphinx-testdata",
        raw.display()
    );
    let samples = read_audio(&raw, None).unwrap();
    assert_eq!(samples.len(), 89_160 / 2);
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(
        samples[1000],
        f32::from(i16::from_le_bytes([bytes[2000], bytes[2001]])) / 32768.0
    );

    // A WAV reads as its data chunk's s16 values / 32768, which is what faster-whisper computes.
    let wav_path = dir.join("librivox/sense_and_sensibility_01_austen_64kb-0880.wav");
    let wav_samples = read_audio(&wav_path, Some(8_000)).unwrap(); // the rate is ignored for WAV
    let wav_bytes = std::fs::read(&wav_path).unwrap();
    let data_at = wav_bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let expected: Vec<f32> = decode_raw_s16le(&wav_bytes[data_at..]).unwrap();
    assert_eq!(wav_samples, expected);
}

#[test]
fn bad_files_give_one_clear_line() {
    assert!(error(b"", "a.wav").contains("is empty"));
    assert!(error(b"", "a.raw").contains("is empty"));
    assert!(
        error(b"\x89PNG\r\n\x1a\n", "a.wav")
            .contains("is not a WAV file: it starts with 89 50 4e 47")
    );
    assert!(
        error(b"hello world", "notes.txt")
            .contains("is not a supported audio file: it starts with \"hell\"")
    );
    assert!(error(&[1, 2, 3], "a.raw").contains("odd number of bytes (3)"));
    assert!(error(b"RIFF\x04\0\0\0AVI ", "a.wav").contains("RIFF file of type \"AVI \", not WAVE"));
    assert!(
        error(b"RIFF\x04\0\0\0WAVE", "a.wav").contains("has no \"fmt \" chunk and no data chunk")
    );

    let good = wav(S16, 1, 16_000, false, &[], &s16(&[1, 2, 3, 4]));
    let zero_rate = wav(S16, 1, 0, false, &[], &s16(&[1]));
    assert!(
        error(&zero_rate, "a.wav").contains("sample rate of 0 Hz"),
        "{}",
        error(&zero_rate, "a.wav")
    );
    let e = decode(&s16(&[1]), "a.raw", Some(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample rate of 0 Hz"), "{e}");
    let e = decode(&s16(&[1]), "a.raw", Some(5_000_000))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("5000000 Hz; supported rates are 1000 to 384000 Hz"),
        "{e}"
    );
    for channels in [3, 6] {
        let multi = wav(
            S16,
            channels,
            16_000,
            false,
            &[],
            &s16(&vec![0; channels as usize]),
        );
        assert!(
            error(&multi, "a.wav")
                .contains(&format!("has {channels} channels; only mono and stereo"))
        );
    }
    let mut no_channels = good.clone();
    no_channels[22..24].copy_from_slice(&0u16.to_le_bytes());
    let e = error(&no_channels, "a.wav");
    assert!(
        e.contains("0 channels") || e.contains("not a readable WAV"),
        "{e}"
    );

    let silent = wav(S16, 1, 16_000, false, &[], &[]);
    assert!(error(&silent, "a.wav").contains("contains no audio samples"));
    let nan: Vec<u8> = [0.0f32, f32::NAN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert!(
        error(&wav(F32, 1, 16_000, false, &[], &nan), "a.wav")
            .contains("sample 1 is not a finite number")
    );

    // ADPCM (tag 2) and friends are not PCM.
    let mut adpcm = good.clone();
    adpcm[20..22].copy_from_slice(&2u16.to_le_bytes());
    let e = error(&adpcm, "a.wav");
    assert!(
        e.contains("not a readable WAV") || e.contains("cannot be decoded"),
        "{e}"
    );
}

#[test]
fn absurd_sizes_are_caught_before_allocation() {
    let good = wav(S16, 1, 16_000, false, &[], &s16(&[1, 2, 3, 4]));
    let data_size_at = good.len() - 8 - 4;
    // The data chunk claims 4 GB.
    let mut huge = good.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes()); // a streamed RIFF size, so the data size is checked
    huge[data_size_at..data_size_at + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(
        error(&huge, "a.wav").contains("data chunk declares 4294967280 bytes but only 8 follow")
    );
    // The RIFF header claims more than the file.
    let mut riff = good.clone();
    riff[4..8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    assert!(
        error(&riff, "a.wav").contains("RIFF header declares 2147483655 bytes but the file has 52")
    );
    // A LIST chunk, and a LIST entry, that claim gigabytes.
    let mut list = b"INFO".to_vec();
    chunk(&mut list, b"INAM", b"ab");
    let mut extra = Vec::new();
    chunk(&mut extra, b"LIST", &list);
    let with_list = wav(S16, 1, 16_000, false, &extra, &s16(&[1]));
    let mut big_list = with_list.clone();
    big_list[40..44].copy_from_slice(&0xffff_0000u32.to_le_bytes());
    assert!(
        error(&big_list, "a.wav").contains("chunk \"LIST\" at byte 36 declares 4294901760 bytes")
    );
    let mut big_entry = with_list.clone();
    big_entry[52..56].copy_from_slice(&0xffff_0000u32.to_le_bytes());
    assert!(error(&big_entry, "a.wav").contains("LIST entry at byte 48 declares 4294901760 bytes"));
    // A fmt chunk too small to describe anything.
    let mut tiny_fmt = good.clone();
    tiny_fmt[16..20].copy_from_slice(&2u32.to_le_bytes());
    let e = error(&tiny_fmt, "a.wav");
    assert!(
        e.contains("\"fmt \" chunk of 2 bytes") || e.contains("corrupt"),
        "{e}"
    );
}

#[test]
fn every_truncated_wav_is_an_error() {
    let good = wav(
        S24,
        2,
        44_100,
        true,
        &[],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    assert!(decode(&good, "a.wav", None).is_ok());
    for len in 1..good.len() {
        let e = error(&good[..len], "a.wav");
        assert!(
            e.contains("truncated") || e.contains("is not a"),
            "cut at {len}: {e}"
        );
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let e = read_audio(Path::new("/nonexistent/a.wav"), None).unwrap_err();
    assert!(matches!(e, AudioError::Io { .. }));
    assert!(e.to_string().starts_with("/nonexistent/a.wav: "));
}

/// `FUZZ_ITERATIONS=200000 cargo test --release fuzz` for a longer run.
fn iterations(default: usize) -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn fuzz_body_survives_random_and_mutated_inputs() {
    let tone: Vec<i16> = (0..300).map(|i| (i * 97 % 2000) as i16 - 1000).collect();
    let f64s: Vec<u8> = (0..40)
        .flat_map(|i| (i as f64 / 40.0).to_le_bytes())
        .collect();
    let mut list = b"INFO".to_vec();
    chunk(&mut list, b"INAM", b"name");
    let mut extra = Vec::new();
    chunk(&mut extra, b"LIST", &list);
    let seeds = [
        wav(S16, 1, 16_000, false, &[], &s16(&tone)),
        wav(S16, 2, 44_100, true, &extra, &s16(&tone)),
        wav(U8, 1, 8_000, false, &[], &[0, 50, 100, 200, 255, 128]),
        wav(S24, 1, 22_050, true, &[], &[0; 30]),
        wav(F32, 2, 48_000, false, &extra, &[0; 64]),
        wav(F64, 1, 16_000, true, &[], &f64s),
        s16(&tone),
    ];
    let mut rng = Rng(0xa0d1_0000_0000_0042);
    let mut accepted = 0;
    for i in 0..iterations(3000) {
        let input = if i % 10 == 0 {
            (0..rng.below(80)).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, &seeds[i % seeds.len()])
        };
        fuzz_read_audio(&input);
        accepted += usize::from(decode(&input, "a.wav", None).is_ok());
    }
    assert!(accepted > 100, "only {accepted} accepted");
}

/// symphonia 0.6.1 panics ("attempt to shift left with overflow", found by the mutation test)
/// repairing an extensible header's channel mask that has bit 31 set and fewer bits than
/// channels: such headers are refused before symphonia parses them.
#[test]
fn a_channel_mask_that_cannot_fit_its_channels_is_refused() {
    let mut bytes = wav(S16, 2, 16_000, true, &[], &s16(&[1, 2, 3, 4]));
    assert!(decode(&bytes, "ok.wav", None).is_ok());
    bytes[40..44].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    let err = error(&bytes, "mask.wav");
    assert!(err.contains("channel mask 0x80000000"), "{err}");
}
