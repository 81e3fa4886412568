#!/usr/bin/env python3
"""Writes the Whisper fixtures (tests/data/) that the CTranslate2 reader, log-mel, Whisper and
real-model tests read; and reports the word error rate of a transcription.

Developer machine only (torch, transformers, ctranslate2, numpy, espeak-ng, libsamplerate);
tests and CI never run Python.

    /work/venv/bin/python tools/make_whisper_fixtures.py tiny       # random tiny Whisper (+ tiny_hf)
    /work/venv/bin/python tools/make_whisper_fixtures.py tiny_hf    # its transformers directory only
    /work/venv/bin/python tools/make_whisper_fixtures.py log_mel    # front end on a synthetic signal
    /work/venv/bin/python tools/make_whisper_fixtures.py real MODEL_DIR   # tiny.en on espeak-ng speech
    /work/venv/bin/python tools/make_whisper_fixtures.py wer MODEL_DIR IDS_FILE   # WER of dumped ids

tiny: a WhisperForConditionalGeneration with random weights and tiny sizes, converted by
  CTranslate2's own converter (ctranslate2.converters.transformers.WhisperLoader) and written by
  its own writer (ModelSpec._serialize) as whisper_tiny.ct2.bin (float16, as the real model) and
  whisper_tiny_int8.ct2.bin (int8 weights with per-row float scales); whisper_tiny.case.safetensors
  holds random features, decoder ids and the logits transformers computes on the weights read
  back from each file (fp16 -> float32; int8 -> q / scale), and both configs as JSON.
tiny_hf: the same tiny model as a transformers directory, tests/data/hf_dirs/whisper_tiny/: the
  weights of whisper_tiny.ct2.bin (float16, so the file's values exactly: whisper_tiny.logits of
  the case file apply) written by save_pretrained (config.json, generation_config.json with
  no_timestamps_token_id, model.safetensors), and a tokenizer.json of 100 tokens (byte-level BPE,
  the specials Whisper's loader looks up) for tformer-transcribe. Checks that transformers reads the
  directory back to the case file's logits, and prints the greedy tokens transformers gives for
  tests/data/audio/espeak_16k.wav cut into windows of 2 max_source_positions frames (the test of
  tformer-transcribe in examples/CMakeLists.txt).
log_mel: whisper_log_mel.case.safetensors: one second of a synthetic signal and the features of
  transformers' WhisperFeatureExtractor(chunk_length=1) (numpy path, float64 STFT).
real: espeak-ng speech (22050 Hz) saved as tests/data/audio/*.wav: one resampled to 16 kHz with
  libsamplerate's SRC_SINC_BEST_QUALITY (through ctypes: the same library and converter as
  tformer's audio/wav.hpp) and one kept at 22050 Hz. For each, at 16 kHz (the 22050 Hz one
  resampled the same way): the log-mel features of WhisperFeatureExtractor (the frames holding
  speech plus 8, and the whole input's max), the greedy tokens of a manual loop (forced prefix
  <|startoftranscript|> <|notimestamps|>, suppress_ids, suppress_ids_begin at the first free
  step, argmax) on transformers with the weights of model.bin (converted here, fp16 -> float32),
  the top 64 logits of every step (values and ids) plus the sum and the sum of squares of each
  step's logits, the tokens of transformers' generate and of ctranslate2.models.Whisper.generate
  (beam 1). Everything goes to whisper_tiny_en.case.safetensors (tests/real/real_whisper.cpp).
"""
import ctypes
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data")
AUDIO = os.path.join(OUT, "audio")

# espeak-ng utterances: (file stem, kept sample rate, spoken words)
UTTERANCES = [
    ("espeak_16k", 16000, "The quick brown fox jumps over the lazy dog."),
    ("espeak_22k", 22050, "Please call Stella. Ask her to bring these things."),
]


