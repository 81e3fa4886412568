"""The engines compared: tformer (bench_peers, bench_gemm) and its peers.

Every engine answers two questions about a workload: its output (for the correctness check) and
its time. Python peers run in this process and are timed with time.perf_counter after a warm-up;
tformer and llama.cpp run as child processes and report their own times. Sessions, models and
translators are created once per (model, threads) and kept for the whole run, so that later
rounds time the same objects.

Times are milliseconds per workload call: the whole batch for encoders and translation, one
generated token for decode, the whole prompt for prefill, one attention call.
"""
import json
import os
import re
import statistics
import subprocess
import time

import numpy as np

import models


class PeerError(RuntimeError):
    """A peer that cannot run a workload (not installed, conversion failed, crashed)."""


def child_env():
    """Environment of every child process: OpenMP threads sleep instead of spinning when idle."""
    env = dict(os.environ)
    env["OMP_WAIT_POLICY"] = "passive"
    return env


def timed_median(fn, budget_s, min_reps=3, max_reps=20):
    """Median wall time (ms) of fn() after one untimed warm-up call. The number of repetitions
    fills about budget_s, within [min_reps, max_reps]."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    reps = int(min(max_reps, max(min_reps, budget_s / max(first, 1e-6))))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def run_program(cmd, timeout_s=900):
    """cmd's completed process (output captured); PeerError when it cannot start or runs longer
    than timeout_s (a hung program must not stall the comparison)."""
    try:
        return subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise PeerError(f"{os.path.basename(cmd[0])} took over {timeout_s} s") from e
    except OSError as e:
        raise PeerError(f"cannot run {cmd[0]}: {e}") from e


def regex_escape(text):
    """Escapes what is special in a POSIX / ECMAScript regex (Google Benchmark's --benchmark_filter);
    Python's re.escape also escapes characters such as '/' that POSIX leaves undefined."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


# ---- tformer ------------------------------------------------------------------------------------

class Tformer:
    """bench_peers (one process per measurement) and bench_gemm."""

    def __init__(self, bench_dir, workloads_json):
        self.bench = os.path.join(bench_dir, "bench_peers")
        self.gemm = os.path.join(bench_dir, "bench_gemm")
        self.workloads_json = workloads_json

    def dump(self, out_dir):
        """Runs every checked workload once; outputs land in out_dir (see read_dump)."""
        os.makedirs(out_dir, exist_ok=True)
        proc = run_program([self.bench, "--workloads", self.workloads_json, "--dump", out_dir])
        if proc.returncode != 0:
            raise PeerError(f"bench_peers --dump failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")

    @staticmethod
    def read_dump(out_dir, name):
        base = os.path.join(out_dir, name.replace("/", "__"))
        with open(base + ".json") as f:
            meta = json.load(f)
        dtype = {"float32": "<f4", "int32": "<i4"}[meta["dtype"]]
        return np.fromfile(base + ".bin", dtype=dtype).reshape(meta["shape"])

    def time(self, name, threads, reps, min_time):
        """Median real time (ms) of the Google Benchmark `<name>/t:<threads>` over `reps`
        repetitions (each at least min_time seconds, after a warm-up of the same length)."""
        pattern = f"^{regex_escape(name)}/t:{threads}(/real_time)?$"
        cmd = [self.bench, "--workloads", self.workloads_json, f"--benchmark_filter={pattern}",
               "--benchmark_format=json", f"--benchmark_repetitions={reps}",
               f"--benchmark_min_time={min_time}", f"--benchmark_min_warmup_time={min_time}"]
        proc = run_program(cmd)
        if proc.returncode != 0:
            raise PeerError(f"bench_peers failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
        runs = [b for b in json.loads(proc.stdout)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
        if not runs:
            raise PeerError(f"bench_peers ran no benchmark matching {pattern}")
        errors = [b["error_message"] for b in runs if b.get("error_occurred")]
        if errors:
            raise PeerError(f"bench_peers: {errors[0]}")
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
        return statistics.median(b["real_time"] * scale[b.get("time_unit", "ns")] for b in runs)

    def gemm_results(self, quick):
        """bench_gemm's FLOPS per benchmark name (GFLOP/s): tformer, OpenBLAS, Eigen, fma_peak."""
        pattern = "^(fma_peak|gemm/1024x1024x1024)" if quick else "^(fma_peak|gemm/)"
        proc = run_program([self.gemm, f"--benchmark_filter={pattern}", "--benchmark_format=json"])
        if proc.returncode != 0:
            raise PeerError(f"bench_gemm failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
        out = {}
        for b in json.loads(proc.stdout)["benchmarks"]:
            if b.get("error_occurred"):
                out[b["name"]] = f"n/a ({b.get('error_message', 'error')})"
            elif "FLOPS" in b:
                out[re.sub(r"/real_time$", "", b["name"])] = b["FLOPS"] / 1e9
        return out


# ---- ONNX Runtime and PyTorch encoders ---------------------------------------------------------

def encoder_feeds(ids, lengths):
    mask = (np.arange(ids.shape[1])[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
    return {"input_ids": ids.astype(np.int64), "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}


class OrtEncoder:
    """ONNX Runtime CPU session: intra_op_num_threads = threads, inter_op 1, all graph
    optimisations, sequential execution."""

    def __init__(self, onnx_path):
        import onnxruntime as ort
        self.ort, self.path, self.sessions = ort, onnx_path, {}

    def session(self, threads):
        if threads not in self.sessions:
            o = self.ort.SessionOptions()
            o.intra_op_num_threads = threads
            o.inter_op_num_threads = 1
            o.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
            o.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sessions[threads] = self.ort.InferenceSession(self.path, o, providers=["CPUExecutionProvider"])
        return self.sessions[threads]

    def run(self, ids, lengths, threads=1):
        return self.session(threads).run(["last_hidden_state"], encoder_feeds(ids, lengths))[0]

    def time(self, ids, lengths, threads, budget_s):
        s, feeds = self.session(threads), encoder_feeds(ids, lengths)
        return timed_median(lambda: s.run(["last_hidden_state"], feeds), budget_s)

    def time_rows(self, ids, lengths, threads, budget_s):
        """The rows one by one, each unpadded (the cost a padding-free batch is held to)."""
        s = self.session(threads)
        feeds = [encoder_feeds(ids[i:i + 1, :n], lengths[i:i + 1]) for i, n in enumerate(lengths)]
        return timed_median(lambda: [s.run(["last_hidden_state"], f) for f in feeds], budget_s)


class TorchEncoder:
    """transformers' BertModel in PyTorch eager mode (its default attention), fp32, inference_mode."""

    def __init__(self, hf_dir):
        import torch
        import transformers as t
        self.torch = torch
        self.model = t.BertModel.from_pretrained(hf_dir, add_pooling_layer=False).eval()

    def _call(self, feeds):
        with self.torch.inference_mode():
            return self.model(**feeds).last_hidden_state

    def _feeds(self, ids, lengths):
        return {k: self.torch.from_numpy(v) for k, v in encoder_feeds(ids, lengths).items()}

    def run(self, ids, lengths, threads=1):
        self.torch.set_num_threads(threads)
        return self._call(self._feeds(ids, lengths)).numpy()

    def time(self, ids, lengths, threads, budget_s):
        self.torch.set_num_threads(threads)
        feeds = self._feeds(ids, lengths)
        return timed_median(lambda: self._call(feeds), budget_s)


# ---- llama.cpp ---------------------------------------------------------------------------------

class LlamaCpp:
    """llama-bench with its defaults (f16 KV cache, flash attention 'auto', weight repacking on),
    and tools/llama_cpp_reference for logits. On an Intel CPU with AMX, a native build of llama.cpp
    repacks quantized weights for its AMX kernels, which die with SIGILL in a virtual machine that
    does not grant the AMX tile state; when the default run fails it is retried once with
    --repack 0 (no extra buffer types: llama.cpp's plain AVX-512 kernels), and the notes say for
    which file."""

    def __init__(self, bin_dir, reference_bin=None):
        self.bench = os.path.join(bin_dir, "llama-bench")
        self.reference_bin = reference_bin
        self.notes = set()

    def _bench(self, args):
        base = [self.bench] + args + ["-o", "json"]
        proc = self._run(base)
        if proc.returncode != 0:
            failed = proc.returncode
            proc = self._run(base + ["--repack", "0"])
            if proc.returncode != 0:
                raise PeerError(f"llama-bench failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
            model = os.path.basename(args[args.index("-m") + 1]) if "-m" in args else "?"
            self.notes.add(f"llama-bench failed with its defaults on {model} (exit status {failed}) "
                           "and was rerun with --repack 0")
        rows = json.loads(proc.stdout)
        if not rows:
            raise PeerError("llama-bench returned no result")
        return statistics.median(rows[0]["samples_ts"])  # tokens per second

    @staticmethod
    def _run(cmd):
        """One llama-bench run; over 10 minutes (a busy machine can slow llama.cpp's polling
        workers to a crawl at 2 threads) is an error rather than a stalled comparison."""
        return run_program(cmd, timeout_s=600)

    def time(self, gguf, kind, threads, n_tokens, context, reps):
        """decode: ms per generated token, generating n_tokens after `context` tokens of depth;
        prefill: ms for a prompt of n_tokens."""
        if kind == "decode":
            ts = self._bench(["-m", gguf, "-t", str(threads), "-p", "0", "-n", str(n_tokens),
                              "-d", str(context), "-r", str(reps)])
            return 1e3 / ts
        ts = self._bench(["-m", gguf, "-t", str(threads), "-p", str(n_tokens), "-n", "0", "-r", str(reps)])
        return n_tokens * 1e3 / ts

    def logits(self, gguf, ids, tmp_dir):
        """llama.cpp's logits [T, vocab] at every prompt position (one thread, its default
        context: f16 KV cache, flash attention as it picks)."""
        if not self.reference_bin or not os.path.isfile(self.reference_bin):
            raise PeerError("llama_cpp_reference is not built")
        prompts, out = os.path.join(tmp_dir, "prompt.txt"), os.path.join(tmp_dir, "llcr.bin")
        with open(prompts, "w") as f:
            f.write(" ".join(str(int(i)) for i in ids) + "\n")
        proc = subprocess.run([self.reference_bin, gguf, prompts, "1", out], env=child_env(),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise PeerError(f"llama_cpp_reference failed ({proc.returncode}): {proc.stderr.strip()[-200:]}")
        raw = open(out, "rb").read()
        if raw[:4] != b"LLCR":
            raise PeerError("llama_cpp_reference wrote no LLCR file")
        _, vocab, new = np.frombuffer(raw, np.int32, 3, 4)
        n = int(np.frombuffer(raw, np.int32, 1, 16)[0])
        offset = 20 + 4 * n + 4 * int(new)
        return np.frombuffer(raw, np.float32, n * int(vocab), offset).reshape(n, int(vocab))


def hf_llama_logits(hf_dir, ids):
    """transformers' LlamaForCausalLM logits [T, vocab] (fp32, eager attention)."""
    import torch
    import transformers as t
    model = t.LlamaForCausalLM.from_pretrained(hf_dir, attn_implementation="eager").eval()
    with torch.inference_mode():
        return model(torch.from_numpy(np.asarray(ids, dtype=np.int64))[None]).logits[0].float().numpy()


# ---- CTranslate2 -------------------------------------------------------------------------------

class Ct2Translator:
    """ctranslate2.Translator(device='cpu', compute_type=..., intra_threads=threads,
    inter_threads=1); translate_batch of the 16 token lists with max_batch_size 16 and
    min_decoding_length = max_decoding_length = N (no end token before N; CTranslate2 counts the
    generated tokens only, without the start token)."""

    def __init__(self, model_dir, compute_type):
        import ctranslate2
        self.ct2, self.dir, self.compute_type, self.translators = ctranslate2, model_dir, compute_type, {}

    def translator(self, threads):
        if threads not in self.translators:
            self.translators[threads] = self.ct2.Translator(self.dir, device="cpu", compute_type=self.compute_type,
                                                            intra_threads=threads, inter_threads=1)
        return self.translators[threads]

    @staticmethod
    def sources(ids, lengths):
        return [[models.t5_token(int(x)) for x in ids[i, :n]] for i, n in enumerate(lengths)]

    def _translate(self, threads, sources, beams, n):
        return self.translator(threads).translate_batch(
            sources, beam_size=beams, max_batch_size=16, min_decoding_length=n, max_decoding_length=n)

    def run(self, ids, lengths, beams, n, threads=1):
        ids_of = {models.t5_token(i): i for i in range(3)}
        out = self._translate(threads, self.sources(ids, lengths), beams, n)
        return np.array([[ids_of.get(s) if s in ids_of else int(s[1:]) for s in r.hypotheses[0]] for r in out],
                        dtype=np.int32)

    def time(self, ids, lengths, beams, n, threads, budget_s):
        src = self.sources(ids, lengths)
        self.translator(threads)  # created before the clock starts
        return timed_median(lambda: self._translate(threads, src, beams, n), budget_s)


def hf_t5_generate(hf_dir, ids, lengths, beams, n):
    """transformers' generate: exactly n new tokens (min_new_tokens = max_new_tokens = n)."""
    import torch
    import transformers as t
    model = t.T5ForConditionalGeneration.from_pretrained(hf_dir).eval()
    mask = (np.arange(ids.shape[1])[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
    with torch.inference_mode():
        out = model.generate(input_ids=torch.from_numpy(ids.astype(np.int64)), attention_mask=torch.from_numpy(mask),
                             num_beams=beams, do_sample=False, min_new_tokens=n, max_new_tokens=n)
    return out[:, 1:].numpy().astype(np.int32)  # without the decoder start token


# ---- attention ---------------------------------------------------------------------------------

class TorchSdpa:
    """torch.nn.functional.scaled_dot_product_attention on [1, heads, seq, dim] (non-causal,
    default scale 1/sqrt(dim)); inputs and output in tformer's [1, seq, heads, dim] layout."""

    def __init__(self):
        import torch
        self.torch = torch
        self.inputs = {}

    def _qkv(self, seq):
        if seq not in self.inputs:
            self.inputs = {seq: [self.torch.from_numpy(x).transpose(1, 2) for x in models.attention_inputs(seq)]}
        return self.inputs[seq]

    def _call(self, q, k, v):
        with self.torch.inference_mode():
            return self.torch.nn.functional.scaled_dot_product_attention(q, k, v)

    def run(self, seq, threads=1):
        self.torch.set_num_threads(threads)
        return self._call(*self._qkv(seq)).transpose(1, 2).contiguous().numpy()

    def time(self, seq, threads, budget_s):
        self.torch.set_num_threads(threads)
        qkv = self._qkv(seq)
        return timed_median(lambda: self._call(*qkv), budget_s)
