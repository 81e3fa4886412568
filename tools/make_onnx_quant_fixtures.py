#!/usr/bin/env python3
"""Writes tests/data/onnx_quant.safetensors: ONNX's QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear and MatMulInteger as onnx's reference evaluator (onnx.reference.
ReferenceEvaluator) computes them, CTranslate2's int8 quantization of a few weight rows (its own
LinearSpec.optimize(quantization="int8")), and the group-wise int4 bytes of quant::int4_group<G>
(gguf-py's numpy Q4_1 quantizer, gguf.quants.Q4_1.quantize_blocks / dequantize_blocks, run on
blocks of G = 32, 64, 128).

Developer machine only (needs `pip install onnx ctranslate2 gguf numpy`); tests never run Python.
The C++ tests (tests/quant/test_quantize_linear.cpp, test_matmul_integer.cpp, test_int8_channel.cpp,
test_int4_group.cpp) check that tformer's results equal these exactly.

Tensors (dtype [shape]); the metadata entry "cases" (JSON) lists every case with its attributes:
  ql.<case>.x F32, .scale F32, .zp U8/I8 (when given), .y U8/I8      QuantizeLinear
  dql.<case>.x U8/I8, .scale F32, .zp (when given), .y F32            DequantizeLinear
  dyn.<case>.x F32, .y U8, .scale F32 [1], .zp U8 [1]                 DynamicQuantizeLinear
  mmi.<case>.a U8/I8, .b U8/I8, .a_zp, .b_zp (when given), .y I32     MatMulInteger
  ct2.input F32 [6, 40], ct2.q I8 [6, 40], ct2.scale F32 [6]          CTranslate2 int8
  int4.input F32 [4, 256], int4_g<G> U8 [4, bytes], int4_g<G>.dequantized F32 [4, 256]
  uint8_channel.input F32 [5, 48], .q U8 [5, 48], .scale F32 [5], .zp U8 [5]
                                                                     DynamicQuantizeLinear per row

MatMulInteger's per-row a_zero_point: the reference evaluator subtracts it with numpy
broadcasting, so a 1-D [M] zero point would act on A's columns; the fixture passes it as [M, 1]
(a per-row zero point, as the operator definition describes a 1-D one) and stores it as [M].

    /work/venv/bin/python tools/make_onnx_quant_fixtures.py
"""
import json
import os
import types
import warnings
from importlib.metadata import version

import numpy as np
import onnx
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "onnx_quant.safetensors")

tensors = {}
cases = {"quantize_linear": [], "dequantize_linear": [], "dynamic_quantize_linear": [], "matmul_integer": []}

NP_TO_ONNX = {np.float32: TensorProto.FLOAT, np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8,
              np.int32: TensorProto.INT32}


