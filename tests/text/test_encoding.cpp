// text/encoding.hpp and the pair, truncation and padding paths of text/tokenizer.hpp: parity with
// Hugging Face tokenizers (encode of pairs and singles, encode_batch) on the corpus for the
// tokenizers of tests/data/text/ with TemplateProcessing, BertProcessing, RobertaProcessing,
// ByteLevel and Sequence post-processors, every truncation strategy and direction, and padding;
// the truncation and padding rules on small cases; the errors for malformed sections.
#include <tformer/text.hpp>

#include "../catch.hpp"
#include "../support.hpp"
#include "parity.hpp"

using namespace tformer;
using tformer::test::text_data;

namespace {
text::tokenizer load(const std::string& name) { return text::tokenizer::from_file(text_data(name + ".json")); }
text::encoding enc(std::vector<std::int32_t> ids, std::int32_t type_id = 0) { return text::encoding::from_ids(std::move(ids), type_id); }
}  // namespace

TEST_CASE("encoding: pairs, truncation and padding match Hugging Face on the corpus", "[text]") {
  // the unoptimized sanitizer build checks a fifth of each case's inputs (all of them take minutes there)
  const auto r = tformer::test::check_encodings("", 3, tformer::test::slow_build ? 0.2 : 1.0);
  CHECK(r.cases >= 100);
  CHECK(r.inputs >= (tformer::test::slow_build ? 10000u : 50000u));
  CHECK(r.errors > 0);  // only_first / only_second that cannot be met are among them
  CHECK(r.mismatches == 0);
}

TEST_CASE("encoding: longest_first splits as Hugging Face does", "[text]") {
  // tokenizers/src/utils/truncation.rs's table: lengths (2, 4, 8) against max_length 7
  const auto lengths = [](std::size_t a, std::size_t b) {
    auto x = enc(std::vector<std::int32_t>(a, 1)), y = enc(std::vector<std::int32_t>(b, 2), 1);
    text::truncate_encodings(x, &y, {7, text::truncation_strategy::longest_first, text::side::right, 0});
    return std::pair{x.size(), y.size()};
  };
  CHECK(lengths(0, 8) == std::pair<std::size_t, std::size_t>{0, 7});
  CHECK(lengths(2, 8) == std::pair<std::size_t, std::size_t>{2, 5});
  CHECK(lengths(4, 4) == std::pair<std::size_t, std::size_t>{3, 4});
  CHECK(lengths(8, 4) == std::pair<std::size_t, std::size_t>{4, 3});
  CHECK(lengths(8, 8) == std::pair<std::size_t, std::size_t>{3, 4});
  CHECK(lengths(8, 2) == std::pair<std::size_t, std::size_t>{5, 2});
  // left keeps the end
  auto x = enc({1, 2, 3, 4, 5});
  text::truncate_encodings(x, nullptr, {3, text::truncation_strategy::longest_first, text::side::left, 0});
  CHECK(x.ids == std::vector<std::int32_t>{3, 4, 5});
  // only_second without a pair, and a sequence too short to give up enough
  auto y = enc({1, 2});
  CHECK_THROWS_AS(text::truncate_encodings(x, nullptr, {2, text::truncation_strategy::only_second, text::side::right, 0}), value_error);
  CHECK_THROWS_AS(text::truncate_encodings(x, &y, {3, text::truncation_strategy::only_second, text::side::right, 0}), value_error);
}

TEST_CASE("encoding: padding to the longest, a fixed length and a multiple, either side", "[text]") {
  std::vector<text::encoding> batch{enc({5, 6, 7}), enc({8}, 1)};
  text::padding_params p;
  p.pad_id = 9;
  p.pad_type_id = 3;
  p.pad_to_multiple_of = 4;
  text::pad_encodings(batch, p);
  CHECK(batch[0].ids == std::vector<std::int32_t>{5, 6, 7, 9});
  CHECK(batch[1].ids == std::vector<std::int32_t>{8, 9, 9, 9});
  CHECK(batch[1].type_ids == std::vector<std::int32_t>{1, 3, 3, 3});
  CHECK(batch[1].attention_mask == std::vector<std::int32_t>{1, 0, 0, 0});
  CHECK(batch[1].special_tokens_mask == std::vector<std::int32_t>{0, 1, 1, 1});
  p.length = 6;
  p.direction = text::side::left;
  p.pad_to_multiple_of = 0;
  text::pad_encodings(batch, p);
  CHECK(batch[1].ids == std::vector<std::int32_t>{9, 9, 8, 9, 9, 9});
  CHECK(batch[1].attention_mask == std::vector<std::int32_t>{0, 0, 1, 0, 0, 0});
  std::vector<text::encoding> none;
  text::pad_encodings(none, p);  // an empty batch stays empty
  CHECK(none.empty());
}

