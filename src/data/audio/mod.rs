//! Audio input for speech recognition: a WAV file or headerless 16-bit PCM, as mono `f32`
//! samples at 16 kHz, the rate Whisper's front end expects.
//!
//! WAV decoding is symphonia's (every common PCM layout: unsigned 8-bit, signed 16/24/32-bit,
//! 32/64-bit float, A-law/mu-law, `WAVE_FORMAT_EXTENSIBLE` headers). Before symphonia sees the
//! file, `check_riff` walks its chunk headers and checks every declared size against the
//! file's length, so a header that claims gigabytes is reported, not allocated.
//!
//! Integer samples are scaled by 2^(bits-1) (16-bit: `s / 32768`, exactly what faster-whisper
//! computes); stereo becomes mono by averaging (faster-whisper's ffmpeg downmix computes the
//! same average, then rounds it to 16 bits: within half an LSB); any other rate goes through
//! rubato's synchronous FFT resampler (fixed ratio, anti-aliased, delay trimmed to the nearest
//! output sample: made for converting a whole clip in memory; ffmpeg's resampler, which
//! faster-whisper uses, cannot be matched bit for bit anyway). 16 kHz input is returned as read.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// Whisper's sample rate.
pub const TARGET_SAMPLE_RATE: u32 = 16_000;
/// The rates accepted as input; outside them a rate is a corrupt header, and rubato's FFT size
/// grows with `rate / gcd(rate, 16000)`.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;
/// Mono or stereo; more channels would need a downmix matrix, not an average.
pub const MAX_CHANNELS: usize = 2;
/// 1 GiB: about 9 hours of 16 kHz 16-bit mono; the whole file is read into memory.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why an audio file could not be read. Displays as one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// Read a `.wav` or a headerless `.raw`/`.pcm` (16-bit little-endian mono) file as mono `f32`
/// samples at 16 kHz.
///
/// A file that starts with `RIFF` is read as WAV whatever its name. A `.raw`/`.pcm` file is
/// taken at `raw_sample_rate`, 16 kHz when `None` (Whisper's rate, and that of pocketsphinx's
/// test recordings); WAV files carry their own rate and ignore it.
pub fn read_audio(path: &Path, raw_sample_rate: Option<u32>) -> Result<Vec<f32>, AudioError> {
    let io = |source| AudioError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(invalid(
            path,
            format!("is {len} bytes; audio files over {MAX_FILE_BYTES} bytes are not supported"),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    decode_audio(&bytes, path, raw_sample_rate)
}

/// [`read_audio`] for the command line: a file that is not audio is the user's to fix
/// ([`crate::error::InputError`], exit 2), as is a missing one (an I/O error).
pub fn load(path: &Path, raw_sample_rate: Option<u32>) -> anyhow::Result<Vec<f32>> {
    read_audio(path, raw_sample_rate).map_err(|e| match e {
        AudioError::Invalid { .. } => crate::input_error!("{e}"),
        AudioError::Io { .. } => anyhow::Error::new(e),
    })
}

/// [`read_audio`] on bytes already in memory; `path` decides the format by its extension when
/// the bytes are not RIFF, and names the file in errors.
pub fn decode_audio(
    bytes: &[u8],
    path: &Path,
    raw_sample_rate: Option<u32>,
) -> Result<Vec<f32>, AudioError> {
    let fail = |reason: String| invalid(path, reason);
    if bytes.is_empty() {
        return Err(fail("is empty (0 bytes)".into()));
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let (samples, rate) = if bytes.starts_with(b"RIFF") {
        decode_wav(bytes).map_err(fail)?
    } else {
        match extension.as_deref() {
            Some("raw" | "pcm") => {
                let rate = raw_sample_rate.unwrap_or(TARGET_SAMPLE_RATE);
                (decode_raw_s16le(bytes).map_err(fail)?, rate)
            }
            Some("wav" | "wave") => {
                return Err(fail(format!(
                    "is not a WAV file: it starts with {} instead of \"RIFF\"",
                    show_bytes(bytes)
                )));
            }
            _ => {
                return Err(fail(format!(
                    "is not a supported audio file: it starts with {}; expected a RIFF/WAVE .wav or \
                     headerless 16-bit little-endian .raw/.pcm",
                    show_bytes(bytes)
                )));
            }
        }
    };
    check_sample_rate(rate).map_err(fail)?;
    if samples.is_empty() {
        return Err(fail("contains no audio samples".into()));
    }
    if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
        return Err(fail(format!(
            "sample {i} is not a finite number ({})",
            samples[i]
        )));
    }
    let samples = resample_to_16k(samples, rate).map_err(fail)?;
    if samples.iter().any(|s| !s.is_finite()) {
        return Err(fail(format!(
            "resampling from {rate} Hz overflowed: the samples are too large"
        )));
    }
    Ok(samples)
}

fn invalid(path: &Path, reason: String) -> AudioError {
    AudioError::Invalid {
        path: path.to_owned(),
        reason,
    }
}

/// The first bytes, printable ones as text, for "not a WAV file" messages.
fn show_bytes(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(4)];
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(head))
    } else {
        head.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn check_sample_rate(rate: u32) -> Result<(), String> {
    if rate == 0 {
        return Err("has a sample rate of 0 Hz".into());
    }
    if !SAMPLE_RATES.contains(&rate) {
        return Err(format!(
            "has a sample rate of {rate} Hz; supported rates are {} to {} Hz",
            SAMPLE_RATES.start(),
            SAMPLE_RATES.end()
        ));
    }
    Ok(())
}

/// Headerless signed 16-bit little-endian mono, scaled by 1/32768.
fn decode_raw_s16le(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(format!(
            "has an odd number of bytes ({}); a .raw file must be 16-bit little-endian PCM",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect())
}

/// Decode a WAV file to mono samples and its sample rate.
fn decode_wav(bytes: &[u8]) -> Result<(Vec<f32>, u32), String> {
    check_riff(bytes)?;

    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("wav");
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| format!("is not a readable WAV file: {}", describe(&e)))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or("has no audio track")?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or("has no audio format description")?
        .clone();

    // Checked before a decoder exists: its buffers are sized by the channel count.
    let channels = params.channels.as_ref().map_or(0, |c| c.count());
    if channels == 0 {
        return Err("declares 0 channels".into());
    }
    if channels > MAX_CHANNELS {
        return Err(format!(
            "has {channels} channels; only mono and stereo are supported"
        ));
    }
    let rate = params.sample_rate.unwrap_or(0);
    check_sample_rate(rate)?;

    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| {
            format!(
                "has a sample format that cannot be decoded: {}",
                describe(&e)
            )
        })?;

    let mut mono = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A streamed WAV (data size 0xFFFFFFFF) simply runs to the end of the file.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(format!("could not be read: {}", describe(&e))),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = decoder
            .decode(&packet)
            .map_err(|e| format!("could not be decoded: {}", describe(&e)))?;
        buffer.copy_to_vec_interleaved(&mut interleaved);
        if channels == 1 {
            mono.extend_from_slice(&interleaved);
        } else {
            mono.extend(interleaved.chunks_exact(2).map(|lr| (lr[0] + lr[1]) * 0.5));
        }
    }
    Ok((mono, rate))
}

