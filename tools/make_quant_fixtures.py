#!/usr/bin/env python3
"""Writes tests/data/ggml_quants.safetensors: ggml's Q4_0, Q4_1 and Q8_0 as the reference Python
implementation (gguf-py's gguf.quants) quantizes and dequantizes a few deterministic arrays.

Developer machine only (needs `pip install gguf numpy`); tests never run Python. The C++ tests
(tests/quant/test_q4_0.cpp, test_q4_1.cpp) check that tformer's packed bytes and dequantized floats
equal these exactly.

Tensors (every format sees the same input):
  input                  F32 [16, 64]   rows 0-7 random blocks, rows 8-15 hand-made blocks (below)
  <fmt>                  U8  [16, B]    the packed ggml blocks of each row (B = 64 / 32 * block bytes)
  <fmt>.dequantized      F32 [16, 64]   gguf.quants.dequantize of those bytes
for <fmt> in q4_0, q4_1, q8_0. The versions of gguf and numpy are in the metadata.

    python3 tools/make_quant_fixtures.py     # rewrites tests/data/ggml_quants.safetensors
"""
import json
import os
import struct
import sys
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

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


def main():
    rng = np.random.default_rng(20240611)
    blocks = random_blocks(rng, 16) + crafted_blocks(rng)
    x = np.concatenate(blocks).astype(np.float32).reshape(ROWS, COLS)

    tensors = {"input": x}
    for name, qtype in (("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q8_0", T.Q8_0)):
        with np.errstate(all="ignore"):
            packed = quantize(x, qtype)
            back = dequantize(packed, qtype)
        tensors[name] = np.ascontiguousarray(packed, dtype=np.uint8)
        tensors[name + ".dequantized"] = np.ascontiguousarray(back, dtype=np.float32)

    # safetensors, written directly (8-byte little-endian header size, JSON header, data)
    header, data, offset = {}, [], 0
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8"}
    for name, t in tensors.items():
        raw = t.astype(t.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        data.append(raw)
        offset += len(raw)
    header["__metadata__"] = {
        "source": "tools/make_quant_fixtures.py: gguf.quants.quantize / dequantize",
        "gguf": version("gguf"),
        "numpy": np.__version__,
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in data:
            f.write(raw)
    print(f"{os.path.relpath(OUT)}: {os.path.getsize(OUT)} bytes (gguf {version('gguf')}, numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
