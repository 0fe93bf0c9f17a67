//! Whisper's log-mel spectrogram, as faster-whisper's `FeatureExtractor` computes it (which
//! matches OpenAI's `log_mel_spectrogram` up to the padding noted below):
//!
//! 1. append 160 zero samples (one hop);
//! 2. STFT: reflect-pad 200 samples on each side (`center=True`), frames of 400 every 160,
//!    periodic Hann window `0.5 - 0.5 cos(2 pi n / 400)`, real FFT, 201 bins; the last frame
//!    is dropped, leaving `len / 160 + 1` frames;
//! 3. power `|X|^2`, times 80 Slaney-style mel filters (0 to 8 kHz, area-normalised);
//! 4. `log10(max(x, 1e-10))`, floored at the global maximum minus 8, then `(x + 4) / 4`.
//!
//! faster-whisper then keeps the `len / 160` frames that cover the audio and pads them with
//! zeros (0.0 after the scaling, not the log of silence) to 3000 frames = 30 s, the encoder's
//! input. OpenAI's package instead pads the audio with 30 s of zeros before the STFT, which
//! changes the last frames and the padding values; faster-whisper's way is the reference here.
//!
//! Everything runs in `f32` like faster-whisper's numpy code (filters built in `f64`, then
//! rounded), so the result agrees with it to about 1e-6.

use std::sync::Arc;

use realfft::RealFftPlanner;

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
pub const N_MELS: usize = 80;
/// Frequency bins of a 400-point real FFT.
pub const N_BINS: usize = N_FFT / 2 + 1;
/// The encoder's input length: 30 s of frames.
pub const CHUNK_FRAMES: usize = 3000;
pub const CHUNK_SAMPLES: usize = CHUNK_FRAMES * HOP_LENGTH;

/// The encoder input for the first 30 s of `samples` (mono, 16 kHz): `N_MELS x CHUNK_FRAMES`
/// values, mel-major (`[m * CHUNK_FRAMES + t]`), and the number of frames that cover the audio,
/// `min(len / 160, 3000)`; the frames after those are 0.0.
///
/// The floor (maximum minus 8) is taken over the whole input, as faster-whisper does before it
/// cuts 30 s windows.
pub fn log_mel(samples: &[f32]) -> (Vec<f32>, usize) {
    let (features, columns) = log_mel_features(samples);
    let frames = (columns - 1).min(CHUNK_FRAMES);
    (window(&features, columns, 0, CHUNK_FRAMES), frames)
}

/// The first window of `frames` frames of `samples`' log-mel spectrogram, as [`log_mel`]
/// gives it for Whisper's 3000.
pub fn log_mel_window(samples: &[f32], frames: usize) -> Vec<f32> {
    let (features, columns) = log_mel_features(samples);
    window(&features, columns, 0, frames)
}

/// Every window of `frames` frames that `samples` needs, as faster-whisper transcribes audio
/// longer than one window (without timestamps): the frames that cover the audio (`len / 160`)
/// cut every `frames`, each window zero-padded; none for audio shorter than one hop.
pub fn log_mel_windows(samples: &[f32], frames: usize) -> Vec<Vec<f32>> {
    let (features, columns) = log_mel_features(samples);
    let content = columns - 1;
    (0..content.div_ceil(frames.max(1)))
        .map(|w| window(&features, columns, w * frames, frames))
        .collect()
}

/// `N_MELS x frames` values from column `start` of `features` (`N_MELS x columns`), zero
/// after the content frames (all but the last column).
fn window(features: &[f32], columns: usize, start: usize, frames: usize) -> Vec<f32> {
    let kept = (columns - 1).saturating_sub(start).min(frames);
    let mut out = vec![0.0; N_MELS * frames];
    for m in 0..N_MELS {
        let from = m * columns + start;
        out[m * frames..m * frames + kept].copy_from_slice(&features[from..from + kept]);
    }
    out
}

/// faster-whisper's `FeatureExtractor()(samples)`: `N_MELS x columns` values, mel-major, with
/// `columns = len / 160 + 1` (the last one only sees the 160 appended zeros).
pub fn log_mel_features(samples: &[f32]) -> (Vec<f32>, usize) {
    let filters = mel_filters();
    let window = hann_window();

    // The waveform plus one hop of zeros, then read through reflect padding of N_FFT / 2.
    let len = samples.len() + HOP_LENGTH;
    let at = |i: isize| -> f32 {
        let j = reflect(i - (N_FFT / 2) as isize, len);
        if j < samples.len() { samples[j] } else { 0.0 }
    };
    // Frames of the padded signal (len + N_FFT), minus the dropped last one.
    let columns = len / HOP_LENGTH;

    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let mut frame = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut power = vec![0.0f32; N_BINS];
    let mut mel = vec![0.0f32; N_MELS * columns];
    for t in 0..columns {
        let start = (t * HOP_LENGTH) as isize;
        for (n, x) in frame.iter_mut().enumerate() {
            *x = at(start + n as isize) * window[n];
        }
        process(&fft, &mut frame, &mut spectrum, &mut scratch);
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for m in 0..N_MELS {
            let row = &filters[m * N_BINS..(m + 1) * N_BINS];
            mel[m * columns + t] = row.iter().zip(&power).map(|(w, p)| w * p).sum();
        }
    }

    for x in &mut mel {
        *x = x.max(1e-10).log10();
    }
    let floor = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max) - 8.0;
    for x in &mut mel {
        *x = (x.max(floor) + 4.0) / 4.0;
    }
    (mel, columns)
}

