#!/usr/bin/env python3
"""Writes tests/data/lowfloat_quants.safetensors: the low-precision floats FP8 E4M3 / E5M2, E2M1
(FP4) and E8M0, and the weight formats built on them (tformer's fp8_e4m3, fp8_e5m2, mxfp4, nvfp4), as
independent reference implementations compute them:

- element values and conversions: ml_dtypes (float8_e4m3fn, float8_e5m2, float4_e2m1fn,
  float8_e8m0fnu), whose casts round to nearest even and do not saturate; the saturating
  conversions are ml_dtypes' casts of x clipped to [-max, max] (OCP's saturation mode);
- FP8 blocks: the fine-grained FP8 recipe (transformers / DeepSeek-V3) in numpy float32, per block
  of 128: s = amax / max, codes = cast(clip(x / s, -max, max)); dequantized = float(code) * s;
- MXFP4: ggml's C reference quantize_row_mxfp4_ref (GGML type 39), called through ctypes from a
  libggml-base shared library (GGML_BASE_LIB, default /tmp/llcpp/build/bin/libggml-base.so), and
  the OCP MX formula E2M1(q) * 2^(e - 127) with ml_dtypes' values for the dequantized floats
  (checked here against ggml's dequantize_row_mxfp4 wherever e != 0xFF: equal values, though ggml
  gives +0 for the code 8, OCP's -0);
- NVFP4: NVIDIA's recipe as ModelOpt's NVFP4QTensor.quantize / dequantize writes it, in numpy
  float32 with ml_dtypes' E4M3 and E2M1 casts: s = amax_row / (6 * 448), per 16 d = E4M3(amax_sub /
  (6 s)) (1.0 when that is 0), q = E2M1(x / (E4M3(d) s)), weight = E2M1(q) * (E4M3(d) s).

Developer machine only (pip install numpy ml_dtypes; a built libggml-base for MXFP4); tests never
run Python. The C++ tests (tests/quant/test_lowfloat.cpp, test_fp8.cpp, test_mxfp4.cpp,
test_nvfp4.cpp) check that tformer's codes, packed bytes and floats equal these exactly.

Tensors:
  <e>.values                 F32 [256] (E2M1: [16])  every code's value, for e in e4m3, e5m2, e8m0, e2m1
  <e>.input                  F32 [N]                 inputs: every midpoint between neighbouring codes
                                                     and its float neighbours, both signs, the range
                                                     ends, zeros, infinities, NaN, random values
  <e>.nonsat, <e>.sat        U8 [N]                  the codes (E2M1: one, always saturating: <e>.sat)
  fp8.input                  F32 [8, 256]            rows of two blocks of 128 (crafted and random)
  fp8_e4m3, fp8_e5m2         U8 [8, 264]             tformer's blocks: float32 scale + 128 codes
  <fmt>.dequantized          F32 [8, 256]
  mxfp4.input                F32 [15, 64]            ggml-defined inputs (finite, amax 0 or >= 2^-125)
  mxfp4                      U8 [15, 34]             ggml's block_mxfp4 bytes
  mxfp4.dequantized          F32 [15, 64]
  nvfp4.input                F32 [10, 128]
  nvfp4                      U8 [10, 80]             tformer's blocks: float32 s + 4 E4M3 + 32 bytes
  nvfp4.dequantized          F32 [10, 128]
The tests decode every MXFP4 / NVFP4 code pattern against the element values above (the formats'
formulas on ml_dtypes' values); here, OCP's MXFP4 formula is also checked against ggml's
dequantize_row_mxfp4 on every scale and nibble pattern.

    /work/venv/bin/python tools/make_lowfloat_fixtures.py
"""
import ctypes
import json
import os
import struct
import sys
from importlib.metadata import version

import ml_dtypes
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "lowfloat_quants.safetensors")
F32 = np.float32
E4M3, E5M2, E2M1, E8M0 = ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2, ml_dtypes.float4_e2m1fn, ml_dtypes.float8_e8m0fnu