def run(op, inputs, n_out=1, opset=21, **attrs):
    """Runs one node of op on the named numpy inputs (None: absent) with the reference evaluator."""
    names = [n if v is not None else "" for n, v in inputs]
    outs = [f"out{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, **attrs)
    ins = [helper.make_tensor_value_info(n, NP_TO_ONNX[v.dtype.type], v.shape) for n, v in inputs if v is not None]
    graph = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN -> int casts in the reference
        res = ReferenceEvaluator(model).run(None, {n: v for n, v in inputs if v is not None})
    return res


def put(name, arr):
    tensors[name] = np.ascontiguousarray(arr)


rng = np.random.default_rng(20261130)

# ---- QuantizeLinear -------------------------------------------------------------------------------
x = (rng.standard_normal((2, 3, 8)) * 40).astype(np.float32)
# ties at power-of-two scales, saturation, and exact zero
x[0, 0, :] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.0, -0.0]
x[0, 1, :] = [1e4, -1e4, 300.0, -300.0, 127.5, -128.5, 255.5, 254.5]
x[1, 2, :] = [3.25, -3.75, 0.125, 63.5, -64.5, 1.0e6, -7.0e5, 12.5]
ql_cases = [
    # name, scale, zp, axis
    ("tensor_u8", np.array(0.5, np.float32), np.array(128, np.uint8), 1),
    ("tensor_i8", np.array(0.5, np.float32), np.array(-3, np.int8), 1),
    ("tensor_u8_nozp", np.array(1.0, np.float32), None, 1),
    ("one_u8", np.array([0.25], np.float32), np.array([7], np.uint8), 1),
    ("axis1_u8", np.array([0.5, 0.1, 0.037], np.float32), np.array([0, 128, 255], np.uint8), 1),
    ("axis1_i8", np.array([0.5, 0.1, 0.037], np.float32), np.array([0, -128, 127], np.int8), 1),
    ("axis_neg1_i8", np.linspace(0.05, 2.0, 8).astype(np.float32), np.arange(-4, 4).astype(np.int8), -1),
    ("axis0_u8", np.array([0.3, 1.7], np.float32), np.array([10, 200], np.uint8), 0),
    ("axis_neg3_i8", np.array([0.3, 1.7], np.float32), np.array([10, -20], np.int8), -3),
    ("axis2_u8", np.linspace(0.5, 4.0, 8).astype(np.float32), np.arange(0, 256, 32).astype(np.uint8), 2),
]
for name, scale, zp, axis in ql_cases:
    (y,) = run("QuantizeLinear", [("x", x), ("s", scale), ("z", zp)], axis=axis)
    put(f"ql.{name}.x", x)
    put(f"ql.{name}.scale", scale)
    if zp is not None:
        put(f"ql.{name}.zp", zp)
    put(f"ql.{name}.y", y)
    cases["quantize_linear"].append({"name": name, "axis": axis, "type": str(y.dtype), "zp": zp is not None})

# a NaN (the reference's x86 cast gives INT32_MIN, so qmin) in a rank-1 and a rank-0 x
xn = np.array([np.nan, 1.0, -1.0, 0.5], np.float32)
for name, zp in (("nan_u8", np.array(100, np.uint8)), ("nan_i8", np.array(5, np.int8))):
    (y,) = run("QuantizeLinear", [("x", xn), ("s", np.array(0.25, np.float32)), ("z", zp)])
    put(f"ql.{name}.x", xn)
    put(f"ql.{name}.scale", np.array(0.25, np.float32))
    put(f"ql.{name}.zp", zp)
    put(f"ql.{name}.y", y)
    cases["quantize_linear"].append({"name": name, "axis": 1, "type": str(y.dtype), "zp": True})
x0 = np.array(-2.5, np.float32)
(y,) = run("QuantizeLinear", [("x", x0), ("s", np.array(1.0, np.float32)), ("z", np.array(0, np.int8))])
put("ql.scalar_i8.x", x0)
put("ql.scalar_i8.scale", np.array(1.0, np.float32))
put("ql.scalar_i8.zp", np.array(0, np.int8))
put("ql.scalar_i8.y", y)
cases["quantize_linear"].append({"name": "scalar_i8", "axis": 1, "type": "int8", "zp": True})

# ---- DequantizeLinear -----------------------------------------------------------------------------
xu = rng.integers(0, 256, (2, 3, 8)).astype(np.uint8)
xu[0, 0, :4] = [0, 255, 128, 1]
xi = rng.integers(-128, 128, (2, 3, 8)).astype(np.int8)
xi[0, 0, :4] = [-128, 127, 0, -1]
dql_cases = [
    ("tensor_u8", xu, np.array(0.037, np.float32), np.array(131, np.uint8), 1),
    ("tensor_i8", xi, np.array(1.3e-3, np.float32), np.array(-7, np.int8), 1),
    ("tensor_i8_nozp", xi, np.array(0.1, np.float32), None, 1),
    ("axis1_u8", xu, np.array([0.5, 0.1, 3.3], np.float32), np.array([0, 128, 255], np.uint8), 1),
    ("axis_neg1_i8", xi, np.linspace(0.01, 1.3, 8).astype(np.float32), np.arange(-4, 4).astype(np.int8), -1),
    ("axis0_u8_zero_scale", xu, np.array([0.0, 2.5], np.float32), np.array([3, 4], np.uint8), 0),
]
for name, xq, scale, zp, axis in dql_cases:
    (y,) = run("DequantizeLinear", [("x", xq), ("s", scale), ("z", zp)], axis=axis)
    put(f"dql.{name}.x", xq)
    put(f"dql.{name}.scale", scale)
    if zp is not None:
        put(f"dql.{name}.zp", zp)
    put(f"dql.{name}.y", y)
    cases["dequantize_linear"].append({"name": name, "axis": axis, "type": str(xq.dtype), "zp": zp is not None})

