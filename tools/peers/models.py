"""Seeded models, their peer formats and the workloads file for the peer comparison.

Every model is a randomly initialised (seeded) Hugging Face model whose parameters are all moved
away from their defaults (norm weights of 1, zero biases), so that a transposed or misnamed tensor
changes the outputs. From it come the files each engine reads:

  bert_base/, minilm/       BertModel directories (config.json, model.safetensors): tformer
  bert_base.onnx, ...       the same models exported to ONNX, and *.int8.onnx dynamically
                            quantised: ONNX Runtime
  llama/                    a LlamaForCausalLM directory (the reference for the GGUF logits)
  llama-<type>.gguf         that model as GGUF: F32 from llama.cpp's own converter, the others
                            from llama-quantize --pure: tformer and llama.cpp
  t5/                       a T5ForConditionalGeneration directory (T5 v1.0 shape): tformer
  t5-ct2-float32/, -int8/   its CTranslate2 conversions

Each output is written once and marked with a stamp file (".done" inside a directory, or
"<file>.done" beside a file); delete the stamp, or the work directory, to rewrite it.
"""
import os
import shutil
import subprocess
import sys

import numpy as np

# Version of what this module writes: bump it to make every cached model be rewritten.
MODEL_VERSION = "1"

ENCODERS = {
    # name: BertConfig arguments
    "bert_base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072),
    "minilm_l6": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536),
}

LLAMA = dict(vocab_size=32000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
             num_key_value_heads=4, intermediate_size=2048, rms_norm_eps=1e-5, max_position_embeddings=2048,
             tie_word_embeddings=False, rope_theta=10000.0)
GGUF_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0"]

T5 = dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8,
          feed_forward_proj="relu", tie_word_embeddings=True, decoder_start_token_id=0, pad_token_id=0,
          eos_token_id=1, relative_attention_num_buckets=32, relative_attention_max_distance=128)


def log(*args):
    print("[models]", *args, flush=True)


def stamped(path):
    """True when `path` was completely written by this version of the module."""
    stamp = os.path.join(path, ".done") if os.path.isdir(path) else path + ".done"
    try:
        with open(stamp) as f:
            return f.read().strip() == MODEL_VERSION
    except OSError:
        return False


def stamp(path):
    with open(os.path.join(path, ".done") if os.path.isdir(path) else path + ".done", "w") as f:
        f.write(MODEL_VERSION + "\n")


