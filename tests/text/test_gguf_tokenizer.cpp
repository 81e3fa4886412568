// text/gguf_tokenizer.hpp and text/llama_spm.hpp: a GGUF SentencePiece ("llama") vocabulary
// tokenized and detokenized as llama.cpp does, on the corpus of tools/make_tokenizer_fixtures.py
// (tests/data/text/spm_gguf.gguf, references from llama.cpp's own tokenizer), and the errors for
// malformed tokenizer metadata.
#include <tformer/text.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../support.hpp"
#include "parity.hpp"

using namespace tformer;
using tformer::test::check_parity;
using tformer::test::text_data;

namespace {
const std::string fixture = text_data("spm_gguf.gguf");

// The fixture's metadata with the keys of `set` replaced (or added) and those of `drop` left out,
// written to a temporary file; its path.
std::string variant(const std::string& name, const std::map<std::string, io::gguf_value>& set, const std::vector<std::string>& drop = {}) {
  const io::gguf_file f(fixture);
  io::gguf_writer w;
  for (const auto& kv : f.metadata()) {
    if (std::find(drop.begin(), drop.end(), kv.key) != drop.end()) continue;
    const auto it = set.find(kv.key);
    w.add(kv.key, it == set.end() ? kv.value : it->second);
  }
  for (const auto& [key, value] : set)
    if (!f.find_metadata(key)) w.add(key, value);
  const auto path = std::filesystem::temp_directory_path() / ("tformer_test_gguf_tokenizer_" + name + ".gguf");
  std::ofstream out(path, std::ios::binary);
  w.write(out);
  return path.string();
}

void require_parity(const std::string& name, const text::tokenizer& t, bool skip_special_tokens) {
  const auto r = check_parity(
      name, [&](const std::string& s) { return t.encode(s); },
      [&](const std::vector<std::int32_t>& ids) { return t.decode(ids, skip_special_tokens); });
  CHECK(r.lines >= 10000);
  CHECK(r.id_mismatches == 0);
  CHECK(r.decode_mismatches == 0);
}
}  // namespace

TEST_CASE("gguf tokenizer: SentencePiece (llama) ids and detokenized text match llama.cpp on the corpus", "[text]") {
  const auto t = text::tokenizer_from_gguf(fixture);
  // decode(ids, false): llama_detokenize(ids, remove_special = false, unparse_special = true)
  require_parity("spm_gguf", t, false);
  // decode(ids): llama_detokenize of the ids without CONTROL and UNKNOWN tokens
  require_parity("spm_gguf_skip", t, true);
}

TEST_CASE("gguf tokenizer: SentencePiece without the space prefix, with EOS instead of BOS, matches llama.cpp", "[text]") {
  const auto path = variant("noprefix", {{"tokenizer.ggml.add_bos_token", io::gguf_value::from(false)},
                                         {"tokenizer.ggml.add_eos_token", io::gguf_value::from(true)},
                                         {"tokenizer.ggml.add_space_prefix", io::gguf_value::from(false)}});
  require_parity("spm_gguf_noprefix", text::tokenizer_from_gguf(path), true);
  std::filesystem::remove(path);
}

