#!/usr/bin/env python3
"""Trains the bundled date-normalization model (examples/data/dates) and writes its reference outputs.

Developer tool (torch, safetensors); tests and CI only read what it writes:
  examples/data/dates/model.safetensors  F16 weights: "embed.weight" + nn.Transformer's own state_dict names
  examples/data/dates/config.json        sizes, special ids, seeds, held-out accuracies
  examples/data/dates/vocab.json         tokens by id: <pad> <s> </s> <unk>, then one character each
  tests/data/dates_heldout.tsv           source \t greedy output \t beam-4 output \t target (200 held-out pairs)
The task is tools/dates_task.py; training pairs are drawn on the fly (seeded) and never stored.

The model (tformer rebuilds it from its own blocks):
  x = E[ids] * sqrt(d) + sinusoidal(pos)        pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(...)
  h = nn.Transformer(d, 4 heads, L + L layers, d_ff 4d, ReLU, pre-LN, final LayerNorms, eps 1e-5)
  logits = h @ E^T                              one embedding for source, target and output, no bias
The reference outputs come from the exported F16 weights reloaded into float32, i.e. the very bits
the C++ example loads. Decoding follows Hugging Face `generate` for encoder-decoders: see beam_search.

Runs deterministically from SEED on CPU (8.5 minutes wall with 2 threads on a 2-core machine):
    python3 tools/train_dates.py                        # full run, writes the files above
    python3 tools/train_dates.py --steps 20 --threads 1 --out /tmp/dates   # smoke test elsewhere
"""
import argparse
import json
import math
import os
import random
import sys
import time
import warnings

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dates_task  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# ---- fixed choices (the exported config records them) ------------------------------------------
SEED = 20240305          # torch init, dropout and the training-data stream
VALID_SEED = 11          # pairs watched during training
HELDOUT_SEED = 31337     # the held-out reference set (generate(HELDOUT_SIZE, HELDOUT_SEED))
HELDOUT_SIZE = 200
D_MODEL, HEADS, LAYERS = 128, 4, 3
DROPOUT = 0.1
TRAIN_STEPS = 3000
BATCH = 96
POOL_BATCHES = 32        # batches drawn at once, then grouped by source length (less padding)
PEAK_LR, WARMUP, MIN_LR = 1.5e-3, 200, 2e-5
WEIGHT_DECAY = 0.01
LABEL_SMOOTHING = 0.05
NUM_BEAMS, LENGTH_PENALTY = 4, 1.0

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
VOCAB = SPECIALS + dates_task.CHARSET
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
MAX_SOURCE_LENGTH = dates_task.MAX_SOURCE_LENGTH
MAX_TARGET_LENGTH = dates_task.TARGET_LENGTH + 1  # the characters and </s>; also max_new_tokens


def encode_text(text):
    return [TOKEN_ID.get(c, UNK) for c in text]


def decode_ids(ids):
    """Characters up to (not including) the first </s>; specials dropped."""
    out = []
    for i in ids:
        if i == EOS:
            break
        if i >= len(SPECIALS):
            out.append(VOCAB[i])
    return "".join(out)