TEST_CASE("encoding: the tokenizer's options, its plain encode untouched", "[text]") {
  auto t = load("wordpiece");  // [CLS] $A [SEP] $B:1 [SEP]:1
  const std::int32_t cls = t.token_to_id("[CLS]"), sep = t.token_to_id("[SEP]");
  CHECK(t.num_special_tokens_to_add(false) == 2);
  CHECK(t.num_special_tokens_to_add(true) == 3);
  CHECK_FALSE(t.truncation().has_value());
  CHECK_FALSE(t.padding().has_value());
  const auto a = t.encode("hello world", false), b = t.encode("the fox", false);
  const auto e = t.encode_pair("hello world", "the fox");
  std::vector<std::int32_t> want{cls};
  want.insert(want.end(), a.begin(), a.end());
  want.push_back(sep);
  want.insert(want.end(), b.begin(), b.end());
  want.push_back(sep);
  CHECK(e.ids == want);
  CHECK(e.type_ids.back() == 1);
  CHECK(e.type_ids.front() == 0);
  CHECK(e.special_tokens_mask.front() == 1);
  CHECK(t.encode_single("hello world").ids == t.encode("hello world"));

  t.enable_truncation({4, text::truncation_strategy::longest_first, text::side::right, 0});
  t.enable_padding({std::size_t{8}, text::side::right, 0, 0, 0, "[PAD]"});
  REQUIRE(t.truncation().has_value());
  CHECK(t.truncation()->max_length == 4);
  const auto s = t.encode_single("the quick brown fox jumps over the lazy dog");
  CHECK(s.size() == 8);
  CHECK(s.attention_mask == std::vector<std::int32_t>{1, 1, 1, 1, 0, 0, 0, 0});
  CHECK(s.ids[3] == sep);
  // encode() is never truncated or padded
  CHECK(t.encode("the quick brown fox jumps over the lazy dog").size() > 8);
  // a max_length below the special tokens added truncates nothing (Hugging Face's wrap-around)
  t.no_padding();
  t.enable_truncation({1, text::truncation_strategy::longest_first, text::side::right, 0});
  CHECK(t.encode_single("the quick brown fox").ids == t.encode("the quick brown fox"));
  // stride must not be above the effective max_length (5 less 2 special tokens)
  CHECK_NOTHROW(t.enable_truncation({5, text::truncation_strategy::longest_first, text::side::right, 3}));
  CHECK_THROWS_AS(t.enable_truncation({5, text::truncation_strategy::longest_first, text::side::right, 4}), value_error);
  t.no_truncation();
  CHECK_FALSE(t.truncation().has_value());
  CHECK(t.encode_batch({}).empty());
}

TEST_CASE("encoding: the file's truncation and padding sections are read", "[text]") {
  auto j = nlohmann::json::parse(tformer::test::read_all(text_data("wordpiece.json")));
  j["truncation"] = {{"max_length", 128}, {"strategy", "OnlySecond"}, {"stride", 2}};  // no direction: Right
  j["padding"] = {{"strategy", {{"Fixed", 16}}}, {"direction", "Left"}, {"pad_to_multiple_of", 8}, {"pad_id", 1},
                  {"pad_type_id", 2}, {"pad_token", "[UNK]"}};
  const auto t = text::tokenizer::from_json(j.dump());
  REQUIRE(t.truncation().has_value());
  CHECK(*t.truncation() == text::truncation_params{128, text::truncation_strategy::only_second, text::side::right, 2});
  REQUIRE(t.padding().has_value());
  CHECK(*t.padding() == text::padding_params{std::size_t{16}, text::side::left, 8, 1, 2, "[UNK]"});
  j["padding"]["strategy"] = "BatchLongest";
  j["padding"]["pad_to_multiple_of"] = nullptr;
  const auto t2 = text::tokenizer::from_json(j.dump());
  CHECK_FALSE(t2.padding()->length.has_value());
  CHECK(t2.padding()->pad_to_multiple_of == 0);
  // the GGUF tokenizers get pair templates too: here a template made the way GGUF files get theirs
  const auto p = text::template_processor::around({1}, {2}, true);
  CHECK(p->added_tokens(false) == 2);
  CHECK(p->added_tokens(true) == 4);
  const auto e = text::post_process(p.get(), enc({10}), enc({20}, 1), true);
  CHECK(e.ids == std::vector<std::int32_t>{1, 10, 2, 1, 20, 2});
  CHECK(e.type_ids == std::vector<std::int32_t>{0, 0, 0, 1, 1, 1});
}