# ---- DynamicQuantizeLinear ------------------------------------------------------------------------
dyn_inputs = {
    "normal": (rng.standard_normal((4, 16)) * 3).astype(np.float32),
    "positive": rng.uniform(0.5, 9.0, (3, 7)).astype(np.float32),       # min clamps to 0: zp 0
    "negative": rng.uniform(-9.0, -0.5, (5,)).astype(np.float32),       # max clamps to 0: zp 255
    "zeros": np.zeros((2, 3), np.float32),                              # scale 1 / 255, zp 0
    "single": np.array([4.2], np.float32),
    "onnx_doc": np.array([0, 2, -3, -2.5, 1.34, 0.5], np.float32),      # the operator's example
    "ties": np.array([-1.0, 0.0, 1.0, 255.0 / 510.0, -255.0 / 510.0, 0.5, 1.5 / 255.0], np.float32),
    "rank3": (rng.standard_normal((2, 3, 5)) * 0.01 + 0.003).astype(np.float32),
    "zp_tie": np.array([-0.5 * 2 / 255 * 1, 2.0 - 1.0 / 255], np.float32),
}
for name, xv in dyn_inputs.items():
    y, scale, zp = run("DynamicQuantizeLinear", [("x", xv)], n_out=3)
    put(f"dyn.{name}.x", xv)
    put(f"dyn.{name}.y", y)
    put(f"dyn.{name}.scale", np.asarray(scale, np.float32).reshape(1))
    put(f"dyn.{name}.zp", np.asarray(zp, np.uint8).reshape(1))
    cases["dynamic_quantize_linear"].append({"name": name})

# uint8_channel: DynamicQuantizeLinear of each row
rows = (rng.standard_normal((5, 48)) * np.array([[0.01], [1.0], [30.0], [0.5], [2.0]])).astype(np.float32)
rows[3] = np.abs(rows[3])      # nonnegative: zp 0
rows[4] = -np.abs(rows[4])     # nonpositive: zp 255
put("uint8_channel.input", rows)
ys, ss, zs = [], [], []
for r in rows:
    y, s, z = run("DynamicQuantizeLinear", [("x", r)], n_out=3)
    ys.append(y), ss.append(np.float32(s)), zs.append(np.uint8(z))
put("uint8_channel.q", np.stack(ys))
put("uint8_channel.scale", np.array(ss, np.float32))
put("uint8_channel.zp", np.array(zs, np.uint8))

# ---- MatMulInteger --------------------------------------------------------------------------------
def ints(dtype, shape):
    lo, hi = (0, 256) if dtype == np.uint8 else (-128, 128)
    return rng.integers(lo, hi, shape).astype(dtype)


