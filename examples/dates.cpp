// tformer_dates: normalizes dates written by people ("Tuesday, March 5th 2024", "5.3.2024", ...)
// to ISO YYYY-MM-DD with the small encoder-decoder bundled in examples/data/dates (trained by
// tools/train_dates.py). Reads the lines given as arguments, or standard input.
//
//   tformer_dates [--beam N | --greedy | --sample [--seed S] [--temperature T] [--top-k K] [--top-p P]]
//                 [--model DIR] [--threads T] [TEXT ...]
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "dates_model.hpp"

namespace {
int usage(const std::string& why) {
  std::fprintf(stderr,
               "tformer_dates: %s\nusage: tformer_dates [--beam N | --greedy | --sample [--seed S] [--temperature T] "
               "[--top-k K] [--top-p P]] [--model DIR] [--threads T] [TEXT ...]\n",
               why.c_str());
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::int64_t beams = 4;  // the default: beam search with 4 beams
  bool sample = false;
  std::uint64_t seed = 0;
  std::string dir = TFORMER_DATES_MODEL_DIR;
  std::vector<std::string> lines;
  std::optional<tformer::generate::temperature> temperature;
  std::optional<tformer::generate::top_k> top_k;
  std::optional<tformer::generate::top_p> top_p;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "--beam") beams = std::stoll(value());
      else if (a == "--greedy") beams = 1;
      else if (a == "--sample") sample = true, beams = 1;
      else if (a == "--seed") seed = std::stoull(value());
      else if (a == "--temperature") temperature.emplace(std::stof(value()));
      else if (a == "--top-k") top_k.emplace(std::stoll(value()));
      else if (a == "--top-p") top_p.emplace(std::stof(value()));
      else if (a == "--model") dir = value();
      else if (a == "--threads") tformer::set_num_threads(std::stoi(value()));
      else if (a.rfind("--", 0) == 0) return usage("unknown option " + a);
      else lines.push_back(a);
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  if (lines.empty())
    for (std::string line; std::getline(std::cin, line);) lines.push_back(line);
  if (lines.empty()) return usage("no input: give dates as arguments or on standard input");

  try {
    const auto model = dates::bundle::load(dir);
    auto o = model.options();
    o.num_beams = beams;
    o.sample = sample;
    o.seed = seed;
    // the sampling processors the command line asked for, in Hugging Face's order
    auto processors = [&](std::span<const std::int32_t> tokens, std::span<float> logits) {
      if (temperature) (*temperature)(tokens, logits);
      if (top_k) (*top_k)(tokens, logits);
      if (top_p) (*top_p)(tokens, logits);
    };
    for (const auto& out : model.normalize(lines, o, processors)) std::printf("%s\n", out.c_str());
    return 0;
  } catch (const tformer::error& e) {
    std::fprintf(stderr, "tformer_dates: %s\n", e.what());
    return 1;
  }
}
