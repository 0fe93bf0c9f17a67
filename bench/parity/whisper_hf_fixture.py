"""A tiny, randomly initialised Hugging Face Whisper and its outputs, for testing an HF-format loader.

    /opt/torch-venv/bin/python bench/parity/whisper_hf_fixture.py

Needs torch, transformers (>= 4.40; written against 5.24) and safetensors. Reads the goforward mel from
tests/fixtures/whisper/mel_goforward.safetensors (bench/parity/whisper_reference.py) and writes:

  tests/fixtures/whisper/hf_tiny/config.json, model.safetensors
      WhisperForConditionalGeneration, float32: d_model 64, 2 encoder + 2 decoder layers, 4 heads, ffn 128,
      vocab 100, 80 mel bins, max_source_positions 150 (so the encoder takes exactly 300 mel frames:
      transformers requires input length == 2 * max_source_positions), max_target_positions 64.
      Every parameter is random (torch seed 0), layer norms and biases included, so a loader that
      mixes them up fails; the encoder's position table stays the sinusoids transformers initialises
      (and it is stored in the file). proj_out is tied to the decoder's embed_tokens.
  tests/fixtures/whisper/hf_tiny_io.safetensors
      input_features    [1, 80, 300] float32  goforward.raw's log-mel (278 frames of audio, then zeros)
      decoder_input_ids [1, 7]       int64
      encoder_output    [1, 150, 64] float32  model.model.encoder(...).last_hidden_state
      logits            [1, 7, 100]  float32  model(input_features, decoder_input_ids).logits
"""
import json, os

import torch
from safetensors.numpy import load_file
from safetensors.torch import save_file
from transformers import WhisperConfig, WhisperForConditionalGeneration

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "whisper")
FRAMES = 300
TOKENS = [3, 17, 42, 99, 5, 8, 2]


def main():
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=100, num_mel_bins=80, d_model=64,
        encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=FRAMES // 2, max_target_positions=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=3,
        suppress_tokens=None, begin_suppress_tokens=None,
        activation_function="gelu", scale_embedding=False,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        use_cache=True, tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config).eval()

    # transformers initialises biases to 0 and layer norms to (1, 0): randomise everything so that a
    # loader which drops a bias or swaps gamma/beta cannot pass. Keep the encoder's sinusoids.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "model.encoder.embed_positions.weight":
                continue
            if name.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
        # Whisper's k_proj has no bias: check the architecture is as documented.
        assert model.model.encoder.layers[0].self_attn.k_proj.bias is None
        assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()

    hf_dir = os.path.join(OUT, "hf_tiny")
    model.save_pretrained(hf_dir, safe_serialization=True)
    # Keep only config.json and model.safetensors (generation_config.json is not needed for a forward).
    for name in os.listdir(hf_dir):
        if name not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(hf_dir, name))

    mel = load_file(os.path.join(OUT, "mel_goforward.safetensors"))["mel"]  # [80, n_frames + 20]
    features = torch.zeros(1, 80, FRAMES)
    k = min(FRAMES, mel.shape[1])
    features[0, :, :k] = torch.from_numpy(mel[:, :k])
    ids = torch.tensor([TOKENS], dtype=torch.int64)
    with torch.no_grad():
        encoder_output = model.model.encoder(features).last_hidden_state
        out = model(input_features=features, decoder_input_ids=ids)
        # The same logits from the decoder's hidden state times the tied embedding matrix.
        hidden = model.model.decoder(input_ids=ids, encoder_hidden_states=encoder_output).last_hidden_state
        assert torch.allclose(hidden @ model.model.decoder.embed_tokens.weight.T, out.logits, atol=1e-5)
    save_file({"input_features": features.contiguous(), "decoder_input_ids": ids,
               "encoder_output": encoder_output.contiguous(), "logits": out.logits.contiguous()},
              os.path.join(OUT, "hf_tiny_io.safetensors"),
              metadata={"about": "hf_tiny; input_features: goforward.raw log-mel, 278 frames + zero padding"})

    for path in (os.path.join(hf_dir, "model.safetensors"), os.path.join(OUT, "hf_tiny_io.safetensors")):
        os.chmod(path, 0o644)  # safetensors writes 0600

    # Reload from disk and check the saved checkpoint reproduces the logits.
    again = WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        assert torch.equal(again(input_features=features, decoder_input_ids=ids).logits, out.logits)
    from safetensors import safe_open
    with safe_open(os.path.join(hf_dir, "model.safetensors"), "pt") as f:
        names = sorted(f.keys())
    print(json.dumps({"tensors": len(names), "names": names}, indent=1))
    print("logits", tuple(out.logits.shape), "max |logit|", float(out.logits.abs().max()))


if __name__ == "__main__":
    main()
