// libFuzzer target for the tokenizer.json loader (text/tokenizer.hpp) on bytes in memory: a file
// that loads must encode and decode a few strings (valid and invalid UTF-8, added-token and
// whitespace edge cases) and stream-decode their ids; the first byte picks whether the rest is
// the whole file or a patch into a real tokenizer.json (so the fuzzer reaches the components).
// Anything thrown that is not a tformer::error is a finding.
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
