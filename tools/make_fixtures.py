#!/usr/bin/env python3
"""Writes the reference fixtures that tformer's parity tests read (tests/data/).

Developer machine only (needs torch, transformers, safetensors); tests and CI never run Python.
Every fixture is a pair of safetensors files:
  <name>.model.safetensors  the module's own state_dict, under PyTorch / Hugging Face names
  <name>.case.safetensors   inputs and reference outputs, plus the config as JSON in __metadata__
Sizes are tiny (a few KB to a few hundred KB each) and everything is seeded.

    python3 tools/make_fixtures.py            # rewrites tests/data/*.safetensors
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
torch.set_grad_enabled(False)


def save(name, module, tensors, config):
    os.makedirs(OUT, exist_ok=True)
    state = {k: v.detach().contiguous().float() for k, v in module.state_dict().items()}
    # tied weights appear once per name in state_dict; safetensors refuses shared storage
    state = {k: v.clone() for k, v in state.items()}
    save_file(state, os.path.join(OUT, f"{name}.model.safetensors"))
    case = {k: v.detach().contiguous() for k, v in tensors.items()}
    meta = {"config": json.dumps(config, sort_keys=True), "torch": torch.__version__}
    save_file(case, os.path.join(OUT, f"{name}.case.safetensors"), metadata=meta)
    size = sum(os.path.getsize(os.path.join(OUT, f"{name}.{s}.safetensors")) for s in ("model", "case"))
    print(f"{name}: {size} bytes")


def lengths_mask(lengths, seq):
    """key padding mask, True = padding (PyTorch's nn.MultiheadAttention convention)."""
    return torch.arange(seq)[None, :] >= lengths[:, None]


def randomize(module, scale=0.5):
    """Moves every parameter away from its default (LayerNorm weights of 1, zero biases)."""
    g = torch.Generator().manual_seed(1234)
    for p in module.parameters():
        p.add_(torch.randn(p.shape, generator=g) * scale * (p.std() if p.numel() > 1 and p.std() > 0 else 0.1))


def torch_nn_fixtures():
    torch.manual_seed(0)
    E, H, B, S, T = 16, 4, 3, 7, 5
    lengths = torch.tensor([7, 4, 1], dtype=torch.int32)
    src_lengths = lengths
    tgt_lengths = torch.tensor([5, 3, 2], dtype=torch.int32)

    # nn.MultiheadAttention: self-attention with causal + key padding masks
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True).eval()
    randomize(mha)
    x = torch.randn(B, S, E)
    causal = torch.triu(torch.ones(S, S, dtype=torch.bool), 1)  # True = masked
    y, _ = mha(x, x, x, key_padding_mask=lengths_mask(lengths, S), attn_mask=causal, need_weights=False)
    save("torch_mha_self", mha, {"x": x, "lengths": lengths, "y": y},
         {"embed_dim": E, "num_heads": H, "causal": True})

    # nn.MultiheadAttention: cross-attention with key padding
    mha = torch.nn.MultiheadAttention(E, H, batch_first=True).eval()
    randomize(mha)
    q = torch.randn(B, T, E)
    mem = torch.randn(B, S, E)
    y, _ = mha(q, mem, mem, key_padding_mask=lengths_mask(lengths, S), need_weights=False)
    save("torch_mha_cross", mha, {"q": q, "memory": mem, "lengths": lengths, "y": y},
         {"embed_dim": E, "num_heads": H})

    FF = 32
    # nn.TransformerEncoderLayer: post-norm ReLU (the defaults) and pre-norm GELU
    for name, kw in (("torch_encoder_layer_post_relu", {}),
                     ("torch_encoder_layer_pre_gelu", {"norm_first": True, "activation": "gelu"})):
        layer = torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, batch_first=True, **kw).eval()
        randomize(layer)
        x = torch.randn(B, S, E)
        y = layer(x, src_key_padding_mask=lengths_mask(lengths, S))
        save(name, layer, {"x": x, "lengths": lengths, "y": y},
             {"d_model": E, "nhead": H, "dim_feedforward": FF, "norm_first": kw.get("norm_first", False),
              "activation": kw.get("activation", "relu"), "eps": 1e-5})

    # nn.TransformerDecoderLayer (post-norm ReLU): causal self-attention, cross-attention with padding
    layer = torch.nn.TransformerDecoderLayer(E, H, FF, dropout=0.0, batch_first=True).eval()
    randomize(layer)
    tgt = torch.randn(B, T, E)
    mem = torch.randn(B, S, E)
    tgt_causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    y = layer(tgt, mem, tgt_mask=tgt_causal, tgt_key_padding_mask=lengths_mask(tgt_lengths, T),
              memory_key_padding_mask=lengths_mask(src_lengths, S))
    save("torch_decoder_layer", layer,
         {"tgt": tgt, "memory": mem, "tgt_lengths": tgt_lengths, "src_lengths": src_lengths, "y": y},
         {"d_model": E, "nhead": H, "dim_feedforward": FF, "eps": 1e-5})

    # nn.Transformer: 2 encoder + 2 decoder layers with final norms
    model = torch.nn.Transformer(E, H, 2, 2, FF, dropout=0.0, batch_first=True).eval()
    randomize(model)
    src = torch.randn(B, S, E)
    tgt = torch.randn(B, T, E)
    y = model(src, tgt, tgt_mask=tgt_causal, src_key_padding_mask=lengths_mask(src_lengths, S),
              tgt_key_padding_mask=lengths_mask(tgt_lengths, T),
              memory_key_padding_mask=lengths_mask(src_lengths, S))
    save("torch_transformer", model,
         {"src": src, "tgt": tgt, "src_lengths": src_lengths, "tgt_lengths": tgt_lengths, "y": y},
         {"d_model": E, "nhead": H, "num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": FF,
          "eps": 1e-5})


