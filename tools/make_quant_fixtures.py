#!/usr/bin/env python3
"""Writes tests/data/ggml_quants.safetensors: ggml's Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL as the
reference implementations quantize and dequantize a few deterministic arrays: gguf-py's gguf.quants
for every type it quantizes, and for IQ4_NL (which gguf-py only dequantizes) ggml's own C reference,
quantize_row_iq4_nl_ref, called through ctypes from a libggml-base shared library (GGML_BASE_LIB,
default /tmp/llcpp/build/bin/libggml-base.so; it must be a build without FMA contraction in that
function: the script checks its code for fma instructions and refuses otherwise).

Developer machine only (needs `pip install gguf numpy`, and for IQ4_NL objdump and a built
libggml-base); tests never run Python. The C++ tests (tests/quant/test_q4_0.cpp, test_q4_1.cpp,
test_q5_0.cpp, test_q5_1.cpp, test_iq4_nl.cpp) check that tformer's packed bytes and dequantized
floats equal these exactly.

Tensors (every format sees the same input):
  input                  F32 [16, 64]   rows 0-7 random blocks, rows 8-15 hand-made blocks (below)
  <fmt>                  U8  [16, B]    the packed ggml blocks of each row (B = 64 / 32 * block bytes)
  <fmt>.dequantized      F32 [16, 64]   gguf.quants.dequantize of those bytes (IQ4_NL included)
  input.extra            F32 [4, 64]    8 more hand-made blocks (extra_blocks, below)
  <fmt>.extra, <fmt>.extra.dequantized   the same for input.extra
for <fmt> in q4_0, q4_1, q8_0, q5_0, q5_1, iq4_nl (.extra for q5_0, q5_1 and iq4_nl only). The
versions of gguf and numpy are in the metadata.

IQ4_NL blocks whose largest magnitude is below ggml's GROUP_MAX_EPS (1e-15) get d = 0 from ggml,
and qs bytes it never writes (its scratch of indices, left over from the previous block or
uninitialized): the fixture stores qs = 0 there, as tformer does, and checks that d is 0.

    python3 tools/make_quant_fixtures.py     # rewrites tests/data/ggml_quants.safetensors
    GGML_BASE_LIB=/path/to/libggml-base.so python3 tools/make_quant_fixtures.py
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

import ggml_ref

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ggml_quants.safetensors")
ROWS, COLS = 16, 64


def random_blocks(rng, n):
    """n blocks of 32: normal values at a magnitude from 1e-3 to 1e3, half of them off-centre."""
    out = []
    for b in range(n):
        scale = 10.0 ** rng.uniform(-3, 3)
        v = rng.standard_normal(32) * scale
        if b % 2:
            v += rng.uniform(-3, 3) * scale
        out.append(v)
    return out


def crafted_blocks(rng):
    """16 blocks that hit the definitions' edges."""
    b = []
    b.append(np.zeros(32))  # all zero: Q4_0 d = 0 / -8 = -0 (0x8000), every q = 8
    b.append(np.full(32, 0.7))  # constant: Q4_1 d = 0, every q = 0, m = 0.7 in fp16
    v = rng.uniform(-2, 2, 32)
    v[3], v[9] = -3.0, 3.0  # a tie in magnitude: the first (negative) one is Q4_0's max
    b.append(v)
    v = rng.uniform(-2, 2, 32)
    v[3], v[9] = 3.0, -3.0  # the tie the other way round
    b.append(v)
    b.append(0.25 * (np.arange(32) % 16 - 8))  # Q4_0's own grid (d = 0.25): the round trip is exact
    # Q4_0 with max 3: d = -0.375 and id = 1 / d inexact, so x * id falls next to half-integers; x =
    # 2.8125 gives x * id = -7.5000002 -> -7.5 in float, + 8.5 = 1 -> q = 1 (an fma would give 0)
    v = np.array([0.375 * (k + 0.5) * s for k in range(8) for s in (1, -1)] * 2)
    v[0], v[1] = 3.0, 2.8125
    b.append(v)
    b.append(np.concatenate([[0.0, 15.0], np.arange(30) % 15 + 0.5]))  # Q4_1 d = 1: (x - min) + 0.5 exact
    b.append(-1.0 + 0.2 * (np.arange(32) % 16 + 0.5))  # Q4_1 d = 0.2 (inexact): halves again
    b.append(rng.standard_normal(32) * 1e-6)  # fp16-subnormal scales
    b.append(rng.standard_normal(32) * 1e-9)  # scales that round to 0 in fp16
    b.append(rng.uniform(-6e4, 6e4, 32))  # large: Q4_1's min and Q4_0's d stay within fp16's range
    b.append(-5.0 + rng.standard_normal(32))  # all negative
    b.append(100.0 + rng.standard_normal(32))  # all positive, far from 0 (Q4_1's offset matters)
    v = rng.standard_normal(32)
    v[::3] = -0.0
    v[1::3] = 0.0
    b.append(v)  # signed zeros
    halves = [127.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 63.5, 0.49999997, -1.0]
    b.append(np.array([halves[t % 12] for t in range(32)]))  # Q8_0 d = 1: x * id on halves exactly
    v = np.zeros(32)
    v[31] = -1e-3
    b.append(v)  # one nonzero, the last
    return b


