#!/usr/bin/env python3
"""Writes tiny Hugging Face model directories and their reference outputs (tests/data/hf_dirs/).

Developer machine only (needs torch, transformers, safetensors); tests and CI never run Python.
Each tests/data/hf_dirs/<name>/ is what save_pretrained writes (config.json, model.safetensors or
shards with model.safetensors.index.json), plus reference.safetensors: inputs and the model's
outputs. Sizes are tiny (d_model 32, two layers, vocab 97) and everything is seeded.

    python3 tools/make_hf_dir_fixtures.py              # rewrites tests/data/hf_dirs/
    python3 tools/make_hf_dir_fixtures.py llama_blocks # only that directory
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "hf_dirs")
torch.set_grad_enabled(False)

B, S, V = 3, 9, 97
LENGTHS = torch.tensor([9, 6, 2], dtype=torch.int32)
MASK = (torch.arange(S)[None, :] < LENGTHS[:, None]).long()  # HF: 1 = attend
IDS = torch.randint(3, V, (B, S), generator=torch.Generator().manual_seed(7)).masked_fill(MASK == 0, 0)


def randomize(module, scale=0.2):
    """Moves every parameter away from its default (norm weights of 1, zero biases)."""
    g = torch.Generator().manual_seed(1234)
    for p in module.parameters():
        p.add_(torch.randn(p.shape, generator=g) * scale * (p.std() if p.numel() > 1 and p.std() > 0 else 0.1))


def save(name, model, tensors, shard=None, extra=None):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(path, **kw)
    for f in os.listdir(path):  # keep only what the loader reads
        if f == "generation_config.json":
            os.remove(os.path.join(path, f))
    for rel, text in (extra or {}).items():
        os.makedirs(os.path.dirname(os.path.join(path, rel)) or path, exist_ok=True)
        with open(os.path.join(path, rel), "w") as f:
            f.write(text)
    ref = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(ref, os.path.join(path, "reference.safetensors"), metadata={"torch": torch.__version__})
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    print(f"{name}: {size} bytes, {sorted(os.listdir(path))}")


def lm_case(model):
    logits = model(input_ids=IDS, attention_mask=MASK).logits
    return {"input_ids": IDS.int(), "lengths": LENGTHS, "logits": logits}


def tiny_tokenizer():
    """A WordPiece tokenizer.json over letters, digits and punctuation (78 ids, within V), lowercasing,
    with "<s>" put before every text: enough to tokenize any English calibration text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "<s>", "</s>"] + chars + ["##" + c for c in chars] + list("0123456789") + list(".,;:!?'\"()-/")
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    tok.decoder = decoders.WordPiece()
    assert len(vocab) <= V
    return tok.to_str()


def llama_blocks():
    """Llama whose every linear has whole 32-wide blocks (d 32, ffn 64), tied, with a tokenizer.json:
    the input of tformer-quantize's directory tests."""
    import transformers as t
    torch.manual_seed(12)
    cfg = t.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=True,
                        bos_token_id=2, eos_token_id=3)
    model = t.LlamaForCausalLM(cfg).eval()
    randomize(model)
    save("llama_blocks", model, lm_case(model), extra={"tokenizer.json": tiny_tokenizer()})


