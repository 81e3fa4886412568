// text/tokenizer.hpp: tokenizer.json loading, the encode/decode pipeline and its parity with
// Hugging Face tokenizers on the corpus of tools/make_tokenizer_fixtures.py, streaming decoding,
// and the errors for malformed files.
#include <tformer/text.hpp>

#include "../catch.hpp"
#include "../support.hpp"
#include "parity.hpp"

using namespace tformer;
using tformer::test::check_parity;
using tformer::test::text_data;

namespace {
text::tokenizer load(const std::string& name) { return text::tokenizer::from_file(text_data(name + ".json")); }

void require_parity(const std::string& name) {
  const auto t = load(name);
  const auto r = check_parity(
      name, [&](const std::string& s) { return t.encode(s); }, [&](const std::vector<std::int32_t>& ids) { return t.decode(ids); });
  CHECK(r.lines >= 10000);
  CHECK(r.id_mismatches == 0);
  CHECK(r.decode_mismatches == 0);
}
}  // namespace

TEST_CASE("tokenizer: WordPiece (BERT normalizer and pre-tokenizer) matches Hugging Face on the corpus", "[text]") {
  require_parity("wordpiece");
}
TEST_CASE("tokenizer: byte-level BPE, GPT-2 regex, matches Hugging Face on the corpus", "[text]") { require_parity("bpe_gpt2"); }
TEST_CASE("tokenizer: byte-level BPE, Llama-3 regex and ignore_merges, matches Hugging Face", "[text]") { require_parity("bpe_llama3"); }
TEST_CASE("tokenizer: byte-level BPE, Qwen2 regex and NFC, matches Hugging Face", "[text]") { require_parity("bpe_qwen2"); }
TEST_CASE("tokenizer: byte-level BPE, SmolLM2 digits + ByteLevel, matches Hugging Face", "[text]") { require_parity("bpe_smollm2"); }
TEST_CASE("tokenizer: Split behaviors, Punctuation, Whitespace and a normalizer sequence match Hugging Face", "[text]") {
  require_parity("bpe_splits");
}
TEST_CASE("tokenizer: SentencePiece BPE with byte fallback matches Hugging Face", "[text]") { require_parity("spm_bpe"); }
TEST_CASE("tokenizer: Unigram (NFKC, Metaspace) matches Hugging Face", "[text]") { require_parity("unigram"); }

TEST_CASE("tokenizer: malformed and truncated tokenizer.json give typed errors naming file and place", "[text]") {
  const std::string good = tformer::test::read_all(text_data("wordpiece.json"));
  // truncated: io_error with the byte offset
  const auto msg = tformer::test::thrown_message<io_error>([&] { text::tokenizer::from_json(good.substr(0, 1000), "wp.json"); });
  CHECK(msg.find("wp.json") != std::string::npos);
  CHECK(msg.find("byte 1001") != std::string::npos);
  CHECK_THROWS_AS(text::tokenizer::from_json("", "empty.json"), io_error);
  CHECK_THROWS_AS(text::tokenizer::from_file(text_data("no_such_tokenizer.json")), io_error);

  auto j = nlohmann::json::parse(good);
  const auto fails_with = [&](const nlohmann::json& v, const std::string& needle) {
    const auto m = tformer::test::thrown_message<value_error>([&] { text::tokenizer::from_json(v.dump(), "tok.json"); });
    INFO(m);
    CHECK(m.find(needle) != std::string::npos);
  };
  auto k = j;
  k["model"]["type"] = "Foo";
  fails_with(k, "tok.json: model.type 'Foo' is not supported");
  k = j;
  k["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Bar"}}}}};
  fails_with(k, "tok.json: normalizer.normalizers[1].type 'Bar' is not supported");
  k = j;
  k["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  fails_with(k, "pre_tokenizer.pattern");
  k = j;
  k["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Sideways"}};
  fails_with(k, "pre_tokenizer.behavior");
  k = j;
  k["decoder"] = {{"type", "CTC"}};
  fails_with(k, "decoder.type 'CTC' is not supported");
  k = j;
  k["model"]["unk_token"] = "[NOPE]";
  fails_with(k, "model.unk_token");
  k = j;
  k["normalizer"]["lowercase"] = "yes";
  fails_with(k, "normalizer.lowercase must be a boolean");
  k = j;
  k["added_tokens"][0]["id"] = -3;
  fails_with(k, "added_tokens[0].id");

  auto b = nlohmann::json::parse(tformer::test::read_all(text_data("bpe_gpt2.json")));
  b["model"]["dropout"] = 0.1;
  fails_with(b, "model.dropout");
  b = nlohmann::json::parse(tformer::test::read_all(text_data("bpe_gpt2.json")));
  b["model"]["merges"][0] = "notamerge";
  fails_with(b, "model.merges[0]");
}

