"""Word error rates from NIST sclite for tests/fixtures/wer_sclite.json (stdlib only).

    apt-get install -y sctk      # Debian's SCTK 2.4.10; sclite lives in /usr/lib/sctk/bin
    python3 bench/parity/wer_sclite.py

Writes each (reference, hypothesis) pair as one utterance of two trn files and runs

    sclite -r ref.trn trn -h hyp.trn trn -i spu_id [-s] -o pra stdout

once case-sensitive (-s) and once with sclite's default case-insensitive matching (which folds
ASCII letters only; pairs with non-ASCII letters carry "ascii": false). For each pair the
fixture has sclite's counts {"c", "s", "d", "i"} for both runs and the unit-cost Levenshtein
distance of the whitespace-split words; "totals" has the summed counts and the WER (errors /
reference words) of each run.

sclite aligns with weights correct 0, substitution 4, insertion 3, deletion 3 (word.c wwd_WORD)
and, per cell, prefers the diagonal when it is no worse than both others, then deletion when
strictly cheaper than insertion, else insertion (net_dp.c calculate_internal_cells), then
backtraces from the end. That minimises 4S + 3(D + I), not S + D + I, so on rare pairs its
error count exceeds the Levenshtein distance: "differs" pairs below show it.
"""
import json, os, random, re, subprocess, tempfile

SCLITE = "/usr/lib/sctk/bin/sclite"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                   "wer_sclite.json")

PAIRS = [  # (reference, hypothesis)
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the cat sat on the mat", "the cat sit on mat"),
    ("the cat sat on the mat", "a cat sat on the the mat"),
    ("Hello World", "hello world"),
    ("Hello World", "HELLO WORLD again"),
    ("a b c d", "x y z a"),
    ("a b c d", "b c d e"),
    ("a b c d", ""),
    ("", "something"),
    ("one", "one two three four"),
    ("one two three four", "four"),
    ("go to the store and buy some milk", "go to store and by sum milk please"),
    ("turn the lights off in the kitchen", "turn lights of in kitchen"),
    ("i want to recognize speech", "i want to wreck a nice beach"),
    ("it's a well-known fact", "its a well known fact"),
    ("it's a well-known fact, isn't it?", "it's a well-known fact isn't it"),
    ("New York City", "new york city"),
    ("café naïve résumé", "cafe naive resume"),
    ("CAFÉ NAÏVE", "café naïve"),
    ("the the the the", "the"),
    ("a", "b"),
    ("a a c a c b", "c b b b a a a"),
    ("b c a a c b b", "a c b b c b"),
    ("a c b c c b b c", "b b a a b"),
    ("a b a a b b b b a", "b b a b a a a"),
    ("c c b d d", "e d f e f e a"),
    ("f f b e d", "b a a e"),
    ("numbers 1 2 3 and 42", "numbers one two three and 42"),
    ("MixedCase Tokens Here", "mixedcase tokens here"),
    ("tab\tseparated  and   spaced", "tab separated and spaced"),
]
rng = random.Random(7)  # a few longer random ones over a small vocabulary
for _ in range(20):
    vocab = "alpha beta gamma delta eps".split()
    ref = [rng.choice(vocab) for _ in range(rng.randint(1, 12))]
    hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
    PAIRS.append((" ".join(ref), " ".join(hyp)))


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def run_sclite(case_sensitive):
    with tempfile.TemporaryDirectory() as tmp:
        for name, col in (("ref.trn", 0), ("hyp.trn", 1)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                for k, pair in enumerate(PAIRS):
                    f.write(f"{' '.join(pair[col].split())} (p_{k})\n")
        cmd = [SCLITE, "-r", "ref.trn", "trn", "-h", "hyp.trn", "trn", "-i", "spu_id",
               "-o", "pra", "stdout"] + (["-s"] if case_sensitive else [])
        out = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=True).stdout
    found = re.findall(r"id: \(p_(\d+)\)\nScores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", out)
    counts = {int(k): dict(zip("csdi", map(int, v))) for k, *v in found}
    assert sorted(counts) == list(range(len(PAIRS))), "sclite skipped an utterance"
    return counts, " ".join(cmd[1:])


sensitive, cmd_s = run_sclite(True)
insensitive, cmd_i = run_sclite(False)
pairs, totals = [], {"ref_words": 0, "case_sensitive": [0, 0, 0, 0], "case_insensitive": [0, 0, 0, 0]}
for k, (ref, hyp) in enumerate(PAIRS):
    lev = levenshtein(ref.split(), hyp.split())
    s, i = sensitive[k], insensitive[k]
    pairs.append({"reference": ref, "hypothesis": hyp, "ascii": (ref + hyp).isascii(),
                  "ref_words": len(ref.split()), "levenshtein": lev,
                  "case_sensitive": s, "case_insensitive": i,
                  "differs": s["s"] + s["d"] + s["i"] != lev})
    totals["ref_words"] += len(ref.split())
    for key, v in (("case_sensitive", s), ("case_insensitive", i)):
        totals[key] = [a + b for a, b in zip(totals[key], (v["c"], v["s"], v["d"], v["i"]))]
for key in ("case_sensitive", "case_insensitive"):
    c, s, d, i = totals[key]
    totals[key] = {"c": c, "s": s, "d": d, "i": i, "wer": (s + d + i) / totals["ref_words"]}
p = subprocess.run([SCLITE], capture_output=True, text=True)
version = p.stdout + p.stderr
version = re.search(r"sclite Version: [^\n]*", version)
doc = {"sclite": version.group(0) if version else "sclite (SCTK, Debian sctk 2.4.10)",
       "commands": {"case_sensitive": cmd_s, "case_insensitive": cmd_i},
       "totals": totals, "pairs": pairs}
with open(OUT, "w", encoding="utf-8") as f:
    head = json.dumps({k: v for k, v in doc.items() if k != "pairs"}, ensure_ascii=False, indent=1)
    f.write(head[:-2] + ',\n "pairs": [\n')
    f.write(",\n".join(json.dumps(p, ensure_ascii=False) for p in pairs))
    f.write("\n ]\n}\n")
print(f"{len(pairs)} pairs; WER case-sensitive {totals['case_sensitive']['wer']:.4f}, "
      f"case-insensitive {totals['case_insensitive']['wer']:.4f}; "
      f"{sum(p['differs'] for p in pairs)} pairs where sclite's errors exceed Levenshtein")