def values(dt, n):
    return np.arange(n, dtype=np.uint8).view(dt).astype(F32)


def codes(x, dt):
    with np.errstate(all="ignore"):
        return np.asarray(x, dtype=F32).astype(dt).view(np.uint8)


def conversion_inputs(dt, n, rng, top):
    """Midpoints of neighbouring finite positive codes with their float neighbours, both signs; the
    ends of the range; special values; random values over the whole exponent range."""
    v = values(dt, n)
    pos = np.unique(v[np.isfinite(v) & (v >= 0)])
    mids = (pos[:-1].astype(np.float64) + pos[1:]) / 2
    xs = []
    for m in np.concatenate([mids, pos]).astype(F32):
        xs += [m, np.nextafter(m, F32(-np.inf)), np.nextafter(m, F32(np.inf))]
    mx = pos[-1]
    step = mx - pos[-2]
    with np.errstate(over="ignore"):
        beyond = [mx + step / 2, mx + step, mx * 2, F32(3e38), F32(np.inf), pos[1] / 2, pos[1] / 4, F32(1e-30), F32(1e-45)]
    for b in beyond:
        b = F32(b)
        xs += [b, np.nextafter(b, F32(-np.inf)), np.nextafter(b, F32(np.inf))]
    xs = np.array(xs, dtype=F32)
    if dt is not E8M0:  # (E8M0 has no sign: every negative input is NaN)
        xs = np.concatenate([xs, -xs])
    xs = np.concatenate([xs, np.array([0.0, -0.0, np.nan, -1.0], dtype=F32)])
    rand = (rng.standard_normal(64) * np.exp2(rng.uniform(-top, min(top, 126), 64))).astype(F32)
    return np.concatenate([xs, rand]).astype(F32)


def elements(t, rng):
    for name, dt, n, mx, top in (("e4m3", E4M3, 256, 448.0, 12), ("e5m2", E5M2, 256, 57344.0, 20),
                                 ("e8m0", E8M0, 256, 2.0 ** 127, 140), ("e2m1", E2M1, 16, 6.0, 4)):
        t[name + ".values"] = values(dt, n)
        x = conversion_inputs(dt, n, rng, top)
        if name == "e2m1":
            x = x[~np.isnan(x)]  # E2M1 has no NaN: ml_dtypes' code for it is an arbitrary zero
        if name == "e8m0":
            # E8M0's codes near 2^-127: midpoints of 2^-128 .. 2^-126 and the subnormal floats there
            extra = np.array([2.0 ** -127 * 1.5, 2.0 ** -128, 2.0 ** -128 * 1.5, 2.0 ** -149, 2.0 ** -126 * 0.75], dtype=F32)
            x = np.concatenate([x, extra, np.nextafter(extra, F32(0)), np.nextafter(extra, F32(1))]).astype(F32)
            # ml_dtypes 0.6 rounds the float subnormals strictly between 2^-127 and 1.5 * 2^-127 up to
            # 2^-126, though 2^-127 is nearer (tformer rounds to nearest): those are left out
            x = x[~((x > F32(2.0 ** -127)) & (x < F32(1.5 * 2.0 ** -127)))]
        t[name + ".input"] = x
        with np.errstate(invalid="ignore"):
            clipped = np.clip(x, F32(-mx), F32(mx))  # NaN stays NaN
        t[name + ".sat"] = codes(clipped, dt)
        if name != "e2m1":
            t[name + ".nonsat"] = codes(x, dt)