fn describe(e: &SymphoniaError) -> String {
    match e {
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated".into()
        }
        other => other.to_string(),
    }
}

/// Walk the RIFF chunk headers up to the `data` chunk and check that each declared size fits
/// in the file (and, inside a `LIST`, in the list), that `fmt ` comes first and is large
/// enough. Afterwards every size symphonia trusts is bounded by the file's length.
fn check_riff(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 12 {
        return Err(format!(
            "is truncated: {} bytes is too short for a WAV header (12 bytes)",
            bytes.len()
        ));
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(format!(
            "is a RIFF file of type {:?}, not WAVE",
            String::from_utf8_lossy(&bytes[8..12])
        ));
    }
    let declared = u32_at(bytes, 4);
    if declared < 4 {
        return Err(format!(
            "has a RIFF size of {declared} bytes, too small to hold \"WAVE\""
        ));
    }
    // 0xFFFFFFFF is what ffmpeg writes when streaming: the size is not known.
    let end = if declared == u32::MAX {
        bytes.len()
    } else {
        let end = declared as usize + 8;
        if end > bytes.len() {
            return Err(format!(
                "is truncated: its RIFF header declares {end} bytes but the file has {}",
                bytes.len()
            ));
        }
        end
    };

    let mut fmt_seen = false;
    let mut pos = 12;
    while pos + 8 <= end {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4);
        let body = pos + 8;
        let name = String::from_utf8_lossy(id);
        if id == b"data" {
            if !fmt_seen {
                return Err("has no \"fmt \" chunk before its data".into());
            }
            if size != u32::MAX && size as usize > end - body {
                return Err(format!(
                    "is truncated: its data chunk declares {size} bytes but only {} follow",
                    end - body
                ));
            }
            return Ok(());
        }
        if size as usize > end - body {
            return Err(format!(
                "is truncated or corrupt: chunk {name:?} at byte {pos} declares {size} bytes but only {} follow",
                end - body
            ));
        }
        let chunk_end = body + size as usize;
        match id {
            b"fmt " => {
                check_fmt(&bytes[body..chunk_end])?;
                fmt_seen = true;
            }
            b"LIST" if size >= 4 => check_subchunks(bytes, body + 4, chunk_end)?,
            _ => {}
        }
        // Chunks start on even offsets: an odd-sized chunk is followed by a pad byte.
        pos = chunk_end + (size as usize & 1);
    }
    Err(if fmt_seen {
        "has no data chunk"
    } else {
        "has no \"fmt \" chunk and no data chunk"
    }
    .into())
}

