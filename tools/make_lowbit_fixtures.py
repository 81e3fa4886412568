#!/usr/bin/env python3
"""Writes tests/data/ggml_lowbit_quants.safetensors: ggml's super-block formats TQ2_0, IQ4_XS, Q2_K
and Q3_K (256 weights a block) as ggml's own C reference quantizes and dequantizes a few
deterministic arrays: quantize_row_tq2_0_ref, quantize_row_iq4_xs_ref, quantize_row_q2_K_ref,
quantize_row_q3_K_ref and dequantize_row_<type>, called through ctypes from a libggml-base shared
library (GGML_BASE_LIB, default /tmp/llcpp/build/bin/libggml-base.so). That library must be a
build without FMA contraction in those functions (ISO C evaluation: every product rounded before
it is added): the script checks their code for fma instructions and refuses otherwise. gguf-py's
numpy implementation is checked against the C library where it has the function (TQ2_0's
quantizer, every dequantizer): they must agree byte for byte.

Developer machine only (needs numpy, gguf, objdump and a built libggml-base); tests never run
Python. The C++ tests (tests/quant/test_tq2_0.cpp, test_iq4_xs.cpp, test_q2_k.cpp, test_q3_k.cpp)
check that tformer's packed bytes and dequantized floats equal these exactly.

Tensors:
  input                  F32 [16, 512]  32 super-blocks: 8 random ones, 16 hand-made ones
                                        (crafted_blocks, below: all zero, one outlier, tiny and huge
                                        magnitudes, zero and sub-GROUP_MAX_EPS sub-blocks, grids),
                                        8 with one large value per 16 (mixed_blocks)
  <fmt>                  U8  [16, B]    ggml's quantize_row_<fmt>_ref of each row (B = 2 * block bytes)
  <fmt>.random           U8  [4, bytes] 4 blocks of random bytes with random finite scales
  <fmt>.random.dequantized  F32 [4, 256]  ggml's dequantize_row_<fmt> of them
for <fmt> in tq2_0, iq4_xs, q2_k, q3_k. The versions of gguf and numpy are in the metadata.

    python3 tools/make_lowbit_fixtures.py     # rewrites tests/data/ggml_lowbit_quants.safetensors
    GGML_BASE_LIB=/path/to/libggml-base.so python3 tools/make_lowbit_fixtures.py
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

import ggml_ref

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ggml_lowbit_quants.safetensors")
ROWS, COLS = 16, 512
QK = 256

# name, gguf type, block bytes, the C quantizer, the functions it inlines, the d fields (byte offsets)
FORMATS = (
    ("tq2_0", T.TQ2_0, 66, "quantize_row_tq2_0_ref", [], (64,)),
    ("iq4_xs", T.IQ4_XS, 136, "quantize_row_iq4_xs_ref", ["quantize_iq4_xs", "quantize_row_iq4_nl_impl"], (0,)),
    ("q2_k", T.Q2_K, 84, "quantize_row_q2_K_ref", [], (80, 82)),
    ("q3_k", T.Q3_K, 110, "quantize_row_q3_K_ref", [], (108,)),
)
KVALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def random_blocks(rng, n):
    """n super-blocks: normal values at a magnitude from 1e-3 to 1e3 per sub-block of 16, half of
    the super-blocks off-centre."""
    out = []
    for b in range(n):
        v = np.concatenate([rng.standard_normal(16) * 10.0 ** rng.uniform(-1, 1) for _ in range(16)])
        v *= 10.0 ** rng.uniform(-2, 2)
        if b % 2:
            v += rng.uniform(-3, 3) * np.abs(v).mean()
        out.append(v)
    return out


def mixed_blocks(rng, n):
    """n super-blocks with one large value per 16 (x 10) among small ones (x 0.01), at a magnitude
    from 1e-2 to 1e2: the K-quants' least-squares sums there round differently when a product is
    fused into an addition, so these catch a quantizer that contracts."""
    out = []
    for _ in range(n):
        v = rng.standard_normal(QK) * 0.01
        v[::16] = rng.standard_normal(QK // 16) * 10
        out.append(v * 10.0 ** rng.uniform(-2, 2))
    return out


def crafted_blocks(rng):
    """16 super-blocks that hit the definitions' edges."""
    b = []
    b.append(np.zeros(QK))  # all zero
    v = rng.uniform(-1, 1, QK)
    v[77] = 300.0  # one large outlier
    b.append(v)
    v = np.zeros(QK)
    v[255] = -1e-3  # one nonzero, the last
    b.append(v)
    b.append(rng.standard_normal(QK) * 1e-6)  # tiny: fp16-subnormal scales
    b.append(rng.standard_normal(QK) * 1e-9)  # tinier: scales that round to 0 in fp16
    b.append(rng.uniform(-6e4, 6e4, QK))  # huge: the scales stay within fp16's range
    b.append(100.0 + rng.standard_normal(QK))  # all positive, far from 0 (Q2_K's mins matter)
    b.append(-5.0 + rng.standard_normal(QK))  # all negative
    v = rng.standard_normal(QK)
    v[32:64] = 0.0  # a zero sub-block of IQ4_XS (two of the K-quants)
    v[128:144] = 0.0  # a zero sub-block of the K-quants
    v[160:192] = rng.standard_normal(32) * 1e-16  # below GROUP_MAX_EPS
    b.append(v)
    b.append(rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], QK))  # TQ2_0 d = 2, id = 0.5: x * id on halves
    v = rng.standard_normal(QK)
    v[::3] = -0.0
    v[1::3] = 0.0
    b.append(v)  # signed zeros
    b.append(np.full(QK, 0.7))  # constant
    lv = np.array(KVALUES, dtype=np.float64)
    b.append(np.tile(np.concatenate([lv, (lv[:-1] + lv[1:]) / 2, [-127.0]]), 8))  # IQ4 levels and midpoints
    b.append(0.25 * (np.arange(QK) % 8 - 4))  # the K-quants' own grids
    b.append(rng.standard_t(2, QK))  # heavy tails
    v = np.zeros(QK)
    idx = rng.choice(QK, 12, replace=False)
    v[idx] = rng.standard_normal(12) * 3
    b.append(v)  # sparse
    return b


