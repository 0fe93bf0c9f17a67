"""faster-whisper's transcription time per file, for bench/whisper.sh.

    /opt/whisper-venv/bin/python bench/whisper_faster.py MODEL_DIR COMPUTE_TYPE FILE...

COMPUTE_TYPE is int8 or float32 (CTranslate2 on the CPU, THREADS threads, default 2). The settings
are those of tests/fixtures/whisper/transcripts.json (greedy, no timestamps, no previous text, no
VAD); the timed part is what `pretune transcribe` times: decoding the audio from memory, the log-mel,
the encoder and the decoder. Prints one JSON line per file.
"""
import json, os, sys, time, wave

import numpy as np
import ctranslate2
from faster_whisper import WhisperModel


def read_audio(path):
    if path.endswith(".wav"):
        with wave.open(path) as w:
            raw = w.readframes(w.getnframes())
    else:
        raw = open(path, "rb").read()
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0


def main():
    model_dir, compute_type, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    threads = int(os.environ.get("THREADS", "2"))
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads)
    settings = dict(beam_size=1, temperature=0.0, without_timestamps=True,
                    condition_on_previous_text=False, vad_filter=False, language="en")

    def run(audio):
        segments, _ = model.transcribe(audio, **settings)
        return [t for s in segments for t in s.tokens]

    run(read_audio(files[0]))  # warm-up
    for f in files:
        audio = read_audio(f)
        started = time.perf_counter()
        tokens = run(audio)
        seconds = time.perf_counter() - started
        print(json.dumps({"framework": f"faster-whisper 1.2.1 (CTranslate2 {ctranslate2.__version__}, {compute_type})",
                          "file": f, "audio_seconds": len(audio) / 16000, "seconds": seconds, "tokens": tokens}))


if __name__ == "__main__":
    main()