mmi_cases = [
    # name, A dtype, B dtype, M, K, N, a_zp kind, b_zp kind, batch
    ("u8_i8_scalar", np.uint8, np.int8, 5, 70, 140, "scalar", "scalar", None),
    ("u8_u8_column", np.uint8, np.uint8, 7, 37, 45, "scalar", "column", None),
    ("i8_i8_none", np.int8, np.int8, 3, 64, 33, None, None, None),
    ("i8_u8_row_column", np.int8, np.uint8, 6, 19, 130, "row", "column", None),
    ("u8_i8_batched", np.uint8, np.int8, 3, 29, 17, "scalar", "column", 2),
    ("u8_u8_extremes", np.uint8, np.uint8, 4, 33, 20, "scalar", "scalar", None),
    ("i8_i8_k1", np.int8, np.int8, 2, 1, 3, "scalar", "scalar", None),
]
for name, ta, tb, m, k, n, akind, bkind, batch in mmi_cases:
    a = ints(ta, (batch, m, k) if batch else (m, k))
    b = ints(tb, (k, n))
    if name == "u8_u8_extremes":
        a[:] = 255
        b[:] = 255
    a_zp = {"scalar": ints(ta, ()), "row": ints(ta, (m,)), None: None}[akind]
    b_zp = {"scalar": ints(tb, ()), "column": ints(tb, (n,)), None: None}[bkind]
    if name == "u8_u8_extremes":
        a_zp = np.array(0, np.uint8)
        b_zp = np.array(0, np.uint8)
    a_zp_in = a_zp.reshape(m, 1) if akind == "row" else a_zp
    (y,) = run("MatMulInteger", [("a", a), ("b", b), ("az", a_zp_in), ("bz", b_zp)], opset=10)
    put(f"mmi.{name}.a", a)
    put(f"mmi.{name}.b", b)
    if a_zp is not None:
        put(f"mmi.{name}.a_zp", a_zp)
    if b_zp is not None:
        put(f"mmi.{name}.b_zp", b_zp)
    put(f"mmi.{name}.y", y.astype(np.int32))
    cases["matmul_integer"].append({"name": name, "a": np.dtype(ta).name, "b": np.dtype(tb).name,
                                    "a_zp": akind, "b_zp": bkind})

# ---- CTranslate2 int8 -----------------------------------------------------------------------------
from ctranslate2.specs import common_spec  # noqa: E402

w = (rng.standard_normal((6, 40)) * np.array([[0.02], [1.0], [50.0], [1.0], [0.0], [1.0]])).astype(np.float32)
w[3, :8] = [127.0, 2.5, 3.5, -0.5, 0.5, -1.5, 63.5, -64.5]    # amax 127: s = 1, ties to even
w[5] = 0.0
w[5, 0] = 1e-39                                                 # subnormal: the scale is clamped
spec = common_spec.LinearSpec()
spec.weight = w.copy()
spec.validate()
spec.optimize(quantization="int8")
put("ct2.input", w)
put("ct2.q", spec.weight.numpy().astype(np.int8))
put("ct2.scale", spec.weight_scale.numpy().astype(np.float32))

# ---- int4_group<G>: gguf-py's Q4_1 quantizer on blocks of G ----------------------------------------
from gguf.quants import Q4_1  # noqa: E402

x4 = (rng.standard_normal((4, 256)) * 2.0).astype(np.float32)
x4[1] *= 1e-3
x4[1, :64] += 5.0                # off-centre groups
x4[2, :32] = 0.0                 # an all-zero group of 32
x4[2, 128:256] = 0.75            # an all-equal group of 128
x4[3, ::3] = -x4[3, ::3] * 40.0  # a wide range
put("int4.input", x4)
for g in (32, 64, 128):
    cls = types.SimpleNamespace(block_size=g)
    blocks = Q4_1.quantize_blocks.__func__(cls, x4.reshape(-1, g))       # [rows * 256 / g, 4 + g / 2]
    deq = Q4_1.dequantize_blocks.__func__(cls, blocks)
    put(f"int4_g{g}", blocks.reshape(4, -1))
    put(f"int4_g{g}.dequantized", deq.reshape(4, 256).astype(np.float32))

# ---- write ----------------------------------------------------------------------------------------
DT = {np.float32: "F32", np.uint8: "U8", np.int8: "I8", np.int32: "I32"}
header, blobs, off = {}, [], 0
for name, arr in tensors.items():
    b = arr.tobytes()
    header[name] = {"dtype": DT[arr.dtype.type], "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
header["__metadata__"] = {
    "cases": json.dumps(cases),
    "versions": json.dumps({p: version(p) for p in ("onnx", "numpy", "ctranslate2", "gguf")}),
}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(OUT, "wb") as f:
    f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
print(f"wrote {OUT}: {len(tensors)} tensors, {8 + len(h) + off} bytes")