def extra_blocks(rng):
    """8 blocks for the 5-bit and non-linear formats' edges."""
    b = []
    v = rng.uniform(-1, 1, 32)
    v[17] = 250.0  # one large outlier
    b.append(v)
    v = rng.uniform(0, 1, 32)
    v[5] = -4.0  # the largest magnitude negative, alone
    b.append(v)
    b.append(0.5 * (np.arange(32) % 32 - 16))  # Q5_0's own grid at d = 0.5 (max -8): exact round trip
    # Q5_0 with max 3: d = -0.1875, id inexact: 0.1875 (k + 0.5) lands next to half-integers
    v = np.array([0.1875 * (k + 0.5) * s for k in range(16) for s in (1, -1)])
    v[0] = 3.0
    b.append(v)
    b.append(np.concatenate([[0.0, 31.0], np.arange(30) % 31 + 0.5]))  # Q5_1 d = 1: halves exactly
    # IQ4_NL: the levels themselves at max -127 (d0 = 1), and midpoints between neighbouring levels
    lv = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float64)
    b.append(np.concatenate([lv, (lv[:-1] + lv[1:]) / 2, [-127.0]]))
    v = rng.standard_normal(32) * 1e-16  # below GROUP_MAX_EPS: IQ4_NL d = 0
    b.append(v)
    v = rng.standard_normal(32) * 1e-14  # just above it, weights x * x near float's underflow
    b.append(v)
    return b


def ggml_iq4_nl(x):
    """IQ4_NL bytes of the rows of x from ggml's quantize_row_iq4_nl_ref (see the top of the file)."""
    lib = ggml_ref.load(["quantize_row_iq4_nl_ref"], helpers=["quantize_row_iq4_nl_impl"])
    rows, cols = x.shape
    out = ggml_ref.quantize_rows(lib, "quantize_row_iq4_nl_ref", x, cols // 32 * 18)
    for r in range(rows):
        for b in range(cols // 32):
            if np.abs(x[r, 32 * b : 32 * b + 32].astype(np.float32)).max() < np.float32(1e-15):
                assert out[r, 18 * b] == 0 and out[r, 18 * b + 1] == 0, "ggml's d of a block below GROUP_MAX_EPS"
                out[r, 18 * b + 2 : 18 * b + 18] = 0  # bytes ggml never writes (see the top of the file)
    return out


def main():
    rng = np.random.default_rng(20240611)
    blocks = random_blocks(rng, 16) + crafted_blocks(rng)
    x = np.concatenate(blocks).astype(np.float32).reshape(ROWS, COLS)

    extra = np.concatenate(extra_blocks(rng)).astype(np.float32).reshape(4, COLS)

    tensors = {"input": x, "input.extra": extra}
    formats = (("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q8_0", T.Q8_0), ("q5_0", T.Q5_0), ("q5_1", T.Q5_1), ("iq4_nl", T.IQ4_NL))
    for name, qtype in formats:
        for suffix, data in (("", x), (".extra", extra)):
            if suffix and name in ("q4_0", "q4_1", "q8_0"):
                continue
            with np.errstate(all="ignore"):
                packed = ggml_iq4_nl(data) if qtype == T.IQ4_NL else quantize(data, qtype)
                back = dequantize(packed, qtype)
            tensors[name + suffix] = np.ascontiguousarray(packed, dtype=np.uint8)
            tensors[name + suffix + ".dequantized"] = np.ascontiguousarray(back, dtype=np.float32)

    ggml_ref.write_safetensors(
        OUT, tensors, {"source": "tools/make_quant_fixtures.py: gguf.quants.quantize / dequantize; IQ4_NL: ggml quantize_row_iq4_nl_ref"}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
