#!/usr/bin/env python3
"""Writes the GGUF fixtures that tests/io/test_gguf.cpp reads (tests/data/).

Developer machine only (needs the `gguf` package, 0.19, and numpy): tests and CI never run Python.

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install "gguf==0.19.*" numpy
    /tmp/gguf-venv/bin/python tools/make_gguf_fixtures.py

Writes, with gguf-py's own GGUFWriter and quantizer (the reference implementation):
  gguf_reference.gguf        every metadata value type (arrays of strings, nested arrays), F32,
                             F16, BF16 and Q8_0 tensors of rank 1 to 3, an I32 and a Q5_K tensor
                             (types tformer has no format for), default alignment 32
  gguf_aligned64.gguf        general.alignment = 64, two tensors
and for each a sidecar <name>.expected.safetensors holding, per tensor, the values gguf-py
dequantizes it to (F32, under the tensor's name) and the floats it was made from ("<name>.source"),
with what gguf-py's GGUFReader reports (version, alignment, data offset, each tensor's type, ne
and absolute data offset) as JSON in the "reference" metadata entry.
"""
import json
import os
import struct

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf import quants

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def save_safetensors(path, tensors, metadata):
    """A minimal safetensors writer (F32 only), so that the script needs no other package."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode() + b"".join(blobs))


def write(name, metadata, tensors, alignment=None):
    """metadata: (key, value, type, sub_type); tensors: (name, source floats, ggml type, raw bytes or None)."""
    path = os.path.join(OUT, f"{name}.gguf")
    w = gguf.GGUFWriter(path, arch="tformer-test")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, value, vtype, sub in metadata:
        w.add_key_value(key, value, vtype, sub_type=sub)
    expected = {}
    for tname, x, qtype, raw in tensors:
        if raw is not None:  # bytes of a type gguf-py cannot quantize to: [rows, row bytes] of uint8
            w.add_tensor(tname, raw, raw_dtype=qtype)
            continue
        if qtype == T.F32:
            w.add_tensor(tname, x)
            expected[tname] = x
        elif qtype == T.F16:
            h = x.astype(np.float16)
            w.add_tensor(tname, h)
            expected[tname] = h.astype(np.float32)
        elif qtype == T.I32:
            w.add_tensor(tname, x)
            continue
        else:  # BF16, Q8_0: gguf-py's quantizer, stored as bytes
            q = quants.quantize(x, qtype)
            w.add_tensor(tname, q, raw_dtype=qtype)
            expected[tname] = quants.dequantize(q, qtype).astype(np.float32)
        expected[tname + ".source"] = x
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # What the reference reader sees.
    r = gguf.GGUFReader(path)
    ref = {
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "tensors": [
            {"name": t.name, "type": int(t.tensor_type), "ne": [int(n) for n in t.shape],
             "offset": int(t.data_offset), "bytes": int(t.n_bytes)}
            for t in r.tensors
        ],
    }
    for t in r.tensors:  # the reader's dequantization agrees with the writer's
        if t.name in expected and t.tensor_type != T.F32:
            got = quants.dequantize(t.data, t.tensor_type).reshape(expected[t.name].shape)
            assert np.array_equal(got.view(np.uint32), expected[t.name].astype(np.float32).view(np.uint32)), t.name
    side = os.path.join(OUT, f"{name}.expected.safetensors")
    save_safetensors(side, expected, {"reference": json.dumps(ref), "gguf": "0.19"})
    print(f"{name}.gguf: {os.path.getsize(path)} bytes, sidecar {os.path.getsize(side)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    metadata = [
        ("test.u8", 200, V.UINT8, None),
        ("test.i8", -100, V.INT8, None),
        ("test.u16", 60000, V.UINT16, None),
        ("test.i16", -30000, V.INT16, None),
        ("test.u32", 4000000000, V.UINT32, None),
        ("test.i32", -2000000000, V.INT32, None),
        ("test.f32", 3.14159, V.FLOAT32, None),  # stored rounded to float32
        ("test.bool_true", True, V.BOOL, None),
        ("test.bool_false", False, V.BOOL, None),
        ("test.string", "héllo, gguf ✓", V.STRING, None),
        ("test.empty_string", "", V.STRING, None),
        ("test.u64", 18446744073709551615, V.UINT64, None),
        ("test.i64", -9223372036854775808, V.INT64, None),
        ("test.f64", 2.718281828459045, V.FLOAT64, None),
        ("test.array.u8", [0, 1, 255], V.ARRAY, V.UINT8),
        ("test.array.i16", [-32768, 32767], V.ARRAY, V.INT16),
        ("test.array.i32", [1, -2, 3], V.ARRAY, V.INT32),
        ("test.array.u64", [0, 18446744073709551615], V.ARRAY, V.UINT64),
        ("test.array.f32", [0.5, -1.25, 1e-3], V.ARRAY, V.FLOAT32),
        ("test.array.f64", [1e300, -0.0], V.ARRAY, V.FLOAT64),
        ("test.array.bool", [True, False, True], V.ARRAY, V.BOOL),
        ("test.array.string", ["<s>", "</s>", "▁the", ""], V.ARRAY, V.STRING),
        ("test.array.nested", [[1, 2], [3], [4, 5, 6]], V.ARRAY, V.ARRAY),
        ("test.array.nested_strings", [["a"], ["b", "c"]], V.ARRAY, V.ARRAY),
    ]
    # Q8_0 sources: an all-zero block, exact halves around the rounding points, and a large range
    q8_rank2 = normal(3, 64)
    q8_rank2[1, :32] = 0.0
    q8_rank2[2, 32:] = (np.arange(32, dtype=np.float32) - 15.5) * 127.0 / 16.0
    f16_src = normal(3, 5, scale=100.0)
    f16_src[0, :4] = [-0.0, 6e-8, 65504.0, 1e-5]  # signed zero, subnormals, the largest finite
    tensors = [
        ("f32.rank1", normal(7), T.F32, None),  # 28 bytes: the next tensor needs padding
        ("f16.rank2", f16_src, T.F16, None),
        ("bf16.rank3", normal(2, 3, 4, scale=1e-3), T.BF16, None),
        ("q8_0.rank1", normal(32), T.Q8_0, None),
        ("q8_0.rank2", q8_rank2, T.Q8_0, None),
        ("q8_0.rank3", normal(2, 2, 64, scale=0.02), T.Q8_0, None),
        ("f32.rank3", normal(2, 1, 3), T.F32, None),
        ("bf16.rank1", normal(5), T.BF16, None),
        ("i32.rank1", np.array([1, -2, 3, 2147483647], dtype=np.int32), T.I32, None),
        ("q5_k.rank2", None, T.Q5_K, rng.integers(0, 256, size=(1, 176), dtype=np.uint8)),
    ]
    write("gguf_reference", metadata, tensors)

    write("gguf_aligned64", [("test.note", "aligned to 64", V.STRING, None)],
          [("a", normal(3), T.F32, None), ("b", normal(2, 32), T.Q8_0, None)], alignment=64)


if __name__ == "__main__":
    main()