TEST_CASE("gguf tokenizer: SentencePiece special tokens, byte fallback and the space rules", "[text]") {
  const auto t = text::tokenizer_from_gguf(fixture);
  const std::int32_t bos = 1, eos = 2, unk = 0;
  REQUIRE(t.id_to_token(bos) == "<s>");
  REQUIRE(t.id_to_token(eos) == "</s>");
  CHECK(t.is_special(bos));
  CHECK(t.is_special(eos));
  CHECK(t.is_special(unk));
  const std::int32_t tag = t.token_to_id("<tag>"), xyz = t.token_to_id(" xyz"), im_start = t.token_to_id("<|im_start|>");
  REQUIRE(tag >= 0);
  REQUIRE(xyz >= 0);
  REQUIRE(im_start >= 0);
  CHECK_FALSE(t.is_special(tag));  // USER_DEFINED
  CHECK(t.is_special(im_start));   // CONTROL

  // BOS in front; every text segment gets a space in front, also after a special token
  const auto ids = t.encode("a<s>b");
  REQUIRE(ids.size() >= 4);
  CHECK(ids[0] == bos);
  CHECK(std::count(ids.begin(), ids.end(), bos) == 2);
  CHECK(t.decode(ids, false) == "<s> a<s> b");
  CHECK(t.decode(ids) == "a b");
  CHECK(t.encode("").size() == 1);
  CHECK(t.encode("", false).empty());
  const auto with_tag = t.encode("x<tag>y", false);  // user-defined tokens are matched in the text too
  CHECK(std::count(with_tag.begin(), with_tag.end(), tag) == 1);

  // a character without a token comes out as its UTF-8 bytes <0xXX>
  const auto rare = t.encode("\xE2\x82\xAA", false);  // U+20AA, not in the training text
  REQUIRE(rare.size() == 4);                          // "▁" and three bytes
  CHECK(t.id_to_token(rare[1]) == "<0xE2>");
  CHECK(t.id_to_token(rare[2]) == "<0x82>");
  CHECK(t.id_to_token(rare[3]) == "<0xAA>");
  CHECK(t.decode(rare) == "\xE2\x82\xAA");

  // the first token loses one leading space, whatever its type; later ones keep theirs
  const std::int32_t space = t.token_to_id("<0x20>");
  REQUIRE(space >= 0);
  CHECK(t.decode({space, space}).size() == 1);
  CHECK(t.decode({xyz, xyz}) == "xyz xyz");
  CHECK(t.decode({bos, xyz}, false) == "<s> xyz");
  const std::int32_t pad = t.token_to_id("[PAD3003]");  // UNUSED: no text, but it is the first token
  REQUIRE(pad >= 0);
  CHECK(t.decode({pad}, false).empty());
  CHECK(t.decode({pad, xyz}) == " xyz");

  // streaming decode agrees with decode
  const auto& lines = tformer::test::corpus();
  for (std::size_t i = 0; i < 200; ++i) {
    const auto line_ids = t.encode(lines[i]);
    text::decode_stream s(t);
    std::string streamed;
    for (const auto id : line_ids) streamed += s.step(id);
    streamed += s.finish();
    INFO("line " << i);
    CHECK(streamed == t.decode(line_ids));
  }
}

TEST_CASE("gguf tokenizer: malformed SentencePiece metadata gives typed errors naming the key", "[text]") {
  const io::gguf_file f(fixture);
  const auto tokens = f.get_strings("tokenizer.ggml.tokens");
  const auto scores = f.get_floats("tokenizer.ggml.scores");
  const auto types = f.get_ints("tokenizer.ggml.token_type");
  const auto fails = [&]<class E>(const std::string& name, const std::map<std::string, io::gguf_value>& set,
                                  const std::vector<std::string>& drop, const std::string& needle, E*) {
    const auto path = variant(name, set, drop);
    const auto msg = tformer::test::thrown_message<E>([&] { text::tokenizer_from_gguf(path); });
    INFO(msg);
    CHECK(msg.find(needle) != std::string::npos);
    CHECK(msg.find(path) != std::string::npos);
    std::filesystem::remove(path);
  };
  std::vector<float> short_scores(scores.begin(), scores.end() - 1);
  fails("scores", {{"tokenizer.ggml.scores", io::gguf_value::from(short_scores)}}, {}, "tokenizer.ggml.scores has 3003 entries for 3004",
        static_cast<value_error*>(nullptr));
  std::vector<std::int32_t> long_types(types.begin(), types.end());
  long_types.push_back(1);
  fails("types", {{"tokenizer.ggml.token_type", io::gguf_value::from(long_types)}}, {}, "tokenizer.ggml.token_type has 3005 entries",
        static_cast<value_error*>(nullptr));
  fails("no_tokens", {}, {"tokenizer.ggml.tokens"}, "tokenizer.ggml.tokens", static_cast<io_error*>(nullptr));
  fails("scores_type", {{"tokenizer.ggml.scores", io::gguf_value::from(std::string("high"))}}, {}, "tokenizer.ggml.scores",
        static_cast<io_error*>(nullptr));
  fails("bos", {{"tokenizer.ggml.bos_token_id", io::gguf_value::from(std::uint32_t{5000})}}, {}, "bos_token_id 5000 is past",
        static_cast<value_error*>(nullptr));
  fails("unk", {{"tokenizer.ggml.unknown_token_id", io::gguf_value::from(std::uint32_t{3004})}}, {}, "unknown_token_id 3004",
        static_cast<value_error*>(nullptr));
  fails("model", {{"tokenizer.ggml.model", io::gguf_value::from(std::string("t5"))}}, {}, "tokenizer.ggml.model 't5' is not supported",
        static_cast<value_error*>(nullptr));
  CHECK(tokens.size() == 3004);

  // without scores every pair scores 0 (llama.cpp's default): the leftmost pairs merge first
  const auto path = variant("no_scores", {}, {"tokenizer.ggml.scores"});
  const auto t = text::tokenizer_from_gguf(path);
  CHECK(t.decode(t.encode("hello world")) == "hello world");
  std::filesystem::remove(path);
}
