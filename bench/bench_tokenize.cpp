// Tokenizer throughput (tformer::text) on the parity corpus of tests/data/text (10,000 lines of
// several scripts, emoji, code, whitespace runs and invalid UTF-8): encode line by line, one
// thread, counters tokens/s and input MB/s; decode of the same ids. Each tokenizer is checked
// first against the reference ids of the corpus's first lines (tests/data/text/*.first.json).
// The peer, Hugging Face tokenizers (Rust), is timed on the same corpus and tokenizer files by
// tools/bench_tokenizers_peer.py (see bench/README.md).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tformer/text.hpp>

#include "bench_util.hpp"

namespace {

using tformer::text::tokenizer;

std::string data_file(const std::string& name) { return std::string(TFORMER_BENCH_TEXT_DIR) + "/" + name; }

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> lines = [] {
    std::ifstream in(data_file("corpus.txt"), std::ios::binary);
    std::vector<std::string> v;
    for (std::string line; std::getline(in, line);) v.push_back(line);
    return v;
  }();
  return lines;
}

// The reference ids of the corpus's first lines: {"ids": [[...], ...]}, written by
// tools/make_tokenizer_fixtures.py.
bool matches_reference(const tokenizer& t, const std::string& name) {
  std::ifstream in(data_file(name + ".first.json"), std::ios::binary);
  if (!in) return false;
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return false;
  if (!j.is_object() || !j.contains("ids") || !j["ids"].is_array()) return false;
  const auto& items = j["ids"];
  const auto& lines = corpus();
  std::size_t checked = 0;
  for (std::size_t i = 0; i < items.size() && i < lines.size() && i < 100; ++i) {
    const auto& ids = items[i];
    if (!ids.is_array()) return false;
    if (t.encode(lines[i]) != ids.get<std::vector<std::int32_t>>()) return false;
    ++checked;
  }
  return checked > 0;
}

void encode_corpus(benchmark::State& state, const std::string& name) {
  const tokenizer t = tokenizer::from_file(data_file(name + ".json"));
  if (!matches_reference(t, name)) {
    state.SkipWithError(("ids differ from the reference ids in " + name + ".first.json").c_str());
    return;
  }
  const auto& lines = corpus();
  std::size_t bytes = 0, tokens = 0;
  for (const auto& l : lines) bytes += l.size();
  for (auto _ : state) {
    tokens = 0;
    for (const auto& l : lines) {
      const auto ids = t.encode(l);
      tokens += ids.size();
      benchmark::DoNotOptimize(ids.data());
    }
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens) * iters, benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes) * iters / 1e6, benchmark::Counter::kIsRate);
  state.counters["tokens"] = static_cast<double>(tokens);
}

void decode_corpus(benchmark::State& state, const std::string& name) {
  const tokenizer t = tokenizer::from_file(data_file(name + ".json"));
  std::vector<std::vector<std::int32_t>> ids;
  std::size_t tokens = 0;
  for (const auto& l : corpus()) {
    ids.push_back(t.encode(l));
    tokens += ids.back().size();
  }
  for (auto _ : state)
    for (const auto& v : ids) {
      const std::string s = t.decode(v);
      benchmark::DoNotOptimize(s.data());
    }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  for (const char* name : {"wordpiece", "bpe_gpt2", "bpe_llama3", "bpe_qwen2", "spm_bpe", "unigram"}) {
    benchmark::RegisterBenchmark((std::string("BM_encode/") + name).c_str(),
                                 [name](benchmark::State& s) { encode_corpus(s, name); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("BM_decode/") + name).c_str(),
                                 [name](benchmark::State& s) { decode_corpus(s, name); })
        ->Unit(benchmark::kMillisecond);
  }
  return tformer::bench::run_main(argc, argv);
}
