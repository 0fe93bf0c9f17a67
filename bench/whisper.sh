#!/usr/bin/env bash
# Whisper tiny.en on the 14 real recordings of pocketsphinx-testdata (46.6 s of speech):
#
# 1. pretune's token ids against faster-whisper's (tests/fixtures/whisper/transcripts.json), all 14;
# 2. the word error rate where the package has references (librivox, cards), by `pretune eval`
#    (sclite's alignment, checked against sclite in src/metrics/wer.rs);
# 3. the real-time factor (compute seconds / audio seconds, model loading excluded, one warm-up
#    file first) of pretune, faster-whisper (CTranslate2 int8 and float32) and transformers on
#    PyTorch, side by side, and pretune reading the same weights as a Hugging Face directory.
#
#   bench/whisper.sh        # env: THREADS (2), ROUNDS (3, alternated; medians), PYTHON_FW (/opt/whisper-venv/bin/python),
#                           # PYTHON_TORCH (/opt/torch-venv/bin/python), HF (runs/whisper-tiny.en-hf),
#                           # BIN (a pretune binary to use instead of building one)
# Needs: scripts/whisper.sh, apt-get install pocketsphinx-testdata; faster-whisper and
# transformers+torch in their venvs. Run on a quiet machine: 2-thread timings swing with load.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PYTHON_FW=${PYTHON_FW:-/opt/whisper-venv/bin/python}
PYTHON_TORCH=${PYTHON_TORCH:-/opt/torch-venv/bin/python}
MODEL=models/whisper-tiny.en
HF=${HF:-runs/whisper-tiny.en-hf}
FIXTURE=tests/fixtures/whisper/transcripts.json
OUT=bench/results/whisper
mkdir -p "$OUT"
mapfile -t FILES < <(python3 -c "import json; [print(r['path']) for r in json.load(open('$FIXTURE'))['recordings']]")

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/pretune
fi
[ -d "$HF" ] || "$PYTHON_TORCH" bench/whisper_hf.py convert "$MODEL" "$HF"

# A warm-up file first (its line is dropped), as the Python runs do.
pretune_run() {
  "$BIN" --threads "$THREADS" transcribe --json --model "$1" "${FILES[0]}" "${FILES[@]}" | tail -n +2 |
    python3 -c "import json,sys; [print(json.dumps({'framework': '$2', **json.loads(l)})) for l in sys.stdin]"
}
: > "$OUT/pretune.jsonl"; : > "$OUT/pretune_hf.jsonl"; : > "$OUT/faster_int8.jsonl"
: > "$OUT/faster_float32.jsonl"; : > "$OUT/transformers.jsonl"
for round in $(seq "$ROUNDS"); do  # alternated, so a busy moment hits every implementation alike
  echo "round $round of $ROUNDS" >&2
  pretune_run "$MODEL" "pretune $(git describe --always --dirty 2>/dev/null) (Burn flex, float32)" >> "$OUT/pretune.jsonl"
  pretune_run "$HF" "pretune, Hugging Face directory" >> "$OUT/pretune_hf.jsonl"
  THREADS=$THREADS "$PYTHON_FW" bench/whisper_faster.py "$MODEL" int8 "${FILES[@]}" >> "$OUT/faster_int8.jsonl"
  THREADS=$THREADS "$PYTHON_FW" bench/whisper_faster.py "$MODEL" float32 "${FILES[@]}" >> "$OUT/faster_float32.jsonl"
  THREADS=$THREADS "$PYTHON_TORCH" bench/whisper_hf.py time "$HF" "${FILES[@]}" 2> /dev/null >> "$OUT/transformers.jsonl"
done

# Word error rates by pretune eval, on manifests of the referenced sets.
for set in librivox cards; do
  python3 - "$FIXTURE" "$set" > "$OUT/$set.tsv" <<'PY'
import json, sys
print("audio\ttext\tsplit")
for r in json.load(open(sys.argv[1]))["recordings"]:
    if r["file"].startswith(sys.argv[2] + "/"):
        print(f"{r['path']}\t{r['reference']}\ttest")
PY
  "$BIN" --threads "$THREADS" eval --model "$MODEL" --data "$OUT/$set.tsv" --split test --json > "$OUT/$set.wer.json"
done

python3 - "$FIXTURE" "$OUT" <<'PY'
import json, statistics, sys
fixture, out = sys.argv[1], sys.argv[2]
expected = {r["path"]: r["tokens"] for r in json.load(open(fixture))["recordings"]}
runs = ["pretune", "pretune_hf", "faster_int8", "faster_float32", "transformers"]
rows = {}
for run in runs:
    lines = [json.loads(l) for l in open(f"{out}/{run}.jsonl") if l.strip()]
    n = len(expected)
    rounds = [lines[i:i + n] for i in range(0, len(lines), n)]
    audio = sum(l["audio_seconds"] for l in rounds[0])
    compute = statistics.median(sum(l["seconds"] for l in r) for r in rounds)
    same = min(sum(l["tokens"] == expected[l["file"]] for l in r) for r in rounds)
    rows[run] = (lines[0]["framework"], n, audio, compute, compute / audio, same, len(rounds))
base = rows["pretune"][4]
print(f"| implementation | files | audio s | compute s (median of {rows['pretune'][6]}) | real-time factor | vs pretune | token ids = faster-whisper's |")
print("|---|---:|---:|---:|---:|---:|---:|")
for run in runs:
    fw, n, audio, compute, rtf, same, _ = rows[run]
    print(f"| {fw} | {n} | {audio:.1f} | {compute:.1f} | {rtf:.3f} | {base / rtf:.2f}x | {same}/{n} |")
print()
print("| set | utterances | words | WER | sub / del / ins |")
print("|---|---:|---:|---:|---|")
for s in ["librivox", "cards"]:
    w = json.load(open(f"{out}/{s}.wer.json"))
    n = w["reference_words"]
    pct = lambda k: f"{100 * w[k] / n:.1f}"
    print(f"| {s} | {w['recordings']} | {n} | {100 * w['word_error_rate']:.1f}% | "
          f"{pct('substitutions')} / {pct('deletions')} / {pct('insertions')} % |")
PY