def sinusoidal(length, d):
    """pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(p / 10000^(2i/d)); [length, d]."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)[None, :]
    pe = torch.zeros(length, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe.float()


class DatesModel(torch.nn.Module):
    def __init__(self, vocab, d=None, heads=None, layers=None, d_ff=None, dropout=DROPOUT):
        super().__init__()
        d, heads, layers = d or D_MODEL, heads or HEADS, layers or LAYERS
        d_ff = d_ff or 4 * d
        self.d = d
        self.embed = torch.nn.Embedding(vocab, d)
        with warnings.catch_warnings():  # "enable_nested_tensor is True, but ... norm_first was True"
            warnings.simplefilter("ignore")
            self.transformer = torch.nn.Transformer(
                d_model=d, nhead=heads, num_encoder_layers=layers, num_decoder_layers=layers, dim_feedforward=d_ff,
                dropout=dropout, activation="relu", batch_first=True, norm_first=True, layer_norm_eps=1e-5)
        torch.nn.init.normal_(self.embed.weight, std=d ** -0.5)  # unit-variance inputs after the sqrt(d) scale
        self.register_buffer("pe", sinusoidal(max(MAX_SOURCE_LENGTH, MAX_TARGET_LENGTH) + 1, d), persistent=False)
        self.drop = torch.nn.Dropout(dropout)

    def embed_tokens(self, ids):
        # ids: [batch, seq] -> [batch, seq, d]; positions start at 0
        return self.drop(self.embed(ids) * math.sqrt(self.d) + self.pe[: ids.shape[1]])

    def encode(self, src, src_pad):
        # src: [batch, S], src_pad: [batch, S] True = padding -> memory [batch, S, d] (after encoder.norm)
        return self.transformer.encoder(self.embed_tokens(src), src_key_padding_mask=src_pad)

    def decode(self, tgt, memory, src_pad, tgt_pad=None):
        # tgt: [batch, T] starting with <s> -> logits [batch, T, vocab]
        T = tgt.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=tgt.device), 1)  # True = masked
        h = self.transformer.decoder(self.embed_tokens(tgt), memory, tgt_mask=causal, tgt_is_causal=True,
                                     tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        return h @ self.embed.weight.t()

    def forward(self, src, src_pad, tgt, tgt_pad):
        return self.decode(tgt, self.encode(src, src_pad), src_pad, tgt_pad)


# ---- batches --------------------------------------------------------------------------------------
def pad_batch(seqs):
    """list of id lists -> ids [batch, max_len] (PAD-filled), pad mask [batch, max_len] True = padding."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, ids == PAD


def make_batch(pairs):
    src, src_pad = pad_batch([encode_text(s) for s, _ in pairs])
    tgt_in, tgt_pad = pad_batch([[BOS] + encode_text(t) for _, t in pairs])
    tgt_out, _ = pad_batch([encode_text(t) + [EOS] for _, t in pairs])
    return src, src_pad, tgt_in, tgt_pad, tgt_out


def training_batches(seed):
    """Endless stream of batches: POOL_BATCHES * BATCH fresh pairs, grouped by source length, shuffled."""
    rng = random.Random(seed)
    while True:
        pool = [dates_task.sample(rng) for _ in range(POOL_BATCHES * BATCH)]
        pool.sort(key=lambda p: len(p[0]))
        groups = [pool[i: i + BATCH] for i in range(0, len(pool), BATCH)]
        rng.shuffle(groups)
        for g in groups:
            yield make_batch(g)


def learning_rate(step, total):
    if step < WARMUP:
        return PEAK_LR * (step + 1) / WARMUP
    t = (step - WARMUP) / max(1, total - WARMUP)
    return MIN_LR + 0.5 * (PEAK_LR - MIN_LR) * (1 + math.cos(math.pi * t))


# ---- decoding -------------------------------------------------------------------------------------
@torch.no_grad()
def greedy(model, sources, max_new_tokens=MAX_TARGET_LENGTH):
    """Batched greedy decoding; argmax (first index on ties) until </s> or max_new_tokens."""
    src, src_pad = pad_batch([encode_text(s) for s in sources])
    memory = model.encode(src, src_pad)
    tgt = torch.full((len(sources), 1), BOS, dtype=torch.long)
    for _ in range(max_new_tokens):
        logits = model.decode(tgt, memory, src_pad)[:, -1]
        tgt = torch.cat([tgt, logits.argmax(-1, keepdim=True)], 1)
        if (tgt == EOS).any(1).all():
            break
    return [decode_ids(row[1:].tolist()) for row in tgt]