TEST_CASE("tokenizer: added tokens, special and not, with their flags", "[text]") {
  const auto t = load("wordpiece");
  const std::int32_t tag = t.token_to_id("<tag>"), word = t.token_to_id("word"), lstrip = t.token_to_id("<lstrip>");
  REQUIRE(tag >= 0);
  REQUIRE(word >= 0);
  // not normalized: matched on the raw text, case-sensitive
  CHECK(t.encode("a<tag>b", false) == std::vector<std::int32_t>{t.token_to_id("a"), tag, t.token_to_id("b")});
  // single_word: not inside a word
  const auto in_word = t.encode("xwordx", false);
  CHECK(std::find(in_word.begin(), in_word.end(), word) == in_word.end());
  CHECK(t.encode("word", false) == std::vector<std::int32_t>{word});
  // lstrip takes the spaces before it
  CHECK(t.encode("a   <lstrip>", false) == std::vector<std::int32_t>{t.token_to_id("a"), lstrip});
  // special tokens go with skip_special_tokens
  const auto ids = t.encode("hello");
  CHECK(ids.front() == t.token_to_id("[CLS]"));
  CHECK(t.is_special(ids.front()));
  CHECK(t.decode(ids) == "hello");
  CHECK(t.decode(ids, false) == "[CLS] hello [SEP]");
}

TEST_CASE("tokenizer: streaming decode emits only whole characters", "[text]") {
  for (const char* name : {"bpe_gpt2", "spm_bpe", "unigram", "wordpiece"}) {
    const auto t = load(name);
    const auto& lines = tformer::test::corpus();
    for (std::size_t i = 0; i < 300; ++i) {
      const auto ids = t.encode(lines[i]);
      text::decode_stream s(t);
      std::string streamed;
      for (const auto id : ids) {
        const std::string piece = s.step(id);
        CHECK(text::is_valid_utf8(piece));
        streamed += piece;
      }
      streamed += s.finish();
      INFO(name << " line " << i);
      CHECK(streamed == t.decode(ids));
    }
  }
  // a character split over byte tokens comes out whole; a lone byte becomes U+FFFD at the end
  const auto t = load("spm_bpe");
  const std::int32_t e2 = t.token_to_id("<0xE2>"), x82 = t.token_to_id("<0x82>"), xac = t.token_to_id("<0xAC>");
  REQUIRE(xac >= 0);
  text::decode_stream s(t, /*skip_special_tokens=*/false);  // the trainer made the byte tokens special
  CHECK(s.step(e2).empty());
  CHECK(s.step(x82).empty());
  CHECK(s.step(xac) == "\xE2\x82\xAC");
  CHECK(s.step(e2).empty());
  CHECK(s.finish() == "\xEF\xBF\xBD");
}

TEST_CASE("tokenizer: invalid UTF-8 reads as U+FFFD, like Python's decode('utf-8', 'replace')", "[text]") {
  CHECK(text::sanitize_utf8("a\xff" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(text::sanitize_utf8("\xe2\x82" "a") == "\xEF\xBF\xBD" "a");                          // truncated: one U+FFFD
  CHECK(text::sanitize_utf8("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");     // surrogate: one per byte
  CHECK(text::sanitize_utf8("\xf0\x9f\x98") == "\xEF\xBF\xBD");
  CHECK(text::sanitize_utf8("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");                      // overlong
  const auto t = load("bpe_gpt2");
  CHECK(t.encode("a\xff" "b") == t.encode("a\xEF\xBF\xBD" "b"));
}

TEST_CASE("tokenizer: a tokenizer without a model throws instead of crashing; GGUF pre-tokenizer sets", "[text]") {
  const text::tokenizer none;
  CHECK_THROWS_AS(none.encode("text"), value_error);
  CHECK_THROWS_AS(none.decode({1, 2}), value_error);
  // llama.cpp's "default" (also a file without tokenizer.ggml.pre): punctuation runs, GPT-2's
  // regex, digit runs, then digits in threes
  const auto def = text::gguf_pre_regexes("default", "x.gguf");
  REQUIRE(def.size() == 4);
  CHECK(def[3] == "[0-9][0-9][0-9]");
  CHECK(text::gguf_pre_regexes("smollm", "x.gguf").size() == 2);
  CHECK_THROWS_AS(text::gguf_pre_regexes("no-such-pre", "x.gguf"), value_error);
}
