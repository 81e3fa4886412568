#!/usr/bin/env python3
"""Writes GGUF versions of the tiny Hugging Face models in tests/data/hf_dirs/ (tests/data/gguf_arch/).

Developer machine only (needs torch, transformers, tokenizers, numpy and llama.cpp's source tree);
tests and CI never run Python. Each GGUF is written by llama.cpp's own converter
(convert_hf_to_gguf.py, with its gguf-py), so the tensor names, metadata keys, transposes and row
orders are llama.cpp's. llama.cpp's source comes with the llama-cpp-python source package:

    pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36 -d /tmp/llcpp
    tar xf /tmp/llcpp/llama_cpp_python-0.3.36.tar.gz -C /tmp/llcpp
    python3 tools/make_gguf_arch_fixtures.py [--llama-cpp DIR]   # DIR: .../vendor/llama.cpp

Writes, from a temporary copy of each directory:
  gpt2.gguf           hf_dirs/gpt2 as F32 (fused attn_qkv, Conv1D weights as [out, in]);
                      reference: hf_dirs/gpt2/reference.safetensors
  gpt2_q8_0.gguf      the same model as Q8_0 (--outtype q8_0: the 2-D weights in Q8_0, the norms
                      and biases in F32); gpt2_q8_0.reference.safetensors: transformers' logits with
                      every weight replaced by what the GGUF dequantizes to
  qwen2.gguf          hf_dirs/qwen2 as F32 (q/k/v biases, rotate-half rotary, tied head);
                      qwen2.reference.safetensors: transformers' logits without the fixture's
                      sliding window, which llama.cpp's qwen2 converter does not carry
  bert.gguf           hf_dirs/bert_st as F32 (mean pooling in bert.pooling_type);
                      reference: hf_dirs/bert_st/reference.safetensors

The converter needs a tokenizer, which the fixtures lack: each temporary copy gets a tokenizer of
the config's vocabulary size (byte-level BPE for gpt2 and qwen2, WordPiece for bert). Its
pre-tokenizer hash is none that llama.cpp knows, so the converter's hash lookup
(TextModel.get_vocab_base_pre) is replaced by the name of the architecture's usual pre-tokenizer;
nothing else in the converter is changed. The committed hf_dirs are not modified. The output is
deterministic: a rerun rewrites the same GGUF bytes and the same reference values.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")
OUT = os.path.join(DATA, "gguf_arch")
torch.set_grad_enabled(False)

# name, hf_dirs entry, --outtype, llama.cpp pre-tokenizer name, config.json changes (the GPT-2
# converter reads n_ctx, which the original gpt2 configs have and transformers 5 no longer writes:
# n_positions' value; qwen2: see the docstring)
CASES = [
    ("gpt2", "gpt2", "f32", "gpt-2", {"n_ctx": 40}),
    ("gpt2_q8_0", "gpt2", "q8_0", "gpt-2", {"n_ctx": 40}),
    ("qwen2", "qwen2", "f32", "qwen2", {"use_sliding_window": False, "layer_types": None}),
    ("bert", "bert_st", "f32", "default", {}),
    # scaled rotary: Llama 3's becomes rope_freqs.weight, linear rope.scaling.*; reference:
    # hf_dirs/llama_rope/reference.safetensors' logits_llama3 and logits_linear
    ("llama_rope_llama3", "llama_rope", "f32", "default", {"rope_parameters": "llama3"}),
    ("llama_rope_linear", "llama_rope", "f32", "default", {"rope_parameters": "linear"}),
]


def add_tokenizer(path, config):
    """A tokenizer of exactly vocab_size tokens, saved with save_pretrained."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import BertTokenizerFast, PreTrainedTokenizerFast
    n = config["vocab_size"]
    if config["model_type"] == "bert":
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        words += [chr(ord("a") + i % 26) * (1 + i // 26) for i in range(n - len(words))]
        with open(os.path.join(path, "vocab.txt"), "w") as f:
            f.write("\n".join(words) + "\n")
        BertTokenizerFast(vocab_file=os.path.join(path, "vocab.txt")).save_pretrained(path)
        return
    # n - 1 byte-level symbols and <|endoftext|>, which transformers' Qwen2 tokenizer would
    # otherwise append past the vocabulary
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())[:n - 1] + ["<|endoftext|>"]
    tok = Tokenizer(models.BPE({c: i for i, c in enumerate(alphabet)}, []))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(path)


def convert(llama_cpp, src, out, outtype, pre):
    """llama.cpp's convert_hf_to_gguf.py main() on src, with the pre-tokenizer named `pre`."""
    if llama_cpp not in sys.path:
        sys.path.insert(0, llama_cpp)
    import convert_hf_to_gguf
    from conversion.base import TextModel
    TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
    argv = sys.argv
    sys.argv = ["convert_hf_to_gguf.py", src, "--outtype", outtype, "--outfile", out]
    try:
        convert_hf_to_gguf.main()
    finally:
        sys.argv = argv


def load_reference(hf_name):
    from safetensors.torch import load_file
    return load_file(os.path.join(DATA, "hf_dirs", hf_name, "reference.safetensors"))


def lm_reference(model, ref):
    ids, lengths = ref["input_ids"].long(), ref["lengths"]
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    logits = model(input_ids=ids, attention_mask=mask).logits
    return {"input_ids": ref["input_ids"], "lengths": lengths, "logits": logits}


def dequantized_model(path, gguf_path):
    """The HF model of `path` with every weight the GGUF stores quantized replaced by its
    dequantized values (found through gguf-py's own HF -> GGUF name map)."""
    import gguf
    import transformers as t
    model = t.AutoModelForCausalLM.from_pretrained(path).eval()
    reader = gguf.GGUFReader(gguf_path)
    tensors = {x.name: x for x in reader.tensors}
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")]
    names = gguf.get_tensor_name_map(arch, model.config.num_hidden_layers)
    state = model.state_dict()
    replaced = 0
    for name, value in state.items():
        to = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if to is None or to not in tensors:
            continue
        x = tensors[to]
        if x.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            continue
        w = torch.from_numpy(np.array(gguf.quants.dequantize(x.data, x.tensor_type), dtype=np.float32))
        if arch == gguf.MODEL_ARCH.GPT2 and name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            w = w.T  # the Conv1D weights GPT2Model.modify_tensors transposes (c_proj's are square)
        assert w.shape == value.shape, (name, w.shape, value.shape)
        value.copy_(w)
        replaced += 1
    assert replaced > 0
    model.load_state_dict(state)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llama-cpp", default="/tmp/llcpp/llama_cpp_python-0.3.36/vendor/llama.cpp")
    args = p.parse_args()
    llama_cpp = os.path.abspath(args.llama_cpp)
    if not os.path.isfile(os.path.join(llama_cpp, "convert_hf_to_gguf.py")):
        sys.exit(f"no convert_hf_to_gguf.py in {llama_cpp}: see this script's docstring")
    os.makedirs(OUT, exist_ok=True)
    import transformers as t
    for name, hf_name, outtype, pre, changes in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, hf_name)
            shutil.copytree(os.path.join(DATA, "hf_dirs", hf_name), path)
            os.remove(os.path.join(path, "reference.safetensors"))
            with open(os.path.join(path, "config.json")) as f:
                config = json.load(f)
            if changes.get("rope_parameters"):  # a variant of llama_rope's rope_variants.json
                with open(os.path.join(path, "rope_variants.json")) as f:
                    changes = {"rope_parameters": json.load(f)[changes["rope_parameters"]]}
            for k, v in changes.items():
                if v is None:
                    config.pop(k, None)
                else:
                    config[k] = v
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(config, f, indent=2)
            add_tokenizer(path, config)
            out = os.path.join(OUT, f"{name}.gguf")
            convert(llama_cpp, path, out, outtype, pre)

            ref = load_reference(hf_name)
            sidecar = None
            if outtype not in ("f32", "f16"):
                sidecar = lm_reference(dequantized_model(path, out), ref)
            elif hf_name == "qwen2":
                sidecar = lm_reference(t.AutoModelForCausalLM.from_pretrained(path).eval(), ref)
            if sidecar is not None:
                ref_path = os.path.join(OUT, f"{name}.reference.safetensors")
                save_file({k: v.contiguous() for k, v in sidecar.items()}, ref_path,
                          metadata={"torch": torch.__version__, "transformers": t.__version__})
                os.chmod(ref_path, 0o644)
            print(f"{name}: {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
