"""Small random-weight fixtures of torchvision's VisionTransformer and ConvNeXt, and the key lists
of the real-size vit_b_16 and convnext_tiny, for pretune's layout and maths tests.

    /opt/torch-venv/bin/python bench/parity/vit_convnext_fixtures.py

Writes into tests/fixtures/ (each file well under 1 MB; tests never run Python):
- vit_tiny.safetensors: VisionTransformer(**VIT_ARGS) in eval mode. Every state_dict tensor
  under its torchvision name (F32), plus
    input   [2,3,32,32] F32, logits [2,5] F32,
    debug.embedded      [2,5,32]  tokens after class-token concat + encoder.pos_embedding
    debug.layer{i}      [2,5,32]  output of encoder.layers.encoder_layer_{i}
    debug.encoder_out   [2,5,32]  after encoder.ln (logits = heads.head(debug.encoder_out[:,0]))
- convnext_tiny_small.safetensors: ConvNeXt(CONVNEXT_BLOCKS, **CONVNEXT_ARGS) in eval mode.
  Every state_dict tensor (F32), plus input [2,3,64,64] F32, logits [2,5] F32, and
    debug.features.{i}  output of features[i] (stem, stage, downsample, ...), NCHW
    debug.pooled        [2,64,1,1] after avgpool (before classifier LayerNorm2d)
- torchvision_keys_vit_convnext.json: {"vit_b_16": [[name, shape], ...], "convnext_tiny": [...]}
  in the format of torchvision_keys.json (weights=None; num_batches_tracked left out).

torchvision initialises some tensors to constants (heads.head = 0, class_token = 0, LayerNorm
weight 1 / bias 0, biases 0 or N(0, 1e-6), layer_scale 1e-6), which would hide layout and maths
mistakes, so every tensor that is (nearly) constant after init becomes round(mean) + N(0, 0.2^2),
and layer_scale U(0.2, 1.0), before the forward pass
(see randomise()); the stored tensors are exactly what produced the logits.
"""
import json, os

import torch
import torchvision
from safetensors.torch import save_file
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.vision_transformer import VisionTransformer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")

VIT_ARGS = dict(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                num_classes=5)  # dropout=0, attention_dropout=0, LayerNorm eps 1e-6 (defaults)
CONVNEXT_BLOCKS = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1),
                   CNBlockConfig(64, None, 1)]
CONVNEXT_ARGS = dict(stochastic_depth_prob=0.1, layer_scale=1e-6, num_classes=5)


def randomise(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(0.2 + 0.8 * torch.rand(p.shape, generator=gen))
            elif float((p - p.mean()).abs().max()) < 1e-4:  # constant, or ~0 (MLPBlock bias std 1e-6)
                base = round(p.mean().item())
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))


def capture(named_modules, store):
    hooks = []
    for key, module in named_modules:
        hooks.append(module.register_forward_hook(
            lambda m, i, o, key=key: store.__setitem__(key, o.detach().clone().contiguous())))
    return hooks


def vit(gen):
    model = VisionTransformer(**VIT_ARGS).eval()
    randomise(model, gen)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    debug = {}
    hooks = capture([(f"debug.layer{i}", layer) for i, layer in enumerate(model.encoder.layers)]
                    + [("debug.encoder_out", model.encoder.ln)], debug)
    hooks.append(model.encoder.layers.register_forward_pre_hook(
        lambda m, i: debug.__setitem__("debug.embedded", i[0].detach().clone().contiguous())))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors.update(input=x, logits=logits, **debug)
    save_file(tensors, os.path.join(OUT, "vit_tiny.safetensors"),
              metadata={"constructor": "torchvision.models.vision_transformer.VisionTransformer("
                        + ", ".join(f"{k}={v}" for k, v in VIT_ARGS.items()) + ")"})
    return model


def convnext(gen):
    model = ConvNeXt(CONVNEXT_BLOCKS, **CONVNEXT_ARGS).eval()
    randomise(model, gen)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    debug = {}
    hooks = capture([(f"debug.features.{i}", f) for i, f in enumerate(model.features)]
                    + [("debug.pooled", model.avgpool)], debug)
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors.update(input=x, logits=logits, **debug)
    save_file(tensors, os.path.join(OUT, "convnext_tiny_small.safetensors"),
              metadata={"constructor": "torchvision.models.convnext.ConvNeXt(" + repr(CONVNEXT_BLOCKS)
                        + ", " + ", ".join(f"{k}={v}" for k, v in CONVNEXT_ARGS.items()) + ")"})
    return model


def main():
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(20240611)
    vit(gen)
    convnext(gen)
    keys = {}
    for arch in ["vit_b_16", "convnext_tiny"]:
        model = getattr(torchvision.models, arch)(weights=None)
        keys[arch] = [[k, list(v.shape)] for k, v in model.state_dict().items()
                      if not k.endswith("num_batches_tracked")]
    with open(os.path.join(OUT, "torchvision_keys_vit_convnext.json"), "w") as f:
        json.dump(keys, f, separators=(",", ":"))
    for name in ["vit_tiny.safetensors", "convnext_tiny_small.safetensors", "torchvision_keys_vit_convnext.json"]:
        path = os.path.join(OUT, name)
        os.chmod(path, 0o644)
        print(name, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