def perturb(model, seed, scale=0.1):
    """Adds seeded noise to every parameter: scale * std of the tensor (scale itself for constant
    tensors such as LayerNorm / RMSNorm weights and zero biases)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            std = float(p.std()) if p.numel() > 1 else 0.0
            p.add_(torch.randn(p.shape, generator=g) * scale * (std if std > 0 else 1.0))


def write_seeded(models_dir, name, make, seed, adjust=None, finish=None):
    """models_dir/name: the Hugging Face model make() builds after torch.manual_seed(seed), every
    parameter perturbed (seed + 1), then adjust(model); finish(path) adds files (a tokenizer) after
    save_pretrained. Written once (stamped); returns the directory."""
    import torch
    path = os.path.join(models_dir, name)
    if not stamped(path):
        log(f"writing {name}")
        torch.manual_seed(seed)
        model = make().eval()
        perturb(model, seed + 1)
        if adjust:
            with torch.no_grad():
                adjust(model)
        shutil.rmtree(path, ignore_errors=True)
        model.save_pretrained(path, safe_serialization=True)
        if finish:
            finish(path)
        stamp(path)
    return path


# ---- encoders -----------------------------------------------------------------------------------

def write_encoder(models_dir, name, seed):
    """BertModel directory plus its fp32 and dynamically quantised int8 ONNX exports."""
    import transformers as t
    return write_seeded(models_dir, name, lambda: t.BertModel(t.BertConfig(**ENCODERS[name]), add_pooling_layer=False),
                        seed)


def export_onnx(models_dir, name):
    """Exports the encoder with inputs input_ids, attention_mask, token_type_ids (int64, dynamic
    batch and sequence axes) and output last_hidden_state. Returns the .onnx path."""
    import torch
    import transformers as t
    out = os.path.join(models_dir, f"{name}.onnx")
    if stamped(out):
        return out
    log(f"exporting {name} to ONNX")
    # eager attention: a plain MatMul/Softmax graph, which ONNX Runtime's optimiser fuses
    model = t.BertModel.from_pretrained(os.path.join(models_dir, name), add_pooling_layer=False,
                                    attn_implementation="eager").eval()
    ids = torch.ones(2, 16, dtype=torch.int64)
    mask = torch.ones(2, 16, dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}

    class Wrapper(torch.nn.Module):  # positional inputs, one tensor out
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    with torch.no_grad():
        torch.onnx.export(Wrapper(model), (ids, mask, torch.zeros_like(ids)), out,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "last_hidden_state": axes},
                          opset_version=17, dynamo=False)
    stamp(out)
    return out


def quantize_onnx(fp32_path):
    """ONNX Runtime's dynamic quantisation as its documentation shows it: int8 (QInt8) weights,
    per-tensor scales (per_channel=False, the default), uint8 activations quantised at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    out = fp32_path[:-len(".onnx")] + ".int8.onnx"
    if not stamped(out):
        log(f"quantising {os.path.basename(fp32_path)} (dynamic, QInt8 weights)")
        quantize_dynamic(fp32_path, out, weight_type=QuantType.QInt8, per_channel=False)
        stamp(out)
    return out


# ---- Llama-shaped decoder -----------------------------------------------------------------------

def save_bpe_tokenizer(path, vocab_size, eos="</s>"):
    """A byte-level BPE tokenizer (256 byte symbols, one merge, an end token) for llama.cpp's
    converter, which pads the vocabulary to the model's size with unused [PAD<i>] tokens.
    llama.cpp refuses a BPE vocabulary without merges, hence the one merge."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet()) + ["th", eos]
    tok = Tokenizer(models.BPE({c: i for i, c in enumerate(alphabet)}, [("t", "h")]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos).save_pretrained(path)


# Runs llama.cpp's convert_hf_to_gguf.py in a child process (it puts its own gguf-py first on
# sys.path). The tokenizer above has no pre-tokenizer hash llama.cpp knows, so its hash lookup is
# replaced by the name of llama.cpp's default pre-tokenizer; nothing else is changed.
CONVERT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import convert_hf_to_gguf
try:
    from conversion.base import TextModel
except ImportError:
    from convert_hf_to_gguf import TextModel
TextModel.get_vocab_base_pre = lambda self, tokenizer: "default"
sys.argv = ["convert_hf_to_gguf.py", sys.argv[2], "--outtype", "f32", "--outfile", sys.argv[3]]
convert_hf_to_gguf.main()
"""