def fp8_rows(rng):
    rows = []
    for r in range(3):  # random blocks at magnitudes 1e-6 .. 1e6
        rows.append(rng.standard_normal(256) * 10.0 ** rng.uniform(-6, 6))
    v = np.zeros(256)
    v[128:] = rng.uniform(-1, 1, 128)
    rows.append(v)  # an all-zero block
    v = rng.standard_normal(256)
    v[5], v[200] = np.nan, np.inf
    rows.append(v)  # a NaN in block 0, an infinity in block 1
    v = rng.standard_normal(256) * 1e-40
    v[128:] = rng.standard_normal(128) * 1e-44  # subnormal inputs; a scale that underflows to 0
    rows.append(v)
    v = rng.uniform(-3e38, 3e38, 256)
    v[1::7] = -0.0
    rows.append(v)  # near float's top, signed zeros
    # block 0: amax 448 (s = 1): the E4M3 grid's midpoints, ties to even; block 1: amax 57344 (E5M2 s = 1)
    e4 = values(E4M3, 128)[:127].astype(np.float64)
    v = np.concatenate([(e4[:-1] + e4[1:]) / 2, [448.0, -448.0]])
    e5 = values(E5M2, 124)[:124].astype(np.float64)
    w = np.concatenate([(e5[:-1] + e5[1:]) / 2, [57344.0, -57344.0, 1e-3, -1e-3, 0.0, -0.0]])[:128]
    rows.append(np.concatenate([v, w]))
    return np.array(rows).astype(F32)