def c_dequantize(lib, name, packed):
    """ggml's dequantize_row_<name> of each row of packed."""
    bb = dict((n, b) for n, _, b, _, _, _ in FORMATS)[name]
    return ggml_ref.dequantize_rows(lib, "dequantize_row_" + name.replace("_k", "_K"), packed, packed.shape[1] // bb * QK)


def random_packed(rng, bb, d_offsets, n):
    """n blocks of random bytes whose fp16 fields at d_offsets are finite, 2^-14 .. 2^4, either sign."""
    out = rng.integers(0, 256, (n, bb), dtype=np.uint8)
    for o in d_offsets:
        e = rng.integers(1, 20, n)  # biased exponent: 2^-14 .. 2^4
        bits = (rng.integers(0, 2, n) << 15) | (e << 10) | rng.integers(0, 1024, n)
        out[:, o] = bits & 0xFF
        out[:, o + 1] = bits >> 8
    return out


def main():
    rng = np.random.default_rng(20261130)
    x = np.concatenate(random_blocks(rng, 8) + crafted_blocks(rng) + mixed_blocks(rng, 8)).astype(np.float32).reshape(ROWS, COLS)
    lib = ggml_ref.load([name for _, _, _, fn, inlined, _ in FORMATS for name in [fn] + inlined])
    tensors = {"input": x}
    for name, qtype, bb, fn, _, d_offsets in FORMATS:
        packed = ggml_ref.quantize_rows(lib, fn, x, COLS // QK * bb)
        back = c_dequantize(lib, name, packed)
        with np.errstate(all="ignore"):
            if qtype == T.TQ2_0:  # gguf-py quantizes TQ2_0 too: it must agree
                assert np.array_equal(quantize(x, qtype), packed), "gguf-py's TQ2_0 differs from ggml's"
            assert np.array_equal(dequantize(packed, qtype).view(np.uint32), back.view(np.uint32)), name
        rnd = random_packed(rng, bb, d_offsets, 4)
        rnd_back = c_dequantize(lib, name, rnd)
        with np.errstate(all="ignore"):
            assert np.array_equal(dequantize(rnd, qtype).view(np.uint32), rnd_back.view(np.uint32)), name
        tensors[name] = packed
        tensors[name + ".random"] = rnd
        tensors[name + ".random.dequantized"] = rnd_back

    ggml_ref.write_safetensors(OUT, tensors, {"source": "tools/make_lowbit_fixtures.py: ggml quantize_row_<type>_ref / dequantize_row_<type>"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
