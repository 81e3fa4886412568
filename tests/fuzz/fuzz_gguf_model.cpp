// libFuzzer target for what reads a GGUF file beyond its layout: the family presets' config
// readers (models::llama_config for llama and qwen2 with scaled rotary, gpt2_config, bert_config,
// through io::gguf_hparams) and the tokenizer from its vocabulary metadata (text::tokenizer_from_gguf:
// byte-level BPE, WordPiece, SentencePiece), which must encode and decode a few strings. The input
// is written to a file first (the readers take an io::gguf_file, which maps one). Anything thrown
// that is not a tformer::error is a finding.
//
// Build and run (Debian's clang; not part of the CMake build):
//   clang++ -std=c++20 -O1 -g -march=native -fsanitize=fuzzer,address,undefined \
//       -fno-sanitize-recover=undefined -Iinclude -isystem /usr/include/eigen3 \
//       tests/fuzz/fuzz_gguf_model.cpp -o /tmp/fuzz_gguf_model -lpcre2-8 -lutf8proc
//   mkdir -p /tmp/gguf_model_corpus && cp tests/data/gguf_arch/*.gguf tests/data/text/*.gguf /tmp/gguf_model_corpus/
//   /tmp/fuzz_gguf_model -max_total_time=120 -max_len=131072 -rss_limit_mb=2048 /tmp/gguf_model_corpus
// fuzz-seeds: tests/data/gguf_arch/*.gguf tests/data/text/*.gguf tests/data/gguf_reference.gguf
// fuzz-link: -lpcre2-8 -lutf8proc
// fuzz-max-len: 131072
#include <tformer/io/gguf.hpp>
#include <tformer/models/bert.hpp>
#include <tformer/models/gpt2.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/text.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {
// One file per fuzzing process, rewritten for every input and removed at exit.
struct scratch_file {
  std::string path =
      (std::filesystem::temp_directory_path() / ("tformer_fuzz_gguf_model_" + std::to_string(::getpid()) + ".gguf")).string();
  ~scratch_file() { std::remove(path.c_str()); }
};
const std::string& scratch_path() {
  static const scratch_file f;
  return f.path;
}

template <class F>
void typed_errors_only(F&& f) {
  try {
    f();
  } catch (const tformer::error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::FILE* out = std::fopen(scratch_path().c_str(), "wb");
    if (!out) return 0;
    if (size > 0) std::fwrite(data, 1, size, out);
    std::fclose(out);
  }
  std::unique_ptr<tformer::io::gguf_file> f;
  try {
    f = std::make_unique<tformer::io::gguf_file>(scratch_path());
  } catch (const tformer::error&) {
    return 0;
  }
  typed_errors_only([&] { (void)tformer::models::llama_config(*f); });
  typed_errors_only([&] { (void)tformer::models::gpt2_config(*f); });
  typed_errors_only([&] { (void)tformer::models::bert_config(*f); });
  typed_errors_only([&] { (void)tformer::models::gguf_tied_head(*f); });
  typed_errors_only([&] {
    const auto t = tformer::text::tokenizer_from_gguf(*f);
    static const std::vector<std::string> texts = {"", " Hello, world! Straße 東京 😀 1234567", "a\xff\xfe" "b\xe2\x82",
                                                   "  \t\r\n\xC2\xA0 x  <s></s> <unk> [CLS] <|endoftext|>"};
    for (const auto& s : texts) {
      typed_errors_only([&] {
        const auto ids = t.encode(s);
        const std::string text = t.decode(ids);
        (void)t.decode(ids, false);
        if (!tformer::text::is_valid_utf8(text)) __builtin_trap();
      });
    }
  });
  return 0;
}
