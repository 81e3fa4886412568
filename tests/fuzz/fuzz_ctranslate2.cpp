// libFuzzer target for the CTranslate2 model.bin reader (io/ctranslate2.hpp), on bytes in memory:
// the validating parser (detail::parse_ctranslate2, what ctranslate2_file runs on its mapped
// file); every accepted variable lies in the input and converts to float (ASan checks reads),
// int8 / int16 variables divided by a scale of a fitting size.
//
// Build and run (Debian's clang; not part of the CMake build):
//   clang++ -std=c++20 -O1 -g -march=native -fsanitize=fuzzer,address,undefined \
//       -fno-sanitize-recover=undefined -Iinclude -isystem /usr/include/eigen3 \
//       tests/fuzz/fuzz_ctranslate2.cpp -o /tmp/fuzz_ctranslate2
//   mkdir -p /tmp/ct2_corpus && cp tests/data/*.ct2.bin /tmp/ct2_corpus/
//   /tmp/fuzz_ctranslate2 -max_total_time=120 -max_len=65536 -rss_limit_mb=2048 /tmp/ct2_corpus
// fuzz-seeds: tests/data/*.ct2.bin
#include <tformer/io/ctranslate2.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  tformer::io::detail::ct2_contents c;
  try {
    c = tformer::io::detail::parse_ctranslate2(input, "<fuzz input>");
  } catch (const tformer::io_error&) {
    return 0;  // rejected: the only acceptable failure
  }
  std::uint64_t end = 0;
  for (const auto& v : c.variables) {
    require(v.offset >= end && v.offset <= size && v.bytes <= size - v.offset);
    require(v.bytes == static_cast<std::uint64_t>(v.numel()) * tformer::io::ct2_item_size(v.dtype));
    end = v.offset + v.bytes;
    std::vector<float> out(static_cast<std::size_t>(v.numel()));
    tformer::io::detail::ct2_to_float(v.dtype, input.data() + v.offset, v.numel(), out.data());
  }
  for (const auto& [alias, target] : c.aliases) require(c.index.count(target) == 1 && c.index.count(alias) == 0);
  return 0;
}
