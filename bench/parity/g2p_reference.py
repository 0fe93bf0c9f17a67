"""Reference outputs of g2p_en's neural G2p.predict() on a fixed CMUdict sample (numpy only).

    bash scripts/g2p.sh                      # models/g2p-en/{checkpoint20.npz,vocab.json}
    apt-get install -y pocketsphinx-en-us    # /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict
    /opt/seq-venv/bin/python bench/parity/g2p_reference.py [MODEL_DIR] [CMUDICT]

Writes tests/fixtures/g2p_cmudict_sample.tsv (word, g2p_en, cmudict) and
tests/fixtures/g2p_handpicked.tsv (same columns; cmudict empty for words not in the dictionary),
and prints the phoneme error rate and word accuracy of the model against the dictionary.

predict() below re-implements g2p_en 2.1.0's G2p.predict() (g2p_en/g2p.py) operation for
operation, in float32 as the original: the word's characters (no lower-casing, anything outside
a-z becomes <unk>) plus </s> run through the encoder GRU from a zero state; the decoder GRU
starts from the encoder's last hidden state with <s> as input and decodes greedily (argmax) for
at most 20 steps, stopping at </s>. Gate rows of the [768, 256] matrices are r, z, n (PyTorch).

Sample rule: the dictionary's entries whose headword is lower-case ASCII letters only (this
drops alternates `word(2)`, apostrophes, dots, hyphens and digits), in file order, numbered from
0; every entry whose number is a multiple of 100. Scoring strips the stress digits from
g2p_en's phonemes (the Debian dictionary has none) and compares with the dictionary's first
pronunciation; the phoneme error rate is the summed Levenshtein distance over the summed
reference length.
"""
import json, os, re, sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "g2p-en")
CMUDICT = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
OUT = os.path.join(ROOT, "tests", "fixtures")
EVERY = 100
HANDPICKED = ["tomato", "colonel", "a", "the", "queue", "yacht", "through", "knight", "phoenix",
              "psychology", "worcestershire", "supercalifragilisticexpialidocious", "pretune",
              "activationist", "burn", "rustacean", "pytorch", "tensorflow", "xyzzy", "q",
              "Tomato", "naïve"]

with open(os.path.join(MODEL, "vocab.json")) as f:
    vocab = json.load(f)
GRAPHEMES, PHONEMES = vocab["graphemes"], vocab["phonemes"]
G2IDX = {g: i for i, g in enumerate(GRAPHEMES)}
V = np.load(os.path.join(MODEL, "checkpoint20.npz"))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def grucell(x, h, w_ih, w_hh, b_ih, b_hh):
    """One PyTorch-style GRU step; rows of w_* are [r; z; n], 256 each."""
    rzn_ih = np.matmul(x, w_ih.T) + b_ih
    rzn_hh = np.matmul(h, w_hh.T) + b_hh
    k = rzn_ih.shape[-1] * 2 // 3
    rz = sigmoid(rzn_ih[:, :k] + rzn_hh[:, :k])
    r, z = np.split(rz, 2, -1)
    n = np.tanh(rzn_ih[:, k:] + r * rzn_hh[:, k:])  # reset gate applied after W_hn h + b_hn
    return (1 - z) * n + z * h


def predict(word):
    ids = [G2IDX.get(c, G2IDX["<unk>"]) for c in list(word) + ["</s>"]]
    x = np.take(V["enc_emb"], np.expand_dims(ids, 0), axis=0)  # (1, len+1, 256)
    h = np.zeros((1, V["enc_w_hh"].shape[-1]), np.float32)
    for t in range(len(word) + 1):
        h = grucell(x[:, t, :], h, V["enc_w_ih"], V["enc_w_hh"], V["enc_b_ih"], V["enc_b_hh"])
    dec = np.take(V["dec_emb"], [2], axis=0)  # <s>
    preds = []
    for _ in range(20):
        h = grucell(dec, h, V["dec_w_ih"], V["dec_w_hh"], V["dec_b_ih"], V["dec_b_hh"])
        logits = np.matmul(h, V["fc_w"].T) + V["fc_b"]
        pred = logits.argmax()
        if pred == 3:  # </s>
            break
        preds.append(pred)
        dec = np.take(V["dec_emb"], [pred], axis=0)
    return [PHONEMES[i] for i in preds]


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def strip_stress(phones):
    return [re.sub(r"\d$", "", p) for p in phones]


prons = {}  # word -> [pronunciation, alternates...] in file order
letters_only = []
with open(CMUDICT, encoding="utf-8") as f:
    for line in f:
        head, *phones = line.split()
        word = re.sub(r"\(\d+\)$", "", head)
        prons.setdefault(word, []).append(phones)
        if re.fullmatch(r"[a-z]+", head):
            letters_only.append(head)
sample = letters_only[::EVERY]

errors = ref_len = exact = any_variant = 0
rows = []
for word in sample:
    hyp = predict(word)
    bare = strip_stress(hyp)
    ref = prons[word][0]
    errors += levenshtein(bare, ref)
    ref_len += len(ref)
    exact += bare == ref
    any_variant += bare in prons[word]
    rows.append((word, " ".join(hyp), " ".join(ref)))

with open(os.path.join(OUT, "g2p_cmudict_sample.tsv"), "w", encoding="utf-8") as f:
    f.write("word\tg2p_en\tcmudict\n")
    f.writelines("\t".join(r) + "\n" for r in rows)
with open(os.path.join(OUT, "g2p_handpicked.tsv"), "w", encoding="utf-8") as f:
    f.write("word\tg2p_en\tcmudict\n")
    for word in HANDPICKED:
        hyp = " ".join(predict(word))
        ref = " ".join(prons[word][0]) if word in prons else ""
        f.write(f"{word}\t{hyp}\t{ref}\n")
        print(f"{word:36} {hyp:40} {ref}")

n = len(sample)
print(f"{n} words (every {EVERY}th of {len(letters_only)} letters-only entries)")
print(f"phoneme error rate {errors / ref_len:.4f} ({errors}/{ref_len}), "
      f"word accuracy {exact / n:.4f} ({exact}/{n}), any pronunciation {any_variant / n:.4f}")
