// libFuzzer target for the Hugging Face directory's text files (io/hf_directory.hpp and the family
// presets' config readers), on bytes in memory, read both as model.safetensors.index.json
// (parse_safetensors_index) and as config.json (parse_json_text, then every preset's reader: bert,
// gpt2, the Llama family, t5, sentence-transformers' Pooling, and every layer's settings of an
// accepted config). The only acceptable failure is a tformer::error (config_error for the files' own faults);
// anything else (a JSON library exception, a crash, a sanitizer report) is a finding.
//
// Build and run (Debian's clang; not part of the CMake build):
//   clang++ -std=c++20 -O1 -g -march=native -fsanitize=fuzzer,address,undefined \
//       -fno-sanitize-recover=undefined -Iinclude -isystem /usr/include/eigen3 \
//       tests/fuzz/fuzz_hf_config.cpp -o /tmp/fuzz_hf_config
//   mkdir -p /tmp/hf_corpus && for d in tests/data/hf_dirs/*/; do cp "$d"config.json /tmp/hf_corpus/$(basename "$d").json; done
//   /tmp/fuzz_hf_config -max_total_time=120 -max_len=8192 -rss_limit_mb=2048 /tmp/hf_corpus
// fuzz-seeds: tests/data/hf_dirs/*/config.json tests/data/hf_dirs/*/model.safetensors.index.json
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/bert.hpp>
#include <tformer/models/gpt2.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/models/t5.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

// The settings of every layer (at most 64) of an accepted config: runs its layer_rule.
void layers_of(const tformer::models::model_config& c) {
  const std::int64_t n = std::min<std::int64_t>(c.layers, 64);
  for (std::int64_t i = 0; i < n; ++i) (void)c.layer_at(i);
}

template <class F>
void accept_or_reject(F&& f) {
  try {
    f();
  } catch (const tformer::error&) {
    // rejected with a typed error: fine
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  accept_or_reject([&] { (void)tformer::io::parse_safetensors_index(text, "model.safetensors.index.json"); });
  nlohmann::json j;
  try {
    j = tformer::io::parse_json_text(text, "config.json");
  } catch (const tformer::io::config_error&) {
    return 0;
  }
  namespace m = tformer::models;
  accept_or_reject([&] {
    const tformer::io::json_fields f(j, "config.json");
    accept_or_reject([&] { layers_of(m::bert_config(f)); });
    accept_or_reject([&] { layers_of(m::gpt2_config(f)); });
    accept_or_reject([&] { layers_of(m::llama_config(f)); });
    accept_or_reject([&] { layers_of(m::t5_config(f)); });
    accept_or_reject([&] { (void)m::t5_gated(f); });
    accept_or_reject([&] { (void)m::t5_tied(f); });
    accept_or_reject([&] { (void)m::t5_decoder_output_scale(f); });
    accept_or_reject([&] { (void)m::sentence_pooling_config(f); });
  });
  return 0;
}