@torch.no_grad()
def beam_search(model, source, num_beams=NUM_BEAMS, length_penalty=LENGTH_PENALTY,
                max_new_tokens=MAX_TARGET_LENGTH):
    """Beam search for one source, as Hugging Face `generate(num_beams=4, length_penalty=1.0,
    early_stopping=False, max_new_tokens=...)` does it for an encoder-decoder (checked token for token
    against transformers 5.23 `_beam_search`, including hypotheses cut at max length):

      running beams start as [<s>] with scores [0, -1e9, -1e9, ...] (only beam 0 expands at step 1).
      each step (g = tokens generated once this step's token is appended, 1..max_new_tokens):
        cand[b, v] = score[b] + log_softmax(logits[b])[v]            (float32)
        take the top 2*num_beams candidates over all (b, v), best first
        a candidate "finishes" if v == </s> or g == max_new_tokens;
          of the finishing candidates only those ranked within the first num_beams may enter the
          finished pool, with score cand / g**length_penalty (g counts </s>, not <s>);
          the pool keeps the num_beams best finished hypotheses
        the next running beams are the num_beams best non-finishing candidates (scores unnormalized)
        stop when all 2*num_beams candidates finish (max length), or when the pool is full and
          best_running_score / g**length_penalty <= worst pooled score (no improvement possible)
      result: the best pooled hypothesis (its </s> dropped).
    Ties in the rankings go to the candidate listed first (lower beam*vocab + token; older pool entries
    before new ones); with float32 scores they do not occur on the held-out set.
    """
    src, src_pad = pad_batch([encode_text(source)])
    memory = model.encode(src, src_pad)
    memory, src_pad = memory.expand(num_beams, -1, -1), src_pad.expand(num_beams, -1)
    vocab = model.embed.weight.shape[0]
    running = [[BOS] for _ in range(num_beams)]
    scores = torch.full((num_beams,), -1e9, dtype=torch.float32)
    scores[0] = 0.0
    pool = []  # (normalized score, generated ids including </s>)
    for g in range(1, max_new_tokens + 1):
        logits = model.decode(torch.tensor(running), memory, src_pad)[:, -1].float()
        cand = (F.log_softmax(logits, -1) + scores[:, None]).reshape(-1)  # [num_beams * vocab], float32
        values = cand.tolist()
        # stable descending order: ties keep the lower flat index first
        order = sorted(range(len(values)), key=lambda i: -values[i])[: 2 * num_beams]
        next_running, next_scores, new_finished = [], [], []
        for rank, i in enumerate(order):
            b, v = divmod(i, vocab)
            seq = running[b] + [v]
            if v == EOS or g == max_new_tokens:
                if rank < num_beams:
                    norm = (cand[i] / (g ** length_penalty)).item()  # float32 division, as HF
                    new_finished.append((norm, seq[1:]))
            elif len(next_running) < num_beams:
                next_running.append(seq)
                next_scores.append(values[i])
        pool = sorted(pool + new_finished, key=lambda h: -h[0])[:num_beams]
        if g == max_new_tokens:
            break
        running, scores = next_running, torch.tensor(next_scores, dtype=torch.float32)
        if len(pool) == num_beams and (scores[0] / (g ** length_penalty)).item() <= pool[-1][0]:
            break
    return decode_ids(pool[0][1])


# ---- training -------------------------------------------------------------------------------------
def exact_match(outputs, targets):
    return sum(o == t for o, t in zip(outputs, targets)) / len(targets)


def train(model, steps, log_every, eval_every):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed")]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or n.startswith("embed")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=PEAK_LR, betas=(0.9, 0.98), eps=1e-9)
    valid = dates_task.generate(500, VALID_SEED)
    batches = training_batches(SEED)
    start = time.time()
    loss_sum, tokens = 0.0, 0
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, steps)
        src, src_pad, tgt_in, tgt_pad, tgt_out = next(batches)
        model.train()
        logits = model(src, src_pad, tgt_in, tgt_pad)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD,
                               label_smoothing=LABEL_SMOOTHING)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_sum += loss.item()
        tokens += 1
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"step {step + 1:5d}/{steps}  loss {loss_sum / tokens:.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                  f"{time.time() - start:6.1f} s", flush=True)
            loss_sum, tokens = 0.0, 0
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            model.eval()
            acc = exact_match(greedy(model, [s for s, _ in valid]), [t for _, t in valid])
            print(f"          valid greedy exact match {acc:.4f} ({len(valid)} pairs)", flush=True)
    return time.time() - start


