// tformer_dates: normalizes dates written by people ("Tuesday, March 5th 2024", "5.3.2024", ...)
// to ISO YYYY-MM-DD with the small encoder-decoder bundled in examples/data/dates (trained by
// tools/train_dates.py). Reads the lines given as arguments, or standard input.
//
//   tformer_dates [--beam N | --greedy | --sample [--seed S] [--temperature T] [--top-k K] [--top-p P]]
//                 [--model DIR] [--threads T] [TEXT ...]
//
// Standard output has exactly one line per input line, in input order, so scripts can pair them:
// a line the model cannot read (empty, too long, an unknown character) gets an empty output line
// and a message "tformer_dates: line N: why" on standard error, the other lines are still
// answered, and the exit status is 1 at the end. A bad command line exits 2; --help exits 0.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "dates_model.hpp"

namespace {
constexpr const char* usage_line =
    "usage: tformer_dates [--beam N | --greedy | --sample [--seed S] [--temperature T] [--top-k K] [--top-p P]] "
    "[--model DIR] [--threads T] [TEXT ...]\n";

// --help: the usage line and what the options, outputs and exit statuses mean, on standard output.
int help() {
  std::fputs(usage_line, stdout);
  std::printf(
      "\n"
      "Normalizes dates written by people (\"Tuesday, March 5th 2024\", \"31.12.1999\") to YYYY-MM-DD.\n"
      "Reads each TEXT argument as one line, or, with none, the lines of standard input.\n"
      "\n"
      "  --beam N         beam search with N beams (default 4)\n"
      "  --greedy         greedy search (--beam 1)\n"
      "  --sample         sample instead, with --seed S (default 0), --temperature T, --top-k K, --top-p P\n"
      "  --model DIR      the model bundle (default %s)\n"
      "  --threads T      number of threads\n"
      "  -h, --help       print this help and exit\n"
      "\n"
      "Prints exactly one line per input line, in order. A line the model cannot read (empty, too\n"
      "long, or with a character outside its vocabulary) gets an empty output line, so outputs stay\n"
      "aligned with inputs, and \"tformer_dates: line N: why\" on standard error (N counts the TEXT\n"
      "arguments, or the input lines); the other lines are still answered.\n"
      "\n"
      "Exit status: 0 when every line was answered, 1 when a line was bad or the model could not be\n"
      "used, 2 for a bad command line.\n",
      TFORMER_DATES_MODEL_DIR);
  return 0;
}

// A bad command line: why, and the usage line, on standard error.
int usage(const std::string& why) {
  std::fprintf(stderr, "tformer_dates: %s\n%s", why.c_str(), usage_line);
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
      if (a == "--help" || a == "-h") return help();
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
    // every good line is answered; a bad line is an empty line on stdout and a message on stderr
    bool bad = false;
    const auto results = model.try_normalize(lines, o, processors);
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) {
        std::fprintf(stderr, "tformer_dates: line %zu: %s\n", i + 1, results[i].error.c_str());
        bad = true;
      }
      std::printf("%s\n", results[i].date.c_str());  // empty for a bad line
    }
    return bad ? 1 : 0;
  } catch (const tformer::error& e) {
    std::fprintf(stderr, "tformer_dates: %s\n", e.what());
    return 1;
  }
}
