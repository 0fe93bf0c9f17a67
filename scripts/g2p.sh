#!/usr/bin/env bash
# Unpack the real pretrained g2p_en grapheme-to-phoneme GRU encoder-decoder (Apache-2.0,
# Kyubyong Park & Jongseok Kim) from PyPI's g2p-en 2.1.0 wheel into models/g2p-en (or $1):
# checkpoint20.npz (float32 weights) and vocab.json (the 29 graphemes and 74 phonemes in index
# order, read from the wheel's g2p.py). Needs pip and the PyPI
# registry once; does nothing when the model is already there.
set -euo pipefail
HERE=$(dirname "$0")
DEST=${1:-"$HERE/../models/g2p-en"}
if [ -f "$DEST/checkpoint20.npz" ] && [ -f "$DEST/vocab.json" ]; then
  exit 0
fi
"$HERE/wheel.sh" g2p-en==2.1.0 g2p_en/ "$DEST" checkpoint20.npz
python3 - "$DEST" <<'PY'
import ast, json, os, sys
dest = sys.argv[1]
source = open(os.path.join(dest, "g2p.py"), encoding="utf-8").read()
# The vocabularies are `self.graphemes = [...] + list("...")` and `self.phonemes = [...] + [...]`
# in G2p.__init__; evaluate just those two expressions, with nothing but `list` available.
vocab = {}
for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        t = node.targets[0]
        if isinstance(t, ast.Attribute) and t.attr in ("graphemes", "phonemes"):
            expr = compile(ast.Expression(node.value), "g2p.py", "eval")
            vocab[t.attr] = eval(expr, {"__builtins__": {}, "list": list})
assert len(vocab.get("graphemes", [])) == 29 and len(vocab.get("phonemes", [])) == 74, vocab
assert vocab["graphemes"][:3] == ["<pad>", "<unk>", "</s>"]
assert vocab["phonemes"][:4] == ["<pad>", "<unk>", "<s>", "</s>"]
vocab = {"source": "g2p-en 2.1.0, g2p_en/g2p.py (G2p.__init__)",
         "graphemes": vocab["graphemes"], "phonemes": vocab["phonemes"],
         "pad": 0, "unk": 1, "grapheme_eos": 2, "phoneme_bos": 2, "phoneme_eos": 3}
tmp = os.path.join(dest, ".vocab.json.partial")
with open(tmp, "w") as f:
    json.dump(vocab, f, indent=1)
    f.write("\n")
os.replace(tmp, os.path.join(dest, "vocab.json"))
PY
echo "g2p-en vocabularies written to $DEST/vocab.json"
