"""What the fixture scripts that call ggml's own C reference share (make_quant_fixtures.py,
make_kquant_fixtures.py, make_lowbit_fixtures.py): loading a libggml-base shared library through
ctypes (GGML_BASE_LIB, default /tmp/llcpp/build/bin/libggml-base.so) after checking with objdump
that the functions a fixture comes from were built without FMA contraction (ISO C evaluation: every
product rounded before it is added), calling its row functions, and writing a safetensors file.

Developer machine only (needs numpy, gguf, objdump and a built libggml-base); tests never run Python.
"""
import ctypes
import json
import os
import re
import struct
import subprocess
from importlib.metadata import version

import numpy as np

LIB = os.environ.get("GGML_BASE_LIB", "/tmp/llcpp/build/bin/libggml-base.so")
FMA = re.compile(r"\bv?f(n)?m(add|sub)")


def load(names, helpers=()):
    """The C library, after checking its code for fma instructions: every function in names (each
    must be there; its compiler-made parts such as name.cold too) and every function whose symbol
    starts with a regex of helpers (the scale searches a quantizer calls, where they exist)."""
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", LIB], capture_output=True, text=True, check=True).stdout
    code = ""
    for name in names:
        bodies = [m.group("body") for m in re.finditer(rf"<{re.escape(name)}(\.[a-z0-9.]+)?>:\n(?P<body>.*?)\n\n", dis, re.S)]
        if not bodies:
            raise SystemExit(f"{LIB}: {name} missing")
        code += "".join(bodies)
    for helper in helpers:
        code += "".join(m.group("body") for m in re.finditer(rf"<{helper}[^>]*>:\n(?P<body>.*?)\n\n", dis, re.S))
    if FMA.search(code):
        raise SystemExit(f"{LIB}: {', '.join(names)} built with fma contraction")
    return ctypes.CDLL(LIB)


def _row_fn(lib, name):
    f = getattr(lib, name)  # ggml's row functions: (const void * src, void * dst, int64_t n)
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    f.restype = None
    return f


def quantize_rows(lib, name, x, row_bytes):
    """The rows of x (float32) packed by ggml's name (a quantize_row_<type>_ref) into row_bytes each;
    the output starts zeroed, so bytes ggml leaves unwritten are 0."""
    f = _row_fn(lib, name)
    rows, cols = x.shape
    out = np.zeros((rows, row_bytes), dtype=np.uint8)
    for r in range(rows):
        row = np.ascontiguousarray(x[r], dtype=np.float32)
        f(row.ctypes.data, out[r].ctypes.data, cols)
    return out


def dequantize_rows(lib, name, packed, cols):
    """The rows of packed (uint8) unpacked by ggml's name (a dequantize_row_<type>) to cols floats each."""
    f = _row_fn(lib, name)
    out = np.zeros((packed.shape[0], cols), dtype=np.float32)
    for r in range(packed.shape[0]):
        row = np.ascontiguousarray(packed[r])
        f(row.ctypes.data, out[r].ctypes.data, cols)
    return out


def write_safetensors(path, tensors, metadata):
    """tensors (name -> float32 or uint8 array, in order) as a safetensors file, written directly
    (8-byte little-endian header size, JSON header padded to 8 bytes, data); metadata's entries come
    first in __metadata__, then the versions of gguf and numpy."""
    header, data, offset = {}, [], 0
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8"}
    for name, t in tensors.items():
        raw = np.ascontiguousarray(t).astype(t.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        data.append(raw)
        offset += len(raw)
    header["__metadata__"] = {**metadata, "gguf": version("gguf"), "numpy": np.__version__}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in data:
            f.write(raw)
    print(f"{os.path.relpath(path)}: {os.path.getsize(path)} bytes (gguf {version('gguf')}, numpy {np.__version__})")