# ---------------------------------------------------------------------------------------------
# CTranslate2 model.bin (binary version 6), read as CTranslate2's C++ loader does

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path):
    """{name: numpy array}, aliases {alias: name}, spec name, revision."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("H")
        s = data[pos:pos + n - 1].decode()
        pos += n
        return s

    version = take("I")
    assert version == 6, version
    spec, revision, n = string(), take("I"), take("I")
    out = {}
    for _ in range(n):
        name = string()
        rank = take("B")
        dims = [take("I") for _ in range(rank)]
        dt, nbytes = take("B"), take("I")
        out[name] = np.frombuffer(data[pos:pos + nbytes], dtype=DTYPES[dt]).reshape(dims).copy()
        pos += nbytes
    aliases = {}
    for _ in range(take("I")):
        a = string()
        aliases[a] = string()
    return out, aliases, spec, revision


def dequantized(v):
    """Float32 weights: int8 ones divided by their per-row scale."""
    out = {}
    for name, a in v.items():
        if name.endswith("_scale"):
            continue
        if a.dtype == np.int8 and name + "_scale" in v and a.ndim >= 2:
            s = v[name + "_scale"].astype(np.float32)
            out[name] = a.astype(np.float32) / s.reshape((-1,) + (1,) * (a.ndim - 1))
        elif a.dtype in (np.float16, np.float32):
            out[name] = a.astype(np.float32)
    return out


def ct2_to_hf(v, enc_layers, dec_layers):
    """A WhisperForConditionalGeneration state_dict from CTranslate2's variables (float32)."""
    import torch

    d = v["decoder/embeddings/weight"].shape[1]
    sd = {}

    def put(hf, a):
        sd[hf] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def lin(hf, ct, bias=True):
        put(hf + ".weight", v[ct + "/weight"])
        if bias:
            put(hf + ".bias", v[ct + "/bias"])

    def norm(hf, ct):
        put(hf + ".weight", v[ct + "/gamma"])
        put(hf + ".bias", v[ct + "/beta"])

    def self_attn(hf, ct):
        w, b = v[ct + "/linear_0/weight"], v[ct + "/linear_0/bias"]
        assert np.all(b[d:2 * d] == 0), "k bias must be zero"
        put(hf + ".q_proj.weight", w[:d]), put(hf + ".q_proj.bias", b[:d])
        put(hf + ".k_proj.weight", w[d:2 * d])
        put(hf + ".v_proj.weight", w[2 * d:]), put(hf + ".v_proj.bias", b[2 * d:])
        lin(hf + ".out_proj", ct + "/linear_1")

    def ffn(hf, ct):
        lin(hf + ".fc1", ct + "/linear_0")
        lin(hf + ".fc2", ct + "/linear_1")
        norm(hf + ".final_layer_norm", ct + "/layer_norm")

    for side in ("encoder", "decoder"):
        put(f"model.{side}.embed_positions.weight", v[f"{side}/position_encodings/encodings"])
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
    for c in ("conv1", "conv2"):
        lin(f"model.encoder.{c}", f"encoder/{c}")
    for i in range(enc_layers):
        hf, ct = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
        self_attn(hf + ".self_attn", ct + "/self_attention")
        norm(hf + ".self_attn_layer_norm", ct + "/self_attention/layer_norm")
        ffn(hf, ct + "/ffn")
    put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
    put("proj_out.weight", v["decoder/embeddings/weight"])
    for i in range(dec_layers):
        hf, ct = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        self_attn(hf + ".self_attn", ct + "/self_attention")
        norm(hf + ".self_attn_layer_norm", ct + "/self_attention/layer_norm")
        a = ct + "/attention"
        lin(hf + ".encoder_attn.q_proj", a + "/linear_0")
        w, b = v[a + "/linear_1/weight"], v[a + "/linear_1/bias"]
        assert np.all(b[:d] == 0), "cross k bias must be zero"
        put(hf + ".encoder_attn.k_proj.weight", w[:d])
        put(hf + ".encoder_attn.v_proj.weight", w[d:]), put(hf + ".encoder_attn.v_proj.bias", b[d:])
        lin(hf + ".encoder_attn.out_proj", a + "/linear_2")
        norm(hf + ".encoder_attn_layer_norm", a + "/layer_norm")
        ffn(hf, ct + "/ffn")
    return sd


def hf_model(config, state):
    from transformers import WhisperForConditionalGeneration

    m = WhisperForConditionalGeneration(config).eval()
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert not [k for k in missing if k != "proj_out.weight"], missing
    m.proj_out.weight = m.model.decoder.embed_tokens.weight
    return m