/// The fields of `fmt ` that must be sane before symphonia parses it: the channel count (the
/// decoder sizes its buffers by it) and, in an extensible header, a channel mask that
/// symphonia 0.6.1 can repair without overflowing a shift (a mask with bit 31 set and fewer
/// bits than channels panics in `fix_wave_channel_mask`).
fn check_fmt(fmt: &[u8]) -> Result<(), String> {
    if fmt.len() < 16 {
        return Err(format!(
            "has a \"fmt \" chunk of {} bytes (at least 16 needed)",
            fmt.len()
        ));
    }
    let tag = u16::from_le_bytes([fmt[0], fmt[1]]);
    let channels = usize::from(u16::from_le_bytes([fmt[2], fmt[3]]));
    if channels == 0 {
        return Err("declares 0 channels".into());
    }
    if channels > MAX_CHANNELS {
        return Err(format!(
            "has {channels} channels; only mono and stereo are supported"
        ));
    }
    if tag == 0xfffe && fmt.len() >= 24 {
        let mask = u32_at(fmt, 20);
        if mask & 0x8000_0000 != 0 && (mask.count_ones() as usize) < channels {
            return Err(format!(
                "has a channel mask 0x{mask:08x} that does not fit its {channels} channels"
            ));
        }
    }
    Ok(())
}

/// The sub-chunks of a `LIST` must each fit in the list.
fn check_subchunks(bytes: &[u8], mut pos: usize, end: usize) -> Result<(), String> {
    while pos + 8 <= end {
        let size = u32_at(bytes, pos + 4) as usize;
        if size > end - pos - 8 {
            return Err(format!(
                "is corrupt: a LIST entry at byte {pos} declares {size} bytes but its list has only {} left",
                end - pos - 8
            ));
        }
        pos += 8 + size + (size & 1);
    }
    Ok(())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Resample mono audio from `rate` to 16 kHz; 16 kHz input is returned untouched.
pub fn resample_to_16k(samples: Vec<f32>, rate: u32) -> Result<Vec<f32>, String> {
    if rate == TARGET_SAMPLE_RATE || samples.is_empty() {
        return Ok(samples);
    }
    let error = |e: &dyn std::fmt::Display| format!("could not be resampled from {rate} Hz: {e}");
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        TARGET_SAMPLE_RATE as usize,
        1024,
        1,
        FixedSync::Both,
    )
    .map_err(|e| error(&e))?;
    let input = InterleavedSlice::new(&samples, 1, samples.len()).map_err(|e| error(&e))?;
    let output = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| error(&e))?;
    Ok(output.take_data())
}

/// Fuzz target body (cargo-fuzz style): decode arbitrary bytes as a `.wav` and as a `.raw` at a
/// rate taken from the data. Must never panic; audio it accepts must be finite and non-empty.
pub fn fuzz_read_audio(data: &[u8]) {
    let rate =
        [8_000, 16_000, 22_050, 44_100, 48_000, 0][data.first().map_or(0, |b| usize::from(*b) % 6)];
    for (name, raw_rate) in [("fuzz.wav", None), ("fuzz.raw", Some(rate))] {
        if let Ok(samples) = decode_audio(data, Path::new(name), raw_rate) {
            assert!(!samples.is_empty());
            assert!(samples.iter().all(|s| s.is_finite()));
        }
    }
}

#[cfg(test)]
mod tests;
