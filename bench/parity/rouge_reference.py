"""ROUGE and Porter-stemmer reference values from Google's rouge-score and NLTK.

    bash scripts/make_debian_descriptions.sh       # data/debian-descriptions.jsonl.gz
    /opt/seq-venv/bin/pip install rouge-score nltk  # rouge-score 0.1.2, nltk 3.10.4 when written
    /opt/seq-venv/bin/python bench/parity/rouge_reference.py

Writes
- tests/fixtures/rouge_reference.json: {"versions", "note", "lead10_test", "cases": [...]}, each
  case {"id", "kind", "prediction", "reference", "scores": {"nostem"|"stem": {"rouge1"|"rouge2"|
  "rougeL": {"p", "r", "f"}}}} from RougeScorer(["rouge1", "rouge2", "rougeL"],
  use_stemmer=False/True).score(target=reference, prediction=prediction). Cases: lead-10 and
  lead-5 predictions (the first 10/5 whitespace-separated words of the text) against the synopsis
  for every 25th pair of the test split (file order), plus hand-made edge cases.
  "lead10_test" is the mean P/R/F of lead-10 over the whole test split, with and without stemmer.
- tests/fixtures/porter_nltk.tsv: word<TAB>nltk PorterStemmer().stem(word) (mode NLTK_EXTENSIONS)
  for the 1,000 most frequent rouge tokens of the corpus, every 40th of the other tokens seen at
  least twice (file order of first appearance), and a hand list of rule edge cases.
"""
import collections, gzip, json, os, re

import nltk
import rouge_score
from importlib.metadata import version
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer, tokenize

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "data", "debian-descriptions.jsonl.gz")
OUT = os.path.join(ROOT, "tests", "fixtures")
TYPES = ["rouge1", "rouge2", "rougeL"]
SCORERS = {"nostem": rouge_scorer.RougeScorer(TYPES, use_stemmer=False),
           "stem": rouge_scorer.RougeScorer(TYPES, use_stemmer=True)}

rows = [json.loads(line) for line in gzip.open(DATA, "rt", encoding="utf-8")]
test = [r for r in rows if r["split"] == "test"]


def lead(text, n):
    return " ".join(text.split()[:n])


def scores(reference, prediction):
    return {name: {t: {"p": s[t].precision, "r": s[t].recall, "f": s[t].fmeasure}
                   for t in TYPES}
            for name, sc in SCORERS.items()
            for s in [sc.score(reference, prediction)]}


LONG = " ".join(r["text"] for r in test[:40])
EDGE = [  # (id, prediction, reference)
    ("punctuation-only-prediction", "!!! ... ??? --- ;;", "Hello, world!"),
    ("punctuation-only-both", "...", "?!"),
    ("numbers", "version 2.0.1 released in 2024, 3x faster", "Version 2 0 1 (2024): 3X speed"),
    ("numbers-mixed", "mp3 h264 x86_64 utf-8 ipv6 1080p", "MP3/H.264 decoder for x86-64 (IPv6)"),
    ("unicode-accents", "naïve café résumé", "naive cafe resume"),
    ("unicode-accents-both", "naïve café", "naïve café"),
    ("unicode-german", "Straße und Größe", "strasse und grosse"),
    ("unicode-dotted-capital-i", "İstanbul İzmir", "istanbul izmir"),
    ("unicode-kelvin-sign", "5 \u212a and 300 \u212aelvin", "5 k and 300 kelvin"),
    ("unicode-greek", "ΣΟΦΙΑ σοφία sofia", "sofia"),
    ("unicode-cjk", "机器学习 machine learning 库", "machine learning library"),
    ("unicode-fullwidth", "ＡＢＣ abc", "abc"),
    ("emoji", "fast 🚀 rust 🦀 library", "fast rust library"),
    ("apostrophes", "don't can't it's the user's files", "do not cannot its users files"),
    ("curly-apostrophes", "it’s the user’s ‘files’", "its users files"),
    ("hyphens", "state-of-the-art command-line tool", "state of the art command line tool"),
    ("underscores-slashes", "foo_bar/baz\\qux", "foo bar baz qux"),
    ("empty-prediction", "", "A real synopsis"),
    ("empty-reference", "A real prediction", ""),
    ("empty-both", "", ""),
    ("whitespace-only", " \t\n ", "tool"),
    ("identical", "Command-line tool to convert images", "Command-line tool to convert images"),
    ("case-only", "HELLO World", "hello world"),
    ("repeated-prediction", "the the the the the the", "the cat sat on the mat"),
    ("repeated-reference", "the cat", "the the the the"),
    ("repeated-bigrams", "a b a b a b", "a b a b"),
    ("single-tokens", "tool", "tool"),
    ("single-token-vs-two", "tool", "tool kit"),
    ("reordered", "library for parsing xml", "xml parsing library"),
    ("stemming-verbs", "running runs ran runner", "run running"),
    ("stemming-suffixes", "generously generous generation generalization",
     "general generate generations"),
    ("stemming-short-words", "was has its dies lies", "wa ha it die lie"),
    ("stemming-irregular", "skies dying lying tying news innings", "sky die lie tie new inning"),
    ("stemming-plurals", "libraries utilities packages bindings", "library utility package binding"),
    ("stemming-y", "happy happiness enjoy enjoyment yyyy", "happi happi enjoy enjoy yyyy"),
    ("whitespace-mix", "a\tb\nc  d\r\ne", "a b c d e"),
    ("long-prediction", LONG, test[0]["summary"]),
    ("long-both", LONG, " ".join(r["text"] for r in test[40:60])),
    ("long-reference", test[1]["summary"], LONG),
]