def fp8_reference(x, dt, mx):
    rows, cols = x.shape
    packed = np.zeros((rows, cols // 128 * 132), dtype=np.uint8)
    deq = np.zeros_like(x)
    for r in range(rows):
        for b in range(cols // 128):
            xb = x[r, 128 * b:128 * b + 128]
            if not np.all(np.isfinite(xb)):
                s, q = F32(np.nan), np.zeros(128, dtype=np.uint8)
            else:
                s = F32(np.max(np.abs(xb))) / F32(mx)
                if s == 0:
                    q = np.zeros(128, dtype=np.uint8)
                else:
                    q = codes(np.clip(xb / s, F32(-mx), F32(mx)), dt)
            packed[r, 132 * b:132 * b + 4] = np.frombuffer(np.array([s], dtype="<f4").tobytes(), dtype=np.uint8)
            packed[r, 132 * b + 4:132 * b + 132] = q
            with np.errstate(invalid="ignore"):
                deq[r, 128 * b:128 * b + 128] = q.view(dt).astype(F32) * s
    return packed, deq


def ggml_lib():
    lib = ctypes.CDLL(os.environ.get("GGML_BASE_LIB", "/tmp/llcpp/build/bin/libggml-base.so"))
    for fn in (lib.quantize_row_mxfp4_ref, lib.dequantize_row_mxfp4):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = None
    return lib


def mxfp4_rows(rng):
    rows = []
    for r in range(6):
        rows.append(rng.standard_normal(64) * 10.0 ** rng.uniform(-30, 30))
    v = np.zeros(64)
    v[40] = -1e-3
    rows.append(v)  # an all-zero block, one value in the other
    # amax just below and at powers of two: floorf(log2f(amax)) rounds up for the first few
    for k in (3, 10, -20, 100):
        v = rng.uniform(-1, 1, 64) * 2.0 ** k
        v[0] = 2.0 ** k * (1 - 2 ** -24)
        v[1] = -(2.0 ** k) * (1 - 6 * 2 ** -24)
        v[32] = 2.0 ** k * (1 - 7 * 2 ** -24)
        v[33] = 2.0 ** k
        rows.append(v)
    # ties: amax 6 (e = 127, d = 0.5): midpoints of the E2M1 grid, both signs
    lv = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    mids = (lv[:-1] + lv[1:]) / 2
    v = np.concatenate([mids, -mids, lv, -lv, [6.0, -6.0]])
    rows.append(np.concatenate([v, rng.uniform(-6, 6, 64 - len(v))]))
    v = rng.standard_normal(64)
    v[::5] = -0.0
    rows.append(v)
    v = rng.standard_normal(64) * 2.0 ** -124  # amax near the smallest valid scale (e = 1, 2)
    v[32:] = rng.standard_normal(32) * 2.0 ** -110
    rows.append(v)
    rows.append(rng.uniform(-3.4e38, 3.4e38, 64))  # e = 252
    return np.array(rows).astype(F32)


def mxfp4_reference(lib, x):
    rows, cols = x.shape
    packed = np.zeros((rows, cols // 32 * 17), dtype=np.uint8)
    for r in range(rows):
        row = np.ascontiguousarray(x[r], dtype=F32)
        for b in range(cols // 32):
            a = np.max(np.abs(row[32 * b:32 * b + 32]))
            assert np.isfinite(a) and (a == 0 or a >= F32(2.0 ** -125)), "ggml's quantizer is undefined there"
        lib.quantize_row_mxfp4_ref(row.ctypes.data, packed[r].ctypes.data, cols)
    return packed, mxfp4_dequantize(lib, packed, cols)


def mxfp4_dequantize(lib, packed, cols):
    """OCP: E2M1(q) * 2^(e - 127), values from ml_dtypes; checked against ggml where e != 0xFF."""
    rows = packed.shape[0]
    out = np.zeros((rows, cols), dtype=F32)
    e2m1 = values(E2M1, 16)
    for r in range(rows):
        for b in range(cols // 32):
            blk = packed[r, 17 * b:17 * b + 17]
            scale = np.array([blk[0]], dtype=np.uint8).view(E8M0).astype(F32)[0]
            q = np.concatenate([blk[1:] & 15, blk[1:] >> 4])
            with np.errstate(over="ignore", invalid="ignore"):
                out[r, 32 * b:32 * b + 32] = e2m1[q] * scale
        ggml = np.zeros(cols, dtype=F32)
        row = np.ascontiguousarray(packed[r])
        lib.dequantize_row_mxfp4(row.ctypes.data, ggml.ctypes.data, cols)
        for b in range(cols // 32):
            if packed[r, 17 * b] != 0xFF:  # equal values; ggml's integer levels read code 8 (-0) as +0
                assert np.array_equal(ggml[32 * b:32 * b + 32], out[r, 32 * b:32 * b + 32])
    return out


def mxfp4_codes():
    blocks = np.zeros((256, 17), dtype=np.uint8)
    for i in range(256):
        blocks[i, 0] = i
        blocks[i, 1:] = (np.arange(16) + 16 * i + 7 * (i // 16)) % 256
    return blocks


def nvfp4_rows(rng):
    rows = []
    for r in range(4):
        rows.append(rng.standard_normal(128) * 10.0 ** rng.uniform(-8, 8))
    rows.append(np.zeros(128))  # all zero: s = 0
    v = rng.standard_normal(128)
    v[70] = np.nan
    rows.append(v)  # non-finite row: s = NaN
    # s = 1 (amax 2688); sub-block 1: amax 6, so c = 1 and x / c lands on the E2M1 ties; sub-block 2
    # all zero; sub-block 3 tiny (its E4M3 scale rounds to 0); the rest random
    v = rng.uniform(-1000, 1000, 128)
    v[0] = 2688.0
    lv = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6])
    v[16:32] = np.concatenate([(lv[:-1] + lv[1:]) / 2, [6.0], -(lv[:-1] + lv[1:]) / 2, [-6.0]])
    v[32:48] = 0.0
    v[48:64] = rng.uniform(-1, 1, 16) * 1e-3
    rows.append(v)
    v = rng.standard_normal(128)
    v[::3] = -0.0
    v[1::9] = -1e-9  # negatives that round to -0
    rows.append(v)
    v = rng.standard_normal(128) * 1e-38  # subnormal row scale
    rows.append(v)
    rows.append(rng.uniform(-3e38, 3e38, 128))
    return np.array(rows).astype(F32)


def nvfp4_reference(x):
    rows, cols = x.shape
    packed = np.zeros((rows, cols // 64 * 40), dtype=np.uint8)
    deq = np.zeros_like(x)
    for r in range(rows):
        xr = x[r]
        s = F32(np.max(np.abs(xr))) / F32(2688.0) if np.all(np.isfinite(xr)) else F32(np.nan)
        for b in range(cols // 64):
            blk = packed[r, 40 * b:40 * b + 40]
            blk[0:4] = np.frombuffer(np.array([s], dtype="<f4").tobytes(), dtype=np.uint8)
            for i in range(4):
                xs = xr[64 * b + 16 * i:64 * b + 16 * i + 16]
                q = np.zeros(16, dtype=np.uint8)
                d = np.uint8(0x38)
                if s > 0:
                    bscale = F32(np.max(np.abs(xs))) / (F32(6.0) * s)
                    if bscale == 0:
                        bscale = F32(1.0)
                    d = codes([bscale], E4M3)[0]
                    c = np.array([d], dtype=np.uint8).view(E4M3).astype(F32)[0] * s
                    if c != 0:
                        q = codes(xs / c, E2M1)
                blk[4 + i] = d
                blk[8 + 8 * i:16 + 8 * i] = q[:8] | (q[8:] << 4)
        deq[r] = nvfp4_dequantize(packed[r:r + 1], cols)[0]
    return packed, deq


def nvfp4_dequantize(packed, cols):
    """ModelOpt's order: (E4M3(d) * s) first, then times E2M1(q)."""
    rows = packed.shape[0]
    out = np.zeros((rows, cols), dtype=F32)
    e2m1 = values(E2M1, 16)
    for r in range(rows):
        for b in range(cols // 64):
            blk = packed[r, 40 * b:40 * b + 40]
            s = np.frombuffer(blk[0:4].tobytes(), dtype="<f4")[0]
            for i in range(4):
                with np.errstate(over="ignore", invalid="ignore"):
                    c = np.array([blk[4 + i]], dtype=np.uint8).view(E4M3).astype(F32)[0] * s
                    qb = blk[8 + 8 * i:16 + 8 * i]
                    q = np.concatenate([qb & 15, qb >> 4])
                    out[r, 64 * b + 16 * i:64 * b + 16 * i + 16] = e2m1[q] * c
    return out


def main():
    rng = np.random.default_rng(20260601)
    t = {}
    elements(t, rng)

    x = fp8_rows(rng)
    t["fp8.input"] = x
    for name, dt, mx in (("fp8_e4m3", E4M3, 448.0), ("fp8_e5m2", E5M2, 57344.0)):
        t[name], t[name + ".dequantized"] = fp8_reference(x, dt, mx)

    lib = ggml_lib()
    x = mxfp4_rows(rng)
    t["mxfp4.input"] = x
    t["mxfp4"], t["mxfp4.dequantized"] = mxfp4_reference(lib, x)
    mxfp4_dequantize(lib, mxfp4_codes(), 32)  # OCP's formula against ggml's on every code (e < 255)

    x = nvfp4_rows(rng)
    t["nvfp4.input"] = x
    t["nvfp4"], t["nvfp4.dequantized"] = nvfp4_reference(x)

    # safetensors, written directly (8-byte little-endian header size, JSON header, data)
    header, data, offset = {}, [], 0
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8"}
    for name, a in t.items():
        a = np.ascontiguousarray(a)
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        data.append(raw)
        offset += len(raw)
    header["__metadata__"] = {
        "source": "tools/make_lowfloat_fixtures.py: ml_dtypes casts; FP8 / NVFP4 recipes in numpy float32; "
                  "MXFP4: ggml quantize_row_mxfp4_ref",
        "ml_dtypes": version("ml_dtypes"),
        "numpy": np.__version__,
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in data:
            f.write(raw)
    print(f"{os.path.relpath(OUT)}: {os.path.getsize(OUT)} bytes (ml_dtypes {version('ml_dtypes')}, numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