def save_safetensors(path, tensors, metadata):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(a) for k, a in tensors.items()}, path, metadata=metadata)
    os.chmod(path, 0o644)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


# ---------------------------------------------------------------------------------------------
# tiny random Whisper

def tiny_config():
    from transformers import WhisperConfig

    return WhisperConfig(vocab_size=100, num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=2,
                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         max_source_positions=12, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2, decoder_start_token_id=3, suppress_tokens=[5, 7], begin_suppress_tokens=[2, 9])


def make_tiny():
    import torch
    from transformers import WhisperForConditionalGeneration
    from ctranslate2.converters.transformers import WhisperLoader

    torch.manual_seed(0)
    cfg = tiny_config()
    model = WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # biases and norms away from their init values, so that the test sees them
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
        for lin in (m for n, m in model.named_modules() if n.endswith("k_proj")):
            assert lin.bias is None
    files = {}
    for name, quant in (("whisper_tiny", "float16"), ("whisper_tiny_int8", "int8_float32")):
        spec_q = WhisperLoader().get_model_spec(model)
        spec_q.register_vocabulary([f"t{i}" for i in range(cfg.vocab_size)])
        spec_q.validate()
        spec_q.optimize(quantization=quant)
        path = os.path.join(OUT, f"{name}.ct2.bin")
        spec_q._serialize(path)
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
        files[name] = path

    g = torch.Generator().manual_seed(1)
    features = torch.randn(2, 80, 24, generator=g)
    ids = torch.tensor([[3, 10, 11, 12, 13, 14], [3, 20, 21, 22, 23, 24]])
    case = {"features": features.numpy(), "ids": ids.numpy().astype(np.int32)}
    for name, path in files.items():
        v, _, _, _ = read_ct2(path)
        m = hf_model(cfg, ct2_to_hf(dequantized(v), 2, 2))
        with torch.no_grad():
            out = m(input_features=features, decoder_input_ids=ids)
            enc = m.model.encoder(features).last_hidden_state
        case[f"{name}.logits"] = out.logits.numpy()
        case[f"{name}.encoded"] = enc.numpy()
    ct2_config = {"suppress_ids": [5, 7], "suppress_ids_begin": [2, 9], "lang_ids": [], "alignment_heads": [[1, 0]]}
    save_safetensors(os.path.join(OUT, "whisper_tiny.case.safetensors"), case,
                     {"config": cfg.to_json_string(), "ct2_config": json.dumps(ct2_config)})
    make_tiny_hf()


# The tiny model's tokens: specials first (the ids of tiny_config), then 93 byte-level BPE pieces
# (no merges: the tokenizer only decodes here) that decode to lower-case words.
TINY_SPECIALS = ["<|pad|>", "<|bos|>", "<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|transcribe|>",
                 "<|translate|>"]
TINY_PIECES = ([chr(c) for c in range(ord("a"), ord("z") + 1)] + ["\u0120" + chr(c) for c in range(ord("a"), ord("z") + 1)] +
               "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro "
               "ic ne ea ra".split())
TINY_WINDOW_MAX_NEW = 4  # tformer-transcribe --max-new-tokens in the CLI test


def tiny_tokenizer_json():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(TINY_SPECIALS + TINY_PIECES)}
    assert len(vocab) == 100, len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in TINY_SPECIALS])
    for t in TINY_SPECIALS:
        assert tok.token_to_id(t) == vocab[t], t
    return tok.to_str(pretty=True)