cases = []
for i, r in enumerate(test[::25]):
    for n in (10, 5):
        cases.append({"id": f"lead{n}-{r['package']}", "kind": f"lead{n}",
                      "prediction": lead(r["text"], n), "reference": r["summary"]})
for cid, pred, ref in EDGE:
    cases.append({"id": cid, "kind": "edge", "prediction": pred, "reference": ref})
for c in cases:
    c["scores"] = scores(c["reference"], c["prediction"])

baseline = {}
for name, sc in SCORERS.items():
    acc = collections.defaultdict(float)
    for r in test:
        s = sc.score(r["summary"], lead(r["text"], 10))
        for t in TYPES:
            acc[t, "p"] += s[t].precision
            acc[t, "r"] += s[t].recall
            acc[t, "f"] += s[t].fmeasure
    baseline[name] = {t: {k: acc[t, k] / len(test) for k in "prf"} for t in TYPES}

doc = {
    "versions": {"rouge-score": version("rouge-score"), "nltk": nltk.__version__},
    "note": "RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer).score(target=reference, "
            "prediction=prediction); p/r/f = precision/recall/fmeasure. lead10_test: mean over "
            "the test split of data/debian-descriptions.jsonl.gz, prediction = first 10 "
            "whitespace-separated words of text, reference = summary.",
    "lead10_test": {"pairs": len(test), **baseline},
    "cases": cases,
}
with open(os.path.join(OUT, "rouge_reference.json"), "w", encoding="utf-8") as f:
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False, indent=1)
    f.write(head[:-2] + ',\n "cases": [\n')  # one case a line
    f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
    f.write("\n ]\n}\n")
print(f"{len(cases)} cases; lead-10 on {len(test)} test pairs (F1 x100):")
for name in SCORERS:
    print(f"  {name:7}" + "".join(f"  {t} {100 * baseline[name][t]['f']:.2f}" for t in TYPES))

# Porter fixture.
stemmer = PorterStemmer()
assert stemmer.mode == PorterStemmer.NLTK_EXTENSIONS
freq = collections.Counter()
for r in rows:
    freq.update(t for t in tokenize.tokenize(r["text"] + " " + r["summary"], None)
                if re.fullmatch(r"[a-z]+", t))
top = [w for w, _ in freq.most_common(1000)]
chosen = set(top)
rest = [w for w in freq if w not in chosen and freq[w] >= 2][::40]
HAND = """a i y ys yy yyyy yyyyyy ye yea toy syzygy sky skies dying lying tying news inning innings
outing outings canning cannings howe proceed exceed succeed proceeding exceeded ties dies lies pies
flies spies spied died tied cried caresses ponies caress cats feed agreed plastered bled motoring
sing conflated troubled sized hopping tanned falling hissing fizzed failing filing happy enjoy
relational conditional rational valenci hesitanci digitizer conformabli radicalli differentli vileli
analogousli vietnamization predication operator feudalism decisiveness hopefulness callousness
formaliti sensitiviti sensibiliti fulli hopefulli geologi archaeologi theologi logi triplicate
formative formalize electriciti electrical hopeful goodness revival allowance inference airliner
gyroscopic adjustable defensible irritant replacement adjustment dependent adoption homologou
communism activate angulariti homologous effective bowdlerize probate rate cease controll roll
generously generalizations oscillators eed ied ies ing ed s ss sses bli abli alli ational tional
xml utf libraries bindings utilities running Running RUNNING Libraries""".split()
words = top + rest + [w for w in HAND if w not in chosen and w not in rest]
with open(os.path.join(OUT, "porter_nltk.tsv"), "w", encoding="utf-8") as f:
    f.write("word\tstem\n")
    for w in words:
        f.write(f"{w}\t{stemmer.stem(w)}\n")
print(f"porter_nltk.tsv: {len(words)} words")