def export(model, out_root, steps, train_seconds):
    """Writes model.safetensors (F16), config.json, vocab.json; returns the config dict."""
    out = os.path.join(out_root, "examples", "data", "dates")
    os.makedirs(out, exist_ok=True)
    tensors = {"embed.weight": model.embed.weight}
    tensors.update(model.transformer.state_dict())
    tensors = {k: v.detach().to(torch.float16).contiguous().clone() for k, v in tensors.items()}
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(VOCAB, f, ensure_ascii=False)
        f.write("\n")
    config = {
        "d_model": D_MODEL, "heads": HEADS, "layers": LAYERS, "d_ff": 4 * D_MODEL, "vocab_size": len(VOCAB),
        "max_source_length": MAX_SOURCE_LENGTH, "max_target_length": MAX_TARGET_LENGTH,
        "bos_id": BOS, "eos_id": EOS, "pad_id": PAD, "unk_id": UNK, "norm_eps": 1e-5,
        "activation": "relu", "norm_first": True, "embed_scale": math.sqrt(D_MODEL), "tie_embeddings": True,
        "positions": "sinusoidal", "dtype": "F16",
        "num_beams": NUM_BEAMS, "length_penalty": LENGTH_PENALTY,
        "seed": SEED, "train_steps": steps, "batch_size": BATCH, "train_seconds": round(train_seconds, 1),
        "heldout_seed": HELDOUT_SEED, "heldout_size": HELDOUT_SIZE,
        "torch": torch.__version__,
    }
    return config


def load_exported(out_root):
    """A fresh float32 model holding exactly the exported F16 weights."""
    state = load_file(os.path.join(out_root, "examples", "data", "dates", "model.safetensors"))
    model = DatesModel(len(VOCAB)).eval()
    model.embed.weight.data.copy_(state.pop("embed.weight").float())
    model.transformer.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model


def reference(model, out_root, config):
    """Greedy and beam-4 outputs on the held-out set; writes the TSV and the accuracies."""
    heldout = dates_task.generate(HELDOUT_SIZE, HELDOUT_SEED)
    rows = []
    for src, tgt in heldout:  # one source at a time, no padding: what the C++ example does
        rows.append((src, greedy(model, [src])[0], beam_search(model, src), tgt))
    config["heldout_exact_match_greedy"] = exact_match([r[1] for r in rows], [r[3] for r in rows])
    config["heldout_exact_match_beam4"] = exact_match([r[2] for r in rows], [r[3] for r in rows])
    path = os.path.join(out_root, "tests", "data", "dates_heldout.tsv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            assert all("\t" not in c and "\n" not in c for c in r)
            f.write("\t".join(r) + "\n")
    misses = [r for r in rows if r[1] != r[3] or r[2] != r[3]]
    for r in misses[:20]:
        print(f"  miss: {r[0]!r} greedy {r[1]!r} beam4 {r[2]!r} target {r[3]!r}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=TRAIN_STEPS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=ROOT, help="root under which examples/data/dates and tests/data are written")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=500)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    torch.backends.mha.set_fastpath_enabled(False)  # the plain math path for eval, as in training
    wall = time.time()
    model = DatesModel(len(VOCAB))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"vocab {len(VOCAB)}, d_model {D_MODEL}, heads {HEADS}, layers {LAYERS}+{LAYERS}, d_ff {4 * D_MODEL}, "
          f"{n_params} parameters; {args.steps} steps of {BATCH}, {args.threads} threads", flush=True)
    train_seconds = train(model, args.steps, args.log_every, args.eval_every)

    config = export(model, args.out, args.steps, train_seconds)
    ref = load_exported(args.out)
    reference(ref, args.out, config)
    with open(os.path.join(args.out, "examples", "data", "dates", "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    size = os.path.getsize(os.path.join(args.out, "examples", "data", "dates", "model.safetensors"))
    print(f"held-out exact match ({HELDOUT_SIZE} pairs, seed {HELDOUT_SEED}): "
          f"greedy {config['heldout_exact_match_greedy']:.4f}, beam4 {config['heldout_exact_match_beam4']:.4f}")
    print(f"model.safetensors {size} bytes; training {train_seconds:.1f} s, total {time.time() - wall:.1f} s")


if __name__ == "__main__":
    main()
