// libFuzzer target for the tokenizer.json loader (text/tokenizer.hpp) on bytes in memory: a file
// that loads must encode and decode a few strings (valid and invalid UTF-8, added-token and
// whitespace edge cases) and stream-decode their ids, and encode pairs and padded batches with the
// file's truncation and padding and then with some set in code (text/encoding.hpp); every
// encoding's fields have one length. Anything thrown that is not a tformer::error is a finding.
//
// Build and run (Debian's clang; not part of the CMake build):
//   clang++ -std=c++20 -O1 -g -march=native -fsanitize=fuzzer,address,undefined \
//       -fno-sanitize-recover=undefined -Iinclude -isystem /usr/include/eigen3 \
//       tests/fuzz/fuzz_tokenizer_json.cpp -o /tmp/fuzz_tokenizer_json -lpcre2-8 -lutf8proc
//   mkdir -p /tmp/tok_corpus && cp tests/data/text/*.json /tmp/tok_corpus/
//   /tmp/fuzz_tokenizer_json -max_total_time=120 -max_len=65536 -rss_limit_mb=2048 /tmp/tok_corpus
// fuzz-seeds: tests/data/text/*.json
// fuzz-link: -lpcre2-8 -lutf8proc
#include <tformer/text.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  tformer::text::tokenizer t;
  try {
    t = tformer::text::tokenizer::from_json(input, "<fuzz input>");
  } catch (const tformer::error&) {
    return 0;
  }
  static const std::vector<std::string> texts = {
      "", " ", "Hello, world! Straße 東京 😀 1234567", "a\xff\xfe" "b\xe2\x82", "  \t\r\n\xC2\xA0 x  ",
      "[CLS] <|endoftext|> <s></s> <unk> word xyz", std::string(300, 'a') + " " + std::string(50, '7'), input.substr(0, 64)};
  auto check = [](const tformer::text::encoding& e) {
    const std::size_t n = e.ids.size();
    if (e.type_ids.size() != n || e.attention_mask.size() != n || e.special_tokens_mask.size() != n) __builtin_trap();
  };
  auto encodings = [&] {
    try {
      check(t.encode_pair(texts[2], texts[3]));
      for (const auto& e : t.encode_pair_batch({{texts[1], texts[4]}, {texts[6], texts[7]}})) check(e);
      const auto batch = t.encode_batch({texts[2], texts[5], texts[0]});
      for (const auto& e : batch) {
        check(e);
        // padded together to the longest (a fixed length only pads the shorter ones)
        if (t.padding() && !t.padding()->length && e.ids.size() != batch[0].ids.size()) __builtin_trap();
      }
    } catch (const tformer::error&) {
    }
  };
  encodings();
  const std::uint8_t knob = size > 0 ? data[size / 2] : 0;  // settings in code, from the input
  try {
    tformer::text::truncation_params tp;
    tp.max_length = knob % 13;
    tp.strategy = static_cast<tformer::text::truncation_strategy>(knob % 3);
    tp.direction = knob & 8 ? tformer::text::side::left : tformer::text::side::right;
    t.enable_truncation(tp);
    tformer::text::padding_params pp;
    if (knob & 16) pp.length = knob % 17;
    pp.direction = knob & 32 ? tformer::text::side::left : tformer::text::side::right;
    pp.pad_to_multiple_of = knob % 5;
    t.enable_padding(pp);
    encodings();
  } catch (const tformer::error&) {
  }
  for (const auto& s : texts) {
    try {
      const auto ids = t.encode(s);
      const std::string text = t.decode(ids);
      (void)t.decode(ids, false);
      tformer::text::decode_stream stream(t);
      for (const auto id : ids) (void)stream.step(id);
      (void)stream.finish();
      if (!tformer::text::is_valid_utf8(text)) __builtin_trap();
    } catch (const tformer::error&) {
    }
  }
  return 0;
}
