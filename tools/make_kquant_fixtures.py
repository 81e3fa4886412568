#!/usr/bin/env python3
"""Writes tests/data/ggml_kquants.safetensors: ggml's K-quants Q4_K, Q5_K, Q6_K and the Q8_K
activations as ggml's own C reference makes them: quantize_row_q{4,5,6,8}_K_ref and
dequantize_row_q{4,5,6}_K, called through ctypes from a libggml-base shared library (GGML_BASE_LIB,
default /tmp/llcpp/build/bin/libggml-base.so). That library must be a build without FMA contraction
in those functions (ISO C evaluation, as ggml's x86 builds without FMA in the baseline): the script
checks their code, and the scale searches they inline or call (make_qx_quants, make_qkx2_quants),
for fma instructions and refuses otherwise. gguf-py's numpy dequantize is checked to give the same
floats as ggml's C dequantize.

Developer machine only (needs numpy, gguf, objdump and a built libggml-base); tests never run
Python. tests/quant/test_q4_k.cpp, test_q5_k.cpp, test_q6_k.cpp and test_q8_k.cpp check that
tformer's bytes and floats equal these exactly.

Tensors:
  input                  F32 [6, 512]   12 super-blocks of 256: random ones and edge cases (below)
  <fmt>                  U8  [6, B]     the packed blocks of each row (B = 2 * block bytes)
  <fmt>.dequantized      F32 [6, 512]   ggml's dequantize_row_<fmt> of those bytes (not q8_k)
  lcg.<fmt>              U8  [32, b]    one block per row: the 32 super-blocks of lcg_input (below)
for <fmt> in q4_k, q5_k, q6_k, q8_k. q8_k is ggml's block_q8_K (float d, int8 qs[256], int16
bsums[16], 292 bytes, little endian); ggml leaves bsums unwritten in an all-zero block, and the
script zeroes the output first, so they are 0 there.

lcg_input is not stored: C++ regenerates it from integers alone (tests/quant/kquant_checks.hpp,
lcg_superblock): x_t = (int)(s >> 40) - 2^23 (+ 2^22 in odd super-blocks) scaled by 2^e with e =
(7 g + 3 b) % 24 - 35 for group g = t / 16 of super-block b, s the 64-bit LCG state (s = s *
6364136223846793005 + 1442695040888963407, seeded 0x9E3779B97F4A7C15 + b, advanced before each
value): every value an exact float.

    /work/venv/bin/python tools/make_kquant_fixtures.py     # rewrites tests/data/ggml_kquants.safetensors
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

import ggml_ref

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ggml_kquants.safetensors")
BLOCK_BYTES = {"q4_k": 144, "q5_k": 176, "q6_k": 210, "q8_k": 292}
GGUF_TYPES = {"q4_k": T.Q4_K, "q5_k": T.Q5_K, "q6_k": T.Q6_K}
MASK64 = (1 << 64) - 1


def load_lib():
    """The C library, after checking the K-quant reference and its scale searches for fma."""
    names = [f"quantize_row_q{b}_K_ref" for b in (4, 5, 6, 8)] + [f"dequantize_row_q{b}_K" for b in (4, 5, 6)]
    return ggml_ref.load(names, helpers=["make_(?:qx|qkx2)_quants"])


def ggml(lib, fmt, x):
    """The rows of x quantized by quantize_row_<fmt>_ref, and (not q8_k) dequantized back by ggml."""
    cols = x.shape[1]
    packed = ggml_ref.quantize_rows(lib, f"quantize_row_{fmt[:2]}_K_ref", x, cols // 256 * BLOCK_BYTES[fmt])
    if fmt == "q8_k":
        return packed, None
    back = ggml_ref.dequantize_rows(lib, f"dequantize_row_{fmt[:2]}_K", packed, cols)
    with np.errstate(all="ignore"):
        py = dequantize(packed, GGUF_TYPES[fmt]).astype(np.float32)
    same = (py.view(np.uint32) == back.view(np.uint32)) | (np.isnan(py) & np.isnan(back))
    assert same.all(), f"gguf-py and ggml disagree on dequantize_row_{fmt}"
    return packed, back


def edge_superblocks(rng):
    """12 super-blocks of 256 that hit the definitions' edges (and random ones)."""
    b = []
    b.append(rng.standard_normal(256))  # random, unit scale
    v = np.concatenate([rng.standard_normal(32) * 10.0 ** rng.uniform(-3, 3) for _ in range(8)])
    b.append(v)  # sub-blocks of very different magnitudes: small ones get 6-bit scale 0
    b.append(100.0 + rng.standard_normal(256))  # positive only, far from 0
    b.append(-5.0 + rng.standard_normal(256))  # negative only
    b.append(np.zeros(256))  # all zero
    v = rng.uniform(-1, 1, 256)
    v[37] = 250.0  # one outlier
    b.append(v)
    b.append(rng.standard_normal(256) * 1e-6)  # tiny: fp16-subnormal super-block scales
    b.append(rng.standard_normal(256) * 1e-17)  # below GROUP_MAX_EPS
    b.append(rng.uniform(-3e4, 3e4, 256))  # huge
    # halves and grids: Q8_K with max -127 (iscale 1) on halves (ties to even); integers 0 .. 15
    v = np.array([[-127.0, 0.5, 1.5, 2.5, -0.5, -1.5, 126.5, -126.5][t % 8] for t in range(64)]
                 + [float(t % 16) for t in range(64)] + [float(t % 64 - 32) for t in range(128)])
    b.append(v)
    v = rng.standard_normal(256)
    v[0:32] = 0.7  # a constant sub-block
    v[64:96:2] = -0.0  # signed zeros
    v[65:96:2] = 0.0
    b.append(v)
    v = rng.standard_normal(256)
    v[128:160] = 0.0  # an all-zero sub-block
    v[160:192] *= 1e-9  # a sub-block far below the others
    b.append(v)
    return b


def lcg_superblock(b):
    """Super-block b of the LCG input (see the top of the file), as float32."""
    s = (0x9E3779B97F4A7C15 + b) & MASK64
    out = np.zeros(256, dtype=np.float32)
    for t in range(256):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK64
        v = (s >> 40) - (1 << 23) + ((1 << 22) if b % 2 else 0)
        e = (7 * (t // 16) + 3 * b) % 24 - 35
        out[t] = np.float32(np.ldexp(float(v), e))
    return out


def main():
    lib = load_lib()
    rng = np.random.default_rng(20250701)
    x = np.concatenate(edge_superblocks(rng)).astype(np.float32).reshape(6, 512)
    lcg = np.stack([lcg_superblock(b) for b in range(32)])
    tensors = {"input": x}
    for fmt in ("q4_k", "q5_k", "q6_k", "q8_k"):
        with np.errstate(all="ignore"):
            packed, back = ggml(lib, fmt, x)
            lcg_packed, _ = ggml(lib, fmt, lcg)
        tensors[fmt] = packed
        if fmt != "q8_k":
            tensors[fmt + ".dequantized"] = back
        tensors["lcg." + fmt] = lcg_packed

    ggml_ref.write_safetensors(
        OUT,
        tensors,
        {
            "source": "tools/make_kquant_fixtures.py: ggml quantize_row_q{4,5,6,8}_K_ref, dequantize_row_q{4,5,6}_K",
            "ggml_base": os.path.basename(os.path.realpath(ggml_ref.LIB)),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
