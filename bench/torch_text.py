"""PyTorch/transformers side of bench/text_transfer.sh: one epoch of fine-tuning
all-MiniLM-L6-v2 (mean pooling + a linear head, AdamW, batch 32, max 256 tokens, padding to the
longest of each batch) on the same fortunes topics and training texts, timed.

    /opt/torch-venv/bin/python bench/torch_text.py MODEL_DIR [--threads 2] [--group-by-length]

--group-by-length batches texts of similar length together as pretune does (Hugging Face
Trainer's `group_by_length`: windows of 50 batches sorted by length, batches shuffled); without
it, batches are random as the Trainer's default.
"""
import argparse, hashlib, json, os, time

import torch
from transformers import AutoModel, AutoTokenizer

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--fortunes", default="/usr/share/games/fortunes")
p.add_argument("--topics", default="computers,politics,science,songs-poems,startrek")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--group-by-length", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)

texts, labels = [], []
for label, topic in enumerate(sorted(a.topics.split(","))):
    raw = open(os.path.join(a.fortunes, topic), encoding="utf-8", errors="replace").read()
    for entry in raw.split("\n%\n"):
        entry = entry.strip()
        if not entry or entry == "%":
            continue
        # pretune's test split: sha256 of the text, first 8 bytes little-endian, mod 5 == 0.
        if int.from_bytes(hashlib.sha256(entry.encode()).digest()[:8], "little") % 5 == 0:
            continue
        texts.append(entry)
        labels.append(label)

tok = AutoTokenizer.from_pretrained(a.model)
enc = AutoModel.from_pretrained(a.model)
head = torch.nn.Linear(enc.config.hidden_size, 5)
opt = torch.optim.AdamW(list(enc.parameters()) + list(head.parameters()), lr=5e-5)
order = torch.randperm(len(texts)).tolist()
batches = [order[i:i + 32] for i in range(0, len(order), 32)]
if a.group_by_length:
    batches = []
    for w in range(0, len(order), 32 * 50):
        window = sorted(order[w:w + 32 * 50], key=lambda j: -len(texts[j]))
        batches += [window[i:i + 32] for i in range(0, len(window), 32)]
    batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
enc.train()
t0 = time.perf_counter()
for idx in batches:
    batch = tok([texts[j] for j in idx], padding=True, truncation=True, max_length=256, return_tensors="pt")
    out = enc(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    loss = torch.nn.functional.cross_entropy(head(pooled), torch.tensor([labels[j] for j in idx]))
    opt.zero_grad()
    loss.backward()
    opt.step()
seconds = time.perf_counter() - t0
print(json.dumps({"framework": f"pytorch {torch.__version__}", "group_by_length": a.group_by_length,
                  "texts": len(texts), "epoch_seconds": round(seconds, 1),
                  "texts_per_s": round(len(texts) / seconds, 1)}))