def hf_fixtures():
    import transformers
    from transformers import (BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                              T5Config, T5ForConditionalGeneration)
    B, S = 3, 9
    lengths = torch.tensor([9, 6, 2], dtype=torch.int32)
    mask = (~lengths_mask(lengths, S)).long()  # HF: 1 = attend
    V = 97
    ids = torch.randint(3, V, (B, S), generator=torch.Generator().manual_seed(7))
    ids = ids.masked_fill(mask == 0, 0)  # padding id 0 at the end

    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
                     attn_implementation="eager")
    model = BertModel(cfg).eval()
    randomize(model, 0.2)
    out = model(input_ids=ids, attention_mask=mask)
    h = out.last_hidden_state
    mean = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    save("hf_bert", model, {"input_ids": ids.int(), "lengths": lengths, "last_hidden_state": h,
                            "pooler_output": out.pooler_output, "mean_pooled": mean, "cls": h[:, 0]},
         cfg.to_dict())

    torch.manual_seed(2)
    cfg = GPT2Config(vocab_size=V, n_positions=40, n_embd=32, n_layer=2, n_head=4, activation_function="gelu_new", bos_token_id=1, eos_token_id=2,
                     layer_norm_epsilon=1e-5, attn_implementation="eager")
    model = GPT2LMHeadModel(cfg).eval()
    randomize(model, 0.2)
    logits = model(input_ids=ids, attention_mask=mask).logits
    save("hf_gpt2", model, {"input_ids": ids.int(), "lengths": lengths, "logits": logits}, cfg.to_dict())

    torch.manual_seed(3)
    cfg = LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
                      attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    randomize(model, 0.2)
    logits = model(input_ids=ids, attention_mask=mask).logits
    save("hf_llama", model, {"input_ids": ids.int(), "lengths": lengths, "logits": logits}, cfg.to_dict())

    torch.manual_seed(4)
    cfg = T5Config(vocab_size=V, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, relative_attention_max_distance=20,
                   feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
                   pad_token_id=0, attn_implementation="eager")
    model = T5ForConditionalGeneration(cfg).eval()
    randomize(model, 0.2)
    T = 6
    tgt_lengths = torch.tensor([6, 3, 4], dtype=torch.int32)
    dec_mask = (~lengths_mask(tgt_lengths, T)).long()
    dec_ids = torch.randint(3, V, (B, T), generator=torch.Generator().manual_seed(8)).masked_fill(dec_mask == 0, 0)
    logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids,
                   decoder_attention_mask=dec_mask).logits
    save("hf_t5", model, {"input_ids": ids.int(), "lengths": lengths, "decoder_input_ids": dec_ids.int(),
                          "decoder_lengths": tgt_lengths, "logits": logits}, cfg.to_dict())
    print("transformers", transformers.__version__)


