"""The peer of bench/bench_tokenize.cpp: Hugging Face tokenizers (Rust) on the same corpus and
tokenizer files, one thread (RAYON_NUM_THREADS=1), encode_batch over all lines (no per-line
Python call), best of several runs; then decode_batch of the ids. Prints tokens/s per tokenizer.

    RAYON_NUM_THREADS=1 python tools/bench_tokenizers_peer.py
"""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
from tokenizers import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "text")
NAMES = ["wordpiece", "bpe_gpt2", "bpe_llama3", "bpe_qwen2", "spm_bpe", "unigram"]


def best_of(fn, runs=5):
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    with open(os.path.join(DATA, "corpus.txt"), "rb") as f:
        # the rule of the parity tests: invalid UTF-8 bytes become U+FFFD
        lines = [l.decode("utf-8", "replace") for l in f.read().split(b"\n")]
    if lines and lines[-1] == "":
        lines.pop()
    print(f"tokenizers {__import__('tokenizers').__version__}, RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}, "
          f"{len(lines)} lines")
    for name in NAMES:
        tok = Tokenizer.from_file(os.path.join(DATA, name + ".json"))
        encs = tok.encode_batch(lines)
        tokens = sum(len(e.ids) for e in encs)
        t_enc = best_of(lambda: tok.encode_batch(lines))
        ids = [e.ids for e in encs]
        t_dec = best_of(lambda: tok.decode_batch(ids))
        print(f"{name:12s} encode {t_enc * 1e3:7.1f} ms  {tokens / t_enc / 1e6:6.2f} M tokens/s   "
              f"decode {t_dec * 1e3:7.1f} ms  {tokens / t_dec / 1e6:6.2f} M tokens/s   ({tokens} tokens)")


if __name__ == "__main__":
    sys.exit(main())