fn process(
    fft: &Arc<dyn realfft::RealToComplex<f32>>,
    frame: &mut [f32],
    spectrum: &mut [realfft::num_complex::Complex<f32>],
    scratch: &mut [realfft::num_complex::Complex<f32>],
) {
    // Lengths come from the plan itself, so this cannot fail.
    fft.process_with_scratch(frame, spectrum, scratch)
        .expect("buffers sized by the FFT plan");
}

/// numpy's `pad(mode="reflect")` index: mirror at both ends without repeating the edge sample,
/// periodically for pads longer than the signal (numpy's repeated reflection is the same).
fn reflect(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let j = i.rem_euclid(period);
    (if j >= len as isize { period - j } else { j }) as usize
}

/// `np.hanning(N_FFT + 1)[:-1]`: the periodic Hann window, computed in f64 and rounded.
pub fn hann_window() -> Vec<f32> {
    (0..N_FFT)
        .map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32)
        .collect()
}

/// The 80 x 201 Slaney mel filter bank (librosa's `mel(sr=16000, n_fft=400, n_mels=80)`, htk
/// off, `norm="slaney"`), mel-major; faster-whisper's `get_mel_filters`.
pub fn mel_filters() -> Vec<f32> {
    // Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    let max_mel = 45.245_640_471_924_965; // mel(8000 Hz)
    let hz = |mel: f64| {
        if mel >= MIN_LOG_MEL {
            MIN_LOG_HZ * (log_step * (mel - MIN_LOG_MEL)).exp()
        } else {
            F_SP * mel
        }
    };

    // N_MELS + 2 band edges, evenly spaced in mel (np.linspace).
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| hz(max_mel * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let mut filters = vec![0.0f32; N_MELS * N_BINS];
    for m in 0..N_MELS {
        let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (hi - lo); // equal area per filter
        for k in 0..N_BINS {
            let f = k as f64 * SAMPLE_RATE as f64 / N_FFT as f64;
            let rising = (f - lo) / (mid - lo);
            let falling = (hi - f) / (hi - mid);
            filters[m * N_BINS + k] = (rising.min(falling).max(0.0) * norm) as f32;
        }
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/whisper/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn tensor(st: &safetensors::SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32);
        let data = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (t.shape().to_vec(), data)
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// goforward.raw (pocketsphinx-testdata) against faster-whisper's own numbers.
    #[test]
    fn matches_faster_whisper_on_a_real_recording() {
        let raw = "/usr/share/pocketsphinx/test/data/goforward.raw";
        let bytes = fixture("mel_goforward.safetensors");
        let audio = std::fs::read(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e} (apt-get install pocketsphinx-testdata)"));
        let samples: Vec<f32> = audio
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let n_frames = st.tensor("n_frames").unwrap().data()[..8]
            .try_into()
            .map(i64::from_le_bytes)
            .unwrap();

        let (shape, expected) = tensor(&st, "features");
        let (features, columns) = log_mel_features(&samples);
        assert_eq!(shape, [N_MELS, columns]);
        assert_eq!(columns, samples.len() / HOP_LENGTH + 1);
        let diff = max_diff(&features, &expected);
        assert!(diff < 1e-4, "features differ by {diff}");

        let (shape, expected) = tensor(&st, "mel");
        let (mel, frames) = log_mel(&samples);
        assert_eq!(frames as i64, n_frames);
        assert_eq!(frames, 278);
        let kept = shape[1];
        let ours: Vec<f32> = (0..N_MELS)
            .flat_map(|m| mel[m * CHUNK_FRAMES..m * CHUNK_FRAMES + kept].to_vec())
            .collect();
        let diff = max_diff(&ours, &expected);
        assert!(diff < 1e-4, "encoder input differs by {diff}");
        eprintln!("log-mel max |diff| vs faster-whisper: {diff:e}");
        assert!((0..N_MELS).all(|m| {
            mel[m * CHUNK_FRAMES + frames..(m + 1) * CHUNK_FRAMES]
                .iter()
                .all(|&x| x == 0.0)
        }));
    }

    #[test]
    fn filters_match_faster_whisper() {
        let f = mel_filters();
        assert_eq!(f.len(), N_MELS * N_BINS);
        // (mel, first non-zero bin, last non-zero bin, weight there), from numpy.
        let expected = [
            (0, 1, 1, 0.024_862_595),
            (1, 1, 2, 0.001_990_822),
            (10, 10, 11, 0.019_908_22),
            (40, 42, 44, 0.005_411_105),
            (79, 186, 199, 0.000_366_741_67),
        ];
        for (m, first, last, weight) in expected {
            let row = &f[m * N_BINS..(m + 1) * N_BINS];
            let nz: Vec<usize> = (0..N_BINS).filter(|&k| row[k] != 0.0).collect();
            assert_eq!((nz[0], *nz.last().unwrap()), (first, last), "mel {m}");
            assert!(
                (row[first] - weight).abs() < 1e-8,
                "mel {m}: {} vs {weight}",
                row[first]
            );
        }
        assert!((f.iter().sum::<f32>() - 1.999_024_2).abs() < 1e-5);
        assert!(f.iter().all(|&w| w >= 0.0));
    }

    #[test]
    fn window_is_periodic_hann() {
        let w = hann_window();
        assert_eq!((w[0], w[100], w[200], w[300]), (0.0, 0.5, 1.0, 0.5));
        assert!(
            (1..N_FFT).all(|n| (w[n] - w[N_FFT - n]).abs() < 1e-7),
            "symmetric about 200, periodic"
        );
    }

    #[test]
    fn reflect_matches_numpy() {
        // np.pad(np.arange(5), 7, mode="reflect")
        let got: Vec<usize> = (-7..12).map(|i| reflect(i, 5)).collect();
        assert_eq!(
            got,
            [1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3]
        );
        assert_eq!(reflect(-3, 1), 0);
    }

    #[test]
    fn frame_counts_and_padding() {
        for (len, columns) in [
            (0, 1),
            (1, 1),
            (159, 1),
            (160, 2),
            (44_580, 279),
            (CHUNK_SAMPLES, 3001),
        ] {
            let (features, c) = log_mel_features(&vec![0.01; len]);
            assert_eq!(
                (c, features.len()),
                (columns, N_MELS * columns),
                "{len} samples"
            );
            let (mel, frames) = log_mel(&vec![0.01; len]);
            assert_eq!(
                (mel.len(), frames),
                (N_MELS * CHUNK_FRAMES, (columns - 1).min(CHUNK_FRAMES))
            );
        }
        // Longer than 30 s: the first 3000 frames, floored with the maximum of the whole input.
        let long: Vec<f32> = (0..CHUNK_SAMPLES + 16_000)
            .map(|i| if i > CHUNK_SAMPLES { 0.9 } else { 1e-4 })
            .collect();
        let (features, columns) = log_mel_features(&long);
        let (mel, frames) = log_mel(&long);
        assert_eq!(frames, CHUNK_FRAMES);
        for m in [0, 40, 79] {
            assert_eq!(
                mel[m * CHUNK_FRAMES..(m + 1) * CHUNK_FRAMES],
                features[m * columns..m * columns + CHUNK_FRAMES]
            );
        }
    }

    #[test]
    fn silence_sits_at_the_floor_and_noise_is_finite() {
        // All-zero input: every mel value is 1e-10, so log10 is -10 everywhere: (-10 + 4) / 4.
        let (features, _) = log_mel_features(&[0.0; 1000]);
        assert!(features.iter().all(|&x| x == -1.5));
        // Loud noise: the floor is 8 below the maximum, i.e. -2 after scaling.
        let mut seed = 1u32;
        let noise: Vec<f32> = (0..16_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
            })
            .collect();
        let (features, _) = log_mel_features(&noise);
        let max = features.iter().copied().fold(f32::MIN, f32::max);
        assert!(
            features
                .iter()
                .all(|&x| x.is_finite() && x >= max - 2.0 - 1e-6)
        );
    }

    /// A pure tone peaks in the mel band whose filter weighs its FFT bin most.
    #[test]
    fn a_tone_lights_its_mel_band() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let (features, columns) = log_mel_features(&tone);
        let t = columns / 2;
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| features[a * columns + t].total_cmp(&features[b * columns + t]))
            .unwrap();
        let filters = mel_filters();
        let bin = 1000 * N_FFT / SAMPLE_RATE; // 25: bins are 40 Hz apart
        let strongest = (0..N_MELS)
            .max_by(|&a, &b| filters[a * N_BINS + bin].total_cmp(&filters[b * N_BINS + bin]))
            .unwrap();
        assert_eq!(loudest, strongest);
        assert_eq!(
            strongest, 26,
            "1 kHz is mel 15 on Slaney's scale, band edges are 45.25 / 81 mel apart"
        );
    }
}