def write_llama(models_dir, llama_src, quantize_bin, seed=3):
    """The Llama-shaped model as an HF directory and GGUF files; returns {type: path}."""
    import transformers as t
    path = write_seeded(models_dir, "llama", lambda: t.LlamaForCausalLM(t.LlamaConfig(**LLAMA)), seed,
                        finish=lambda p: save_bpe_tokenizer(p, LLAMA["vocab_size"]))
    files = {}
    f32 = os.path.join(models_dir, "llama-f32.gguf")
    if not stamped(f32):
        if not llama_src or not os.path.isfile(os.path.join(llama_src, "convert_hf_to_gguf.py")):
            raise RuntimeError(f"no llama.cpp source tree (convert_hf_to_gguf.py) at {llama_src}")
        log("converting llama to GGUF F32 (llama.cpp's convert_hf_to_gguf.py)")
        subprocess.run([sys.executable, "-c", CONVERT, llama_src, path, f32], check=True,
                       stdout=subprocess.DEVNULL)
        stamp(f32)
    files["F32"] = f32
    for qtype in GGUF_TYPES[1:]:
        out = os.path.join(models_dir, f"llama-{qtype.lower()}.gguf")
        if not stamped(out):
            log(f"llama-quantize --pure {qtype}")
            subprocess.run([quantize_bin, "--pure", f32, out, qtype], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stamp(out)
        files[qtype] = out
    return files


# ---- T5 ----------------------------------------------------------------------------------------

def t5_token(i):
    """The token string of id i in the T5 model's word-level vocabulary."""
    return {0: "<pad>", 1: "</s>", 2: "<unk>"}.get(i, f"w{i}")


def write_t5(models_dir, seed=5):
    """T5 v1.0-shaped model (ReLU, tied head) with a word-level tokenizer of the full vocabulary
    (CTranslate2's converter reads the vocabulary through AutoTokenizer)."""
    import transformers as t
    from tokenizers import Tokenizer, models, pre_tokenizers

    def tokenizer(path):
        vocab = {t5_token(i): i for i in range(T5["vocab_size"])}
        tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        t.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                  unk_token="<unk>").save_pretrained(path)

    # With a tied head, a random model's logits are dominated by the input embedding's dot product
    # with itself, so greedy decoding would only repeat the start token; a smaller shared
    # embedding lets the layers (and so the source) decide the tokens.
    return write_seeded(models_dir, "t5", lambda: t.T5ForConditionalGeneration(t.T5Config(**T5)), seed,
                        adjust=lambda m: m.shared.weight.mul_(0.1), finish=tokenizer)


def convert_ct2(models_dir, hf_path, quantization):
    """CTranslate2 conversion of the T5 directory with weights in `quantization` (float32, int8)."""
    import ctranslate2
    out = os.path.join(models_dir, f"t5-ct2-{quantization}")
    if not stamped(out):
        log(f"converting t5 to CTranslate2 ({quantization})")
        shutil.rmtree(out, ignore_errors=True)
        ctranslate2.converters.TransformersConverter(hf_path).convert(out, quantization=quantization, force=True)
        stamp(out)
    return out


# ---- inputs ------------------------------------------------------------------------------------

def token_ids(seed, n, low, high):
    return np.random.RandomState(seed).randint(low, high, size=n).astype(np.int64)


def padded(rows, width, pad=0):
    out = np.full((len(rows), width), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def encoder_inputs(kind, vocab, seed):
    """(ids [B, S] right-padded with 0, lengths [B]) for the encoder inputs b1_s128, b8_s128 and
    b8_mixed (lengths 16, 32, ..., 128). Real tokens avoid the ids 0-999 (BERT's special ones)."""
    lengths = {"b1_s128": [128], "b8_s128": [128] * 8, "b8_mixed": list(range(16, 129, 16))}[kind]
    rows = [token_ids(seed + i, n, 1000, vocab) for i, n in enumerate(lengths)]
    return padded(rows, 128), np.array(lengths, dtype=np.int64)


def translate_inputs(seed=11, batch=16):
    """16 sources of 24..48 tokens, each ending with </s> (id 1), padded with 0."""
    lengths = [24 + (i * 24) // (batch - 1) for i in range(batch)]
    rows = [np.append(token_ids(seed + i, n - 1, 3, T5["vocab_size"]), 1) for i, n in enumerate(lengths)]
    return padded(rows, max(lengths)), np.array(lengths, dtype=np.int64)


def attention_inputs(seq, heads=12, head_dim=64):
    """q, k, v [1, seq, heads, head_dim] with x[i] = sin(0.37 i + c), c = 0, 1, 2 (flat index i)."""
    i = np.arange(seq * heads * head_dim, dtype=np.float64)
    return [np.sin(0.37 * i + c).astype(np.float32).reshape(1, seq, heads, head_dim) for c in (0.0, 1.0, 2.0)]