def make_tiny_hf():
    """tests/data/hf_dirs/whisper_tiny/ from whisper_tiny.ct2.bin (see the module comment)."""
    import shutil

    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    cfg = tiny_config()
    v, _, _, _ = read_ct2(os.path.join(OUT, "whisper_tiny.ct2.bin"))
    model = hf_model(cfg, ct2_to_hf(dequantized(v), 2, 2)).half()
    special = {t: i for i, t in enumerate(TINY_SPECIALS)}
    model.generation_config.no_timestamps_token_id = special["<|notimestamps|>"]
    model.generation_config.task_to_id = {"transcribe": special["<|transcribe|>"], "translate": special["<|translate|>"]}
    path = os.path.join(OUT, "hf_dirs", "whisper_tiny")
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path)
    with open(os.path.join(path, "tokenizer.json"), "w") as f:
        f.write(tiny_tokenizer_json())
    for f in os.listdir(path):
        os.chmod(os.path.join(path, f), 0o644)
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"wrote {os.path.relpath(path)}: {size} bytes, {sorted(os.listdir(path))}")

    # read back by transformers: the case file's logits (computed on the same float32 values)
    from safetensors.numpy import load_file

    case = load_file(os.path.join(OUT, "whisper_tiny.case.safetensors"))
    back = WhisperForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = back(input_features=torch.from_numpy(case["features"]),
                      decoder_input_ids=torch.from_numpy(case["ids"]).long()).logits.numpy()
    err = float(np.abs(logits - case["whisper_tiny.logits"]).max())
    print(f"transformers on {os.path.relpath(path)} vs whisper_tiny.logits: max abs diff {err:.3g}")
    assert err < 1e-5, err

    # greedy tokens of espeak_16k.wav in windows of 2 max_source_positions frames, as tformer-transcribe
    fe = WhisperFeatureExtractor()
    x, r = read_wav(os.path.join(AUDIO, "espeak_16k.wav"))
    x = resample(x, r)
    window = 2 * cfg.max_source_positions * fe.hop_length
    prefix = [cfg.decoder_start_token_id, special["<|notimestamps|>"]]
    max_new = min(TINY_WINDOW_MAX_NEW, cfg.max_target_positions - len(prefix))
    tokens, margin = [], np.inf
    for b in range(0, max(1, len(x)), window):
        feats = np_features(fe, padded(x[b:b + window], window))  # [80, 24]
        ids = list(prefix)
        with torch.no_grad():
            enc = back.model.encoder(torch.from_numpy(feats)[None]).last_hidden_state
            while len(ids) - len(prefix) < max_new:
                logits = back(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([ids])).logits[0, -1].numpy()
                logits = logits.astype(np.float64)
                logits[cfg.suppress_tokens] = -np.inf
                if len(ids) == len(prefix):
                    logits[cfg.begin_suppress_tokens] = -np.inf
                top2 = np.sort(logits)[-2:]
                margin = min(margin, top2[1] - top2[0])
                ids.append(int(np.argmax(logits)))
                if ids[-1] == cfg.eos_token_id:
                    break
        tokens += [i for i in ids[len(prefix):] if i != cfg.eos_token_id]
    print(f"greedy tokens of espeak_16k.wav ({len(x)} samples, windows of {window}, at most {max_new} each; "
          f"smallest top-2 margin {margin:.3g}): {','.join(map(str, tokens))}")


# ---------------------------------------------------------------------------------------------
# log-mel front end

def np_features(extractor, audio):
    """WhisperFeatureExtractor's numpy path (float64 STFT): [80, frames]."""
    out = extractor._np_extract_fbank_features(np.asarray(audio, np.float32)[None, :], "cpu")
    return out[0].astype(np.float32)


def padded(audio, n):
    x = np.zeros(n, np.float32)
    x[:min(n, len(audio))] = audio[:n]
    return x


def make_log_mel():
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(chunk_length=1)
    t = np.arange(16000) / 16000.0
    rng = np.random.default_rng(0)
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t * t) +
             0.05 * rng.standard_normal(16000)).astype(np.float32)
    audio[12000:] = 0  # a silent tail: the max - 8 clamp
    feats = fe(audio, sampling_rate=16000, return_tensors="np").input_features[0]
    ref = np_features(fe, padded(audio, fe.n_samples))
    assert np.abs(feats - ref).max() < 1e-5, np.abs(feats - ref).max()
    save_safetensors(os.path.join(OUT, "whisper_log_mel.case.safetensors"),
                     {"audio": audio, "features": ref},
                     {"config": json.dumps({"n_fft": fe.n_fft, "hop_length": fe.hop_length, "n_samples": fe.n_samples,
                                            "sampling_rate": 16000, "feature_size": fe.feature_size})})


# ---------------------------------------------------------------------------------------------
# audio: espeak-ng, libsamplerate (ctypes), WAV

