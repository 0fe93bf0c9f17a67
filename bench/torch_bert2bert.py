"""BERT2BERT in PyTorch + transformers (EncoderDecoderModel, both halves from one BERT
directory), trained on the Debian descriptions as `pretune demo summarize` trains its
warm-started model: the reference for its speed (pairs/s) and for what a budget of pairs and
epochs reaches. Prints one JSON line per epoch and writes the test predictions.

  /opt/torch-venv/bin/python bench/torch_bert2bert.py models/all-MiniLM-L6-v2 \
      --pairs 1000 --epochs 3 --lr 1e-4 --out /tmp/b2b.json
  --out writes {"references", "predictions"} for the test pairs (every k-th of the test
  split, as the demo picks them): score them with rouge-score (in /opt/seq-venv).
"""

import argparse
import gzip
import json
import random
import sys
import time

import torch
from transformers import BertTokenizerFast, EncoderDecoderModel, get_linear_schedule_with_warmup

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--data", default="data/debian-descriptions.jsonl.gz")
p.add_argument("--pairs", type=int, default=1000)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--source-length", type=int, default=32)
p.add_argument("--target-length", type=int, default=16)
p.add_argument("--test-pairs", type=int, default=200, help="0: train only")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--cross-from-self", action="store_true",
               help="start each cross-attention as a copy of its layer's self-attention")
p.add_argument("--freeze-encoder", action="store_true")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--out", default=None)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
random.seed(a.seed)

opener = gzip.open if a.data.endswith(".gz") else open
rows = [json.loads(line) for line in opener(a.data, "rt")]
train = [r for r in rows if r["split"] == "train"]
test = [r for r in rows if r["split"] == "test"]
train = random.sample(train, a.pairs)
test = test[::-(-len(test) // a.test_pairs)] if a.test_pairs else []

tok = BertTokenizerFast.from_pretrained(a.model)
model = EncoderDecoderModel.from_encoder_decoder_pretrained(a.model, a.model)
cfg = model.config
if a.cross_from_self:
    for layer in model.decoder.bert.encoder.layer:
        layer.crossattention.load_state_dict(layer.attention.state_dict())
for c in (cfg, model.generation_config):
    c.decoder_start_token_id, c.eos_token_id, c.pad_token_id = (
        tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)


def batch(rs):
    src = tok([r["text"] for r in rs], max_length=a.source_length, truncation=True,
              padding=True, return_tensors="pt")
    tgt = tok([r["summary"] for r in rs], max_length=a.target_length + 1, truncation=True,
              padding=True, return_tensors="pt")
    labels = tgt.input_ids[:, 1:].clone()  # drop [CLS]: the decoder starts from it
    labels[tgt.attention_mask[:, 1:] == 0] = -100
    return src, labels


if a.freeze_encoder:
    for q in model.encoder.parameters():
        q.requires_grad_(False)
opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=a.lr,
                        weight_decay=0.01)
steps = a.epochs * -(-len(train) // a.batch_size)
sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps / a.epochs), steps)
loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1)
for epoch in range(a.epochs):
    model.train()
    random.shuffle(train)
    started, total, n = time.time(), 0.0, 0
    for i in range(0, len(train), a.batch_size):
        src, labels = batch(train[i:i + a.batch_size])
        out = model(input_ids=src.input_ids, attention_mask=src.attention_mask, labels=labels)
        loss = loss_fn(out.logits.reshape(-1, out.logits.shape[-1]), labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item()
        n += 1
    seconds = time.time() - started
    print(json.dumps({"epoch": epoch + 1, "train_loss": total / n, "seconds": round(seconds, 1),
                      "pairs_per_s": round(len(train) / seconds, 2)}), flush=True)

if not test:
    sys.exit()
model.eval()
predictions = []
with torch.no_grad():
    for i in range(0, len(test), 16):
        rs = test[i:i + 16]
        src = tok([r["text"] for r in rs], max_length=a.source_length, truncation=True,
                  padding=True, return_tensors="pt")
        ids = model.generate(src.input_ids, attention_mask=src.attention_mask,
                             max_new_tokens=a.target_length, num_beams=1,
                             no_repeat_ngram_size=3)
        predictions += tok.batch_decode(ids, skip_special_tokens=True)
for r, pr in list(zip(test, predictions))[:5]:
    print(json.dumps({"reference": r["summary"], "prediction": pr}))
if a.out:
    json.dump({"references": [r["summary"] for r in test], "predictions": predictions},
              open(a.out, "w"))