TEST_CASE("encoding: malformed truncation, padding and pair templates give typed errors naming the field", "[text]") {
  const auto good = nlohmann::json::parse(tformer::test::read_all(text_data("wordpiece.json")));
  const auto fails_with = [&](const nlohmann::json& v, const std::string& needle) {
    const auto m = tformer::test::thrown_message<value_error>([&] { text::tokenizer::from_json(v.dump(), "tok.json"); });
    INFO(m);
    CHECK(m.find(needle) != std::string::npos);
  };
  const nlohmann::json trunc = {{"max_length", 32}, {"strategy", "LongestFirst"}, {"direction", "Right"}, {"stride", 0}};
  const nlohmann::json pad = {{"strategy", "BatchLongest"}, {"direction", "Right"}, {"pad_to_multiple_of", nullptr},
                              {"pad_id", 0}, {"pad_type_id", 0}, {"pad_token", "[PAD]"}};
  const auto with = [&](const char* section, const nlohmann::json& value) {
    auto j = good;
    j[section] = value;
    return j;
  };
  auto t = trunc;
  t["strategy"] = "Shortest";
  fails_with(with("truncation", t), "tok.json: truncation.strategy 'Shortest' is not a truncation strategy");
  t = trunc;
  t["max_length"] = -1;
  fails_with(with("truncation", t), "tok.json: truncation.max_length must not be negative");
  t = trunc;
  t["max_length"] = "32";
  fails_with(with("truncation", t), "tok.json: truncation.max_length must be an integer");
  t = trunc;
  t.erase("max_length");
  fails_with(with("truncation", t), "tok.json: truncation has no field 'max_length'");
  t = trunc;
  t["direction"] = "Up";
  fails_with(with("truncation", t), "tok.json: truncation.direction 'Up' is not a direction");
  t = trunc;
  t["stride"] = 1.5;
  fails_with(with("truncation", t), "tok.json: truncation.stride must be an integer");
  fails_with(with("truncation", 32), "tok.json: truncation must be a JSON object");

  auto p = pad;
  p["strategy"] = "Longest";
  fails_with(with("padding", p), "tok.json: padding.strategy 'Longest' is not a padding strategy");
  p["strategy"] = {{"Fixed", -4}};
  fails_with(with("padding", p), "tok.json: padding.strategy.Fixed must not be negative");
  p["strategy"] = {{"Variable", 4}};
  fails_with(with("padding", p), "tok.json: padding.strategy must be \"BatchLongest\" or {\"Fixed\": length}");
  p = pad;
  p.erase("strategy");
  fails_with(with("padding", p), "tok.json: padding has no field 'strategy'");
  p = pad;
  p["pad_id"] = -1;
  fails_with(with("padding", p), "tok.json: padding.pad_id must be a token id");
  p = pad;
  p["pad_type_id"] = "0";
  fails_with(with("padding", p), "tok.json: padding.pad_type_id must be an integer");
  p = pad;
  p["pad_to_multiple_of"] = true;
  fails_with(with("padding", p), "tok.json: padding.pad_to_multiple_of must be an integer");
  p = pad;
  p["direction"] = "left";
  fails_with(with("padding", p), "tok.json: padding.direction 'left' is not a direction");
  p = pad;
  p["pad_token"] = 0;
  fails_with(with("padding", p), "tok.json: padding.pad_token must be a string");

  auto j = good;
  j["post_processor"]["pair"][1]["Sequence"]["id"] = "C";
  fails_with(j, "tok.json: post_processor.pair[1].Sequence.id 'C' is not a sequence");
  j = good;
  j["post_processor"]["single"][1]["Sequence"]["id"] = "B";
  fails_with(j, "tok.json: post_processor.single[1].Sequence.id is B");
  j = good;
  j["post_processor"]["pair"][4]["SpecialToken"]["type_id"] = -1;
  fails_with(j, "tok.json: post_processor.pair[4].SpecialToken.type_id must be a type id");
  j = good;
  j["post_processor"]["pair"][0] = {{"SpecialToken", {{"id", "[NOPE]"}, {"type_id", 0}}}};
  fails_with(j, "tok.json: post_processor.pair[0] names the special token '[NOPE]'");
  j = good;
  j["post_processor"] = {{"type", "BertProcessing"}, {"sep", {"[SEP]", 3}}, {"cls", "[CLS]"}};
  fails_with(j, "tok.json: post_processor.cls must be a pair [token, id]");
}

TEST_CASE("encoding: a template without a pair gets Hugging Face's default $A $B:1", "[text]") {
  auto j = nlohmann::json::parse(tformer::test::read_all(text_data("wordpiece.json")));
  j["post_processor"].erase("pair");
  const auto t = text::tokenizer::from_json(j.dump());
  const auto a = t.encode("hello", false), b = t.encode("world", false);
  const auto e = t.encode_pair("hello", "world");
  std::vector<std::int32_t> want = a;
  want.insert(want.end(), b.begin(), b.end());
  CHECK(e.ids == want);
  CHECK(e.type_ids.back() == 1);
  CHECK(t.num_special_tokens_to_add(true) == 0);
}

TEST_CASE("encoding: a GGUF vocabulary's pairs follow Hugging Face's converters (<s> $A <s>:1 $B:1)", "[text]") {
  const auto t = text::tokenizer_from_gguf(text_data("spm_gguf.gguf"));  // adds BOS (1), no EOS
  CHECK(t.num_special_tokens_to_add(false) == 1);
  CHECK(t.num_special_tokens_to_add(true) == 2);
  const auto a = t.encode("hello world", false), b = t.encode("the fox", false);
  std::vector<std::int32_t> want{1};
  want.insert(want.end(), a.begin(), a.end());
  want.push_back(1);
  want.insert(want.end(), b.begin(), b.end());
  const auto e = t.encode_pair("hello world", "the fox");
  CHECK(e.ids == want);
  std::vector<std::int32_t> types(a.size() + 1, 0);
  types.resize(want.size(), 1);
  CHECK(e.type_ids == types);
  CHECK(t.encode_single("hello world").ids == t.encode("hello world"));
}