class SRC_DATA(ctypes.Structure):
    _fields_ = [("data_in", ctypes.POINTER(ctypes.c_float)), ("data_out", ctypes.POINTER(ctypes.c_float)),
                ("input_frames", ctypes.c_long), ("output_frames", ctypes.c_long),
                ("input_frames_used", ctypes.c_long), ("output_frames_gen", ctypes.c_long),
                ("end_of_input", ctypes.c_int), ("src_ratio", ctypes.c_double)]


def resample(x, rate, target=16000):
    """libsamplerate's src_simple with SRC_SINC_BEST_QUALITY (0), as audio/wav.hpp calls it."""
    if rate == target:
        return np.asarray(x, np.float32)
    lib = ctypes.CDLL("libsamplerate.so.0")
    x = np.ascontiguousarray(x, np.float32)
    ratio = target / rate
    n_out = int(np.ceil(len(x) * ratio)) + 16
    y = np.zeros(n_out, np.float32)
    d = SRC_DATA(x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), y.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                 len(x), n_out, 0, 0, 0, ratio)
    err = lib.src_simple(ctypes.byref(d), 0, 1)
    assert err == 0, err
    return y[:d.output_frames_gen].copy()


def read_wav(path):
    """Samples as float (int16 / 32768, libsndfile's normalisation), sample rate."""
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    return x, rate


def write_wav(path, x, rate):
    q = np.clip(np.round(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(q.tobytes())
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


def make_audio():
    os.makedirs(AUDIO, exist_ok=True)
    for stem, rate, text in UTTERANCES:
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "raw.wav")
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, text], check=True)
            x, r = read_wav(raw)
        assert r == 22050, r
        write_wav(os.path.join(AUDIO, stem + ".wav"), resample(x, r, rate) if rate != r else x, rate)


# ---------------------------------------------------------------------------------------------
# tiny.en on espeak-ng speech

SOT, NO_TIMESTAMPS, EOT = 50257, 50362, 50256
TOPK = 64


def whisper_config(model_dir, v):
    from transformers import WhisperConfig

    d = v["decoder/embeddings/weight"].shape[1]
    enc = len({k.split("/")[1] for k in v if re.match(r"encoder/layer_[0-9]+/", k)})
    dec = len({k.split("/")[1] for k in v if re.match(r"decoder/layer_[0-9]+/", k)})
    heads = int(v["encoder/num_heads"])
    ct2 = json.load(open(os.path.join(model_dir, "config.json")))
    cfg = WhisperConfig(vocab_size=v["decoder/embeddings/weight"].shape[0], num_mel_bins=v["encoder/conv1/weight"].shape[1],
                        d_model=d, encoder_layers=enc, decoder_layers=dec, encoder_attention_heads=heads,
                        decoder_attention_heads=int(v["decoder/num_heads"]),
                        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
                        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
                        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
                        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
                        pad_token_id=EOT, bos_token_id=EOT, eos_token_id=EOT, decoder_start_token_id=SOT,
                        suppress_tokens=ct2["suppress_ids"], begin_suppress_tokens=ct2["suppress_ids_begin"])
    return cfg, ct2, enc, dec


def greedy(model, feats, ct2, max_steps=100):
    """Forced prefix, then argmax with suppress_ids (and suppress_ids_begin at the first step)."""
    import torch

    ids = [SOT, NO_TIMESTAMPS]
    steps = []
    with torch.no_grad():
        enc = model.model.encoder(torch.from_numpy(feats)[None]).last_hidden_state
        while len(steps) < max_steps:
            logits = model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([ids])).logits[0, -1].numpy().astype(np.float64)
            steps.append(logits.astype(np.float32))
            masked = logits.copy()
            masked[ct2["suppress_ids"]] = -np.inf
            if len(ids) == 2:
                masked[ct2["suppress_ids_begin"]] = -np.inf
            nxt = int(np.argmax(masked))
            ids.append(nxt)
            if nxt == EOT:
                break
    return ids, np.stack(steps)


def hf_generate(model, feats, ct2):
    import torch
    from transformers.generation.utils import GenerationMixin

    with torch.no_grad():
        out = GenerationMixin.generate(model, input_features=torch.from_numpy(feats)[None],
                                       decoder_input_ids=torch.tensor([[SOT, NO_TIMESTAMPS]]), do_sample=False,
                                       num_beams=1, max_new_tokens=100, eos_token_id=EOT, pad_token_id=EOT,
                                       suppress_tokens=ct2["suppress_ids"], begin_suppress_tokens=ct2["suppress_ids_begin"])
    return [int(t) for t in out[0]]