def main():
    import transformers as t
    if sys.argv[1:] == ["llama_blocks"]:
        return llama_blocks()
    os.makedirs(OUT, exist_ok=True)

    # BERT as sentence-transformers saves it: BertModel + mean pooling + Normalize
    torch.manual_seed(1)
    cfg = t.BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                       max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12)
    model = t.BertModel(cfg, add_pooling_layer=False).eval()
    randomize(model)
    h = model(input_ids=IDS, attention_mask=MASK).last_hidden_state
    m = MASK[..., None].float()
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    mx = h.masked_fill(m == 0, -1e9).max(1).values
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    pooling = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}
    save("bert_st", model, {"input_ids": IDS.int(), "lengths": LENGTHS, "last_hidden_state": h, "cls": h[:, 0],
                            "mean": mean, "max": mx,
                            "embedding": torch.nn.functional.normalize(mean, p=2, dim=1)},
         extra={"modules.json": json.dumps(modules, indent=2), "1_Pooling/config.json": json.dumps(pooling, indent=2)})

    # GPT-2 (tied head, Conv1D weights)
    torch.manual_seed(2)
    cfg = t.GPT2Config(vocab_size=V, n_positions=40, n_embd=32, n_layer=2, n_head=4, activation_function="gelu_new",
                       layer_norm_epsilon=1e-5)
    model = t.GPT2LMHeadModel(cfg).eval()
    randomize(model)
    save("gpt2", model, lm_case(model))

    # Llama (untied head, GQA), sharded with an index
    torch.manual_seed(3)
    cfg = t.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
                        rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    model = t.LlamaForCausalLM(cfg).eval()
    randomize(model)
    save("llama_sharded", model, lm_case(model), shard="40KB")

    # SmolLM2-like: Llama with a tied head
    torch.manual_seed(4)
    cfg = t.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=1, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=True)
    model = t.LlamaForCausalLM(cfg).eval()
    randomize(model)
    save("llama_tied", model, lm_case(model))

    # Mistral with a sliding window shorter than the sequence
    torch.manual_seed(5)
    cfg = t.MistralConfig(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5,
                          sliding_window=4, tie_word_embeddings=False)
    model = t.MistralForCausalLM(cfg).eval()
    randomize(model)
    save("mistral", model, lm_case(model))

    # Qwen2: q/k/v biases, tied head, a sliding window on the layers from max_window_layers on
    torch.manual_seed(6)
    cfg = t.Qwen2Config(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True,
                        use_sliding_window=True, sliding_window=3, max_window_layers=1)
    model = t.Qwen2ForCausalLM(cfg).eval()
    randomize(model)
    save("qwen2", model, lm_case(model))

    # T5 v1.0 (ReLU, tied head with the d^-0.5 rescale) and v1.1 (gated GELU, untied)
    T = 6
    tgt_lengths = torch.tensor([6, 3, 4], dtype=torch.int32)
    dec_mask = (torch.arange(T)[None, :] < tgt_lengths[:, None]).long()
    dec_ids = torch.randint(3, V, (B, T), generator=torch.Generator().manual_seed(8)).masked_fill(dec_mask == 0, 0)
    for name, ffp, tied, seed in (("t5_v1_0", "relu", True, 7), ("t5_v1_1", "gated-gelu", False, 8)):
        torch.manual_seed(seed)
        cfg = t.T5Config(vocab_size=V, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2, num_heads=4,
                         relative_attention_num_buckets=8, relative_attention_max_distance=20, feed_forward_proj=ffp,
                         tie_word_embeddings=tied, decoder_start_token_id=0, pad_token_id=0)
        model = t.T5ForConditionalGeneration(cfg).eval()
        randomize(model)
        logits = model(input_ids=IDS, attention_mask=MASK, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask).logits
        save(name, model, {"input_ids": IDS.int(), "lengths": LENGTHS, "decoder_input_ids": dec_ids.int(),
                           "decoder_lengths": tgt_lengths, "logits": logits})

    # Scaled rotary: one tied Llama, logits for each rope_parameters variant (rope has no weights);
    # positions run past the original context of the llama3 and yarn variants
    torch.manual_seed(11)
    variants = {
        "linear": {"rope_type": "linear", "factor": 2.5},
        "llama3": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 64},
        "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
        "yarn_untruncated": {"rope_type": "yarn", "factor": 3.0, "original_max_position_embeddings": 32, "beta_fast": 8.0,
                             "beta_slow": 0.5, "truncate": False, "attention_factor": 1.2},
    }
    rope_ids = torch.randint(3, V, (2, 40), generator=torch.Generator().manual_seed(11))
    ref = {"input_ids": rope_ids.int()}
    model = None
    for name, v in variants.items():
        v["rope_theta"] = 10000.0
        cfg = t.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, tie_word_embeddings=True,
                            rope_parameters=dict(v))
        m = t.LlamaForCausalLM(cfg).eval()
        if model is None:
            randomize(m)
            model = m
        else:
            m.load_state_dict(model.state_dict())
        ref["logits_" + name] = m(input_ids=rope_ids).logits
    model.config.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
    save("llama_rope", model, ref, extra={"rope_variants.json": json.dumps(variants, indent=2)})

    # BART (learned positions with offset 2, layernorm_embedding, GELU) and Marian (split sinusoids,
    # scaled embeddings, swish): post-LN, shared table, final_logits_bias
    for name, seed in (("bart", 9), ("marian", 10)):
        torch.manual_seed(seed)
        marian = name == "marian"
        kw = dict(vocab_size=V, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                  decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, max_position_embeddings=20,
                  pad_token_id=V - 1 if marian else 1, decoder_start_token_id=V - 1 if marian else 2,
                  scale_embedding=marian, activation_function="swish" if marian else "gelu")
        cfg = t.MarianConfig(**kw) if marian else t.BartConfig(**kw)
        model = (t.MarianMTModel if marian else t.BartForConditionalGeneration)(cfg).eval()
        randomize(model)
        if marian:  # the sinusoids are not saved: keep the computed table
            for e in (model.model.encoder.embed_positions, model.model.decoder.embed_positions):
                e.weight.copy_(e.create_weight())
        model.final_logits_bias.copy_(torch.randn(model.final_logits_bias.shape, generator=torch.Generator().manual_seed(seed)))
        logits = model(input_ids=IDS, attention_mask=MASK, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask).logits
        save(name, model, {"input_ids": IDS.int(), "lengths": LENGTHS, "decoder_input_ids": dec_ids.int(),
                           "decoder_lengths": tgt_lengths, "logits": logits})
        again = type(model).from_pretrained(os.path.join(OUT, name)).eval()  # what the directory holds
        same = again(input_ids=IDS, attention_mask=MASK, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask).logits
        assert torch.equal(same, logits), name
    llama_blocks()
    print("transformers", t.__version__)


if __name__ == "__main__":
    main()
    sys.exit(0)
