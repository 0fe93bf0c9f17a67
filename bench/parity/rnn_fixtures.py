"""PyTorch nn.GRU / nn.LSTM reference tensors for tests/fixtures/rnn_parity.safetensors.

    /opt/torch-venv/bin/python bench/parity/rnn_fixtures.py

Four modules, all batch_first=True, input_size 5, hidden_size 7, batch 3, sequence length 6,
float32, PyTorch's default initialisation after torch.manual_seed(0):

    gru1   nn.GRU,  num_layers=1, unidirectional
    gru2   nn.GRU,  num_layers=2, bidirectional
    lstm1  nn.LSTM, num_layers=1, unidirectional
    lstm2  nn.LSTM, num_layers=2, bidirectional

Tensors, each under "<prefix>.": every parameter by PyTorch's own name (weight_ih_l0 [3H|4H, in],
weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._l1, ..._reverse; gate rows r,z,n for GRU and i,f,g,o
for LSTM), input [3, 6, 5], h0 [layers*dirs, 3, 7] (and c0 for LSTM), and PyTorch's results:
output [3, 6, 7*dirs], h_n [layers*dirs, 3, 7] (and c_n). Layer 1 of a bidirectional stack has
input size 14 (both directions of layer 0 concatenated, forward first); the first axis of
h0/h_n/c0/c_n is layer * directions + direction (l0 forward, l0 reverse, l1 forward, ...); the
reverse direction reads the sequence from its end and writes output[:, t, 7:] at its own t.
h0/c0 are random, not zero, so that initial-state handling is tested. The file's metadata names the torch version.
"""
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                   "rnn_parity.safetensors")
INPUT, HIDDEN, BATCH, SEQ = 5, 7, 3, 6

torch.manual_seed(0)
tensors = {}
for prefix, cls, layers, bidirectional in [("gru1", torch.nn.GRU, 1, False),
                                           ("gru2", torch.nn.GRU, 2, True),
                                           ("lstm1", torch.nn.LSTM, 1, False),
                                           ("lstm2", torch.nn.LSTM, 2, True)]:
    rnn = cls(INPUT, HIDDEN, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    rnn.eval()
    states = layers * (2 if bidirectional else 1)
    x = torch.randn(BATCH, SEQ, INPUT)
    h0 = torch.randn(states, BATCH, HIDDEN)
    with torch.no_grad():
        if cls is torch.nn.LSTM:
            c0 = torch.randn(states, BATCH, HIDDEN)
            out, (h_n, c_n) = rnn(x, (h0, c0))
            tensors.update({f"{prefix}.c0": c0, f"{prefix}.c_n": c_n})
        else:
            out, h_n = rnn(x, h0)
    for name, p in rnn.named_parameters():
        tensors[f"{prefix}.{name}"] = p.detach()
    tensors.update({f"{prefix}.input": x, f"{prefix}.h0": h0, f"{prefix}.output": out,
                    f"{prefix}.h_n": h_n})

tensors = {k: v.contiguous().clone() for k, v in sorted(tensors.items())}
save_file(tensors, OUT, metadata={"torch": torch.__version__, "seed": "0",
                                  "layout": "batch_first; see bench/parity/rnn_fixtures.py"})
print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(tensors)} tensors)")
for k, v in tensors.items():
    print(f"  {k:32} {list(v.shape)}")