def ct2_generate(model_dir, feats):
    import ctranslate2

    m = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32")
    r = m.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None])), [[SOT, NO_TIMESTAMPS]],
                   beam_size=1, max_length=448, suppress_blank=True, suppress_tokens=[-1])
    return [SOT, NO_TIMESTAMPS] + list(r[0].sequences_ids[0]) + [EOT]


def words(s):
    import re

    return re.sub(r"[^a-z0-9' ]", " ", s.lower()).split()


def wer(ref, hyp):
    r, h = words(ref), words(hyp)
    d = np.zeros((len(r) + 1, len(h) + 1), int)
    d[:, 0], d[0, :] = range(len(r) + 1), range(len(h) + 1)
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (r[i - 1] != h[j - 1]))
    return d[len(r), len(h)] / max(1, len(r))


def text_of(model_dir, ids):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    return tok.decode([i for i in ids if i < EOT], skip_special_tokens=True).strip()


def make_real(model_dir):
    from transformers import WhisperFeatureExtractor

    make_audio()
    v, _, spec, _ = read_ct2(os.path.join(model_dir, "model.bin"))
    cfg, ct2, enc, dec = whisper_config(model_dir, v)
    model = hf_model(cfg, ct2_to_hf(dequantized(v), enc, dec))
    fe = WhisperFeatureExtractor()
    case, summary = {}, {}
    for stem, rate, text in UTTERANCES:
        x, r = read_wav(os.path.join(AUDIO, stem + ".wav"))
        x16 = resample(x, r)
        feats = np_features(fe, padded(x16, fe.n_samples))  # [80, 3000]
        frames = min(feats.shape[1], len(x16) // fe.hop_length + 8)
        ids, logits = greedy(model, feats, ct2)
        gen, c2 = hf_generate(model, feats, ct2), ct2_generate(model_dir, feats)
        top = np.argsort(-logits, axis=1)[:, :TOPK]
        case[f"{stem}.samples"] = np.array([len(x16)], np.int32)
        case[f"{stem}.log_mel"] = feats[:, :frames].copy()
        case[f"{stem}.log_mel_max"] = np.array([feats.max()], np.float32)
        case[f"{stem}.tokens"] = np.array(ids, np.int32)
        case[f"{stem}.tokens_transformers_generate"] = np.array(gen, np.int32)
        case[f"{stem}.tokens_ctranslate2"] = np.array(c2, np.int32)
        case[f"{stem}.topk_ids"] = top.astype(np.int32)
        case[f"{stem}.topk_logits"] = np.take_along_axis(logits, top, axis=1)
        case[f"{stem}.logits_sum"] = logits.astype(np.float64).sum(axis=1).astype(np.float32)
        case[f"{stem}.logits_sumsq"] = (logits.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
        hyp = text_of(model_dir, ids)
        summary[stem] = {"rate": rate, "spoken": text, "transcript": hyp, "wer": wer(text, hyp),
                         "manual == transformers generate": ids == gen, "manual == ctranslate2": ids == c2,
                         "tokens": ids}
        print(json.dumps({stem: summary[stem]}, indent=1))
    save_safetensors(os.path.join(OUT, "whisper_tiny_en.case.safetensors"), case,
                     {"summary": json.dumps(summary), "spec": spec})


def report_wer(model_dir, ids_file):
    """ids_file: lines 'stem id id id ...' (what tests/real/real_whisper.cpp writes)."""
    spoken = {s: t for s, _, t in UTTERANCES}
    for line in open(ids_file):
        stem, *ids = line.split()
        hyp = text_of(model_dir, [int(i) for i in ids])
        print(f"{stem}: '{hyp}' vs '{spoken[stem]}': WER {wer(spoken[stem], hyp):.3f}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("tiny", "all"):
        make_tiny()
    if what == "tiny_hf":
        make_tiny_hf()
    if what in ("log_mel", "all"):
        make_log_mel()
    if what == "real" or (what == "all" and len(sys.argv) > 2):
        make_real(sys.argv[2])
    if what == "wer":
        report_wer(sys.argv[2], sys.argv[3])
