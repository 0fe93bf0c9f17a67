"""Build data/g2p-en-gb.tsv.gz: British English pronunciations (espeak-ng's en-gb voice, IPA, one
token per phoneme) of a fixed sample of CMUdict words, for `pretune demo g2p` (fine-tuning
g2p_en's American model to British English) and its tests.

    python3 scripts/make_g2p_gb.py      (needs: apt-get install espeak-ng pocketsphinx-en-us)

The sample: the CMUdict words of letters a-z only (no alternates), sorted, every k-th so that
14,000 remain. Each word's split comes from the sha256 of the word (75% train, 10% validation,
15% test), so it never depends on the sample. The output is sorted and gzipped with a fixed
mtime: the same inputs give the same bytes.
"""
import gzip, hashlib, io, re, subprocess, sys

DICT = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
OUT = "data/g2p-en-gb.tsv.gz"
WANT = 14000

words = {}
for line in open(DICT, encoding="utf-8"):
    parts = line.split()
    if parts and re.fullmatch(r"[a-z]+", parts[0]) and parts[0] not in words:
        words[parts[0]] = " ".join(parts[1:])
names = sorted(words)
step = max(1, len(names) // WANT)
sample = names[::step][:WANT]

# espeak-ng reads one word per line and answers one line per word.
out = subprocess.run(
    ["espeak-ng", "-q", "--ipa", "--sep= ", "-v", "en-gb"],
    input="\n".join(sample) + "\n", capture_output=True, text=True, check=True,
).stdout.splitlines()
out = [l.strip() for l in out if l.strip()]
if len(out) != len(sample):
    sys.exit(f"espeak-ng gave {len(out)} lines for {len(sample)} words")

def split(word):
    h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little") % 20
    return "train" if h < 15 else "validation" if h < 17 else "test"

rows = ["word\tgb\tus\tsplit"]
for word, gb in zip(sample, out):
    rows.append(f"{word}\t{gb}\t{words[word]}\t{split(word)}")
buf = io.BytesIO()
with gzip.GzipFile(filename="g2p-en-gb.tsv", mode="wb", fileobj=buf, mtime=0) as z:
    z.write(("\n".join(rows) + "\n").encode())
open(OUT, "wb").write(buf.getvalue())
counts = {s: sum(1 for r in rows[1:] if r.endswith(s)) for s in ("train", "validation", "test")}
print(f"{OUT}: {len(sample)} words {counts}; {len(buf.getvalue())} bytes")