def hf_generate_fixtures():
    """Greedy and beam-search (4 beams, length penalty 1.0 and 0.6) token sequences from Hugging Face
    generate() for the tiny GPT-2 and T5 models above, one input at a time (the C++ tests decode them
    as one batch). The end token is the token greedy decoding emits most often, so that hypotheses end
    at different lengths and the length penalty matters."""
    from collections import Counter
    from safetensors.torch import load_file
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    def load(name, cls, cfg_cls):
        from safetensors import safe_open
        with safe_open(os.path.join(OUT, f"{name}.case.safetensors"), "pt") as f:
            cfg = json.loads(f.metadata()["config"])
        model = cls(cfg_cls.from_dict(cfg)).eval()
        model.load_state_dict(load_file(os.path.join(OUT, f"{name}.model.safetensors")), strict=False)
        return model

    def pad(rows):
        width = max(len(r) for r in rows)
        return torch.tensor([r + [-1] * (width - len(r)) for r in rows], dtype=torch.int32)

    runs = [("hf_gpt2", GPT2LMHeadModel, GPT2Config,
             [[5, 17, 33, 8, 41], [60, 2, 9], [11, 12, 13, 14, 15, 16, 90]]),
            ("hf_t5", T5ForConditionalGeneration, T5Config,
             [[5, 17, 33, 8, 41, 77, 1], [60, 2, 9], [11, 12, 13, 14, 15, 16, 90, 3, 4]])]
    for name, cls, cfg_cls, inputs in runs:
        model = load(name, cls, cfg_cls)
        is_t5 = name == "hf_t5"
        max_new = 8

        def gen(ids, **kw):
            x = torch.tensor([ids])
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new,
                                 do_sample=False, return_dict_in_generate=True, output_scores=True, **kw)
            seqs = out.sequences[:, (1 if is_t5 else len(ids)):]  # drop the decoder start / the prompt
            return seqs, getattr(out, "sequences_scores", None)

        greedy = [gen(i, num_beams=1, eos_token_id=None, pad_token_id=0)[0][0].tolist() for i in inputs]
        eos = Counter(t for g in greedy for t in g).most_common(1)[0][0]
        tensors = {"eos_id": torch.tensor([eos], dtype=torch.int32)}

        def strip(seq):  # HF pads finished sequences with the pad id (= eos here) after the end token
            seq = seq.tolist()
            return seq[:seq.index(eos) + 1] if eos in seq else seq
        g = [strip(gen(i, num_beams=1, eos_token_id=eos, pad_token_id=eos)[0][0]) for i in inputs]
        tensors["greedy"] = pad(g)
        for lp, tag in ((1.0, "beam4_lp10"), (0.6, "beam4_lp06")):
            best, scores = [], []
            for i in inputs:
                seqs, sc = gen(i, num_beams=4, length_penalty=lp, early_stopping=False, eos_token_id=eos,
                               pad_token_id=eos, num_return_sequences=4)
                best.append([strip(s) for s in seqs])
                scores.append(sc.tolist())
            tensors[tag] = pad([b[0] for b in best])
            tensors[tag + "_all"] = pad([s for b in best for s in b])
            tensors[tag + "_scores"] = torch.tensor(scores, dtype=torch.float32)
        tensors["inputs"] = pad(inputs)
        meta = {"max_new_tokens": str(max_new), "decoder_start_token_id": "0"}
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, f"{name}_generate.case.safetensors"),
                  metadata=meta)
        print(f"{name}_generate: eos {eos}, greedy {g}")


if __name__ == "__main__":
    torch_nn_fixtures()
    hf_fixtures()
    hf_generate_fixtures()
    sys.exit(0)
