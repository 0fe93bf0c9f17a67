"""Reference sentence embeddings from sentence-transformers for tests/fixtures/minilm_embeddings.json.

    /opt/torch-venv/bin/python bench/parity/minilm_reference.py MODEL_DIR

MODEL_DIR is the unpacked all-MiniLM-L6-v2 (scripts/minilm.sh). Needs sentence-transformers.
"""
import json, os, sys

os.environ["HF_HUB_OFFLINE"] = "1"
from sentence_transformers import SentenceTransformer  # noqa: E402

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning a pretrained network needs far fewer labels than training from scratch.",
    "Crème brûlée, façade, naïve café — Ünïcödé äccents everywhere.",
    "机器学习是人工智能的一个分支。",
    "Straße und Größe: ß wird zu ss?",
    "a",
    "",
    "🙂 emoji and   irregular\twhitespace\n here",
    " ".join(["Pretraining on a large general corpus, then fine-tuning on the task, is deep learning's"
              " most useful habit."] * 40),
    "Q: What is 2+2? A: 4.",
]

model = SentenceTransformer(sys.argv[1], device="cpu")
embeddings = model.encode(TEXTS, normalize_embeddings=True)
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "minilm_embeddings.json")
with open(out, "w") as f:
    json.dump([{"text": t, "embedding": [round(float(x), 7) for x in e]} for t, e in zip(TEXTS, embeddings)], f)
print("wrote", out, "max_seq_length", model.max_seq_length)
