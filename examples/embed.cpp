// tformer-embed: sentence embeddings with a BERT-family model directory (a sentence-transformers
// directory such as all-MiniLM-L6-v2, pooled as its modules.json says, or a plain BERT directory,
// mean-pooled), or a semantic search over the lines of a file.
//
//   tformer-embed --model all-MiniLM-L6-v2 "A sentence"             ->  one line of 384 numbers
//   tformer-embed --model all-MiniLM-L6-v2 --search notes.txt "cats"  ->  the 5 closest lines, scored
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include <tformer/io/hf_directory.hpp>
#include <tformer/models/bert.hpp>
#include <tformer/models/hf_auto.hpp>

#include "cli.hpp"

namespace {
const cli::program prog{
    "tformer-embed",
    "usage: tformer-embed --model DIR [--search FILE QUERY] [--top-k N] [--batch N] [--jsonl] [--threads N] [TEXT ...]",
    "\n"
    "Prints the embedding of each TEXT (or each line of standard input): one line of numbers each.\n"
    "With --search, embeds the lines of FILE and QUERY and prints the lines closest to QUERY, best\n"
    "first, as \"score<TAB>line\" (the score is the cosine similarity).\n"
    "\n"
    "  --model DIR        a BERT-family model directory with tokenizer.json (sentence-transformers or plain)\n"
    "  --search FILE QUERY  rank the (non-empty) lines of FILE by cosine similarity to QUERY\n"
    "  --top-k N          lines --search prints (default 5)\n"
    "  --batch N          sentences run together (default 32)\n"
    "  --jsonl            one JSON object per line: {\"text\", \"embedding\"}, or with --search\n"
    "                     {\"rank\", \"line\", \"text\", \"score\"} (line counts from 1 in FILE)\n"
    "  --threads N        number of threads\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "Exit status: 0 done, 1 a bad file or model, 2 a bad command line.\n"};

using namespace tformer;

struct embedder {
  models::encoder<models::bert<>> model;
  models::sentence_pooling pooling;
  text::tokenizer tok;

  // The embeddings of lines, batch sentences at a time, each padded to its batch's longest.
  std::vector<std::vector<float>> embed(const std::vector<std::string>& lines, std::int64_t batch) const {
    const std::int64_t N = static_cast<std::int64_t>(lines.size()), d = model.config.d_model();
    std::vector<std::vector<float>> out;
    cli::progress progress("embedding");
    for (std::int64_t b0 = 0; b0 < N; b0 += batch) {
      progress.update(b0, N);
      const std::int64_t n = std::min(batch, N - b0);
      std::vector<std::vector<std::int32_t>> ids;
      std::int64_t longest = 1;
      for (std::int64_t i = 0; i < n; ++i) {
        auto t = tok.encode(lines[static_cast<std::size_t>(b0 + i)]);
        if (static_cast<std::int64_t>(t.size()) > model.config.max_positions) {  // keep the closing token
          const auto last = t.back();
          t.resize(static_cast<std::size_t>(model.config.max_positions));
          t.back() = last;
        }
        longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(t.size()));
        ids.push_back(std::move(t));
      }
      tensor<std::int32_t> bid(shape{n, longest}, 0), blen(shape{n});  // [n, longest], [n]
      for (std::int64_t i = 0; i < n; ++i) {
        const auto& t = ids[static_cast<std::size_t>(i)];
        blen(i) = static_cast<std::int32_t>(t.size());
        for (std::size_t s = 0; s < t.size(); ++s) bid(i, static_cast<std::int64_t>(s)) = t[s];
      }
      const auto hidden = model.forward(bid, blen);          // [n, longest, d]
      tensor<float> emb(shape{n, pooling.dim(d)});           // [n, pooled]
      models::sentence_embedding(hidden, blen, pooling, emb);
      for (std::int64_t i = 0; i < n; ++i) out.emplace_back(&emb(i, 0), &emb(i, 0) + emb.dim(1));
    }
    return out;
  }
};

embedder open(const std::string& path) {
  const io::hf_directory dir(path);
  auto pooling = models::read_sentence_pooling(dir);
  if (pooling.dim(1) == 0) pooling.mean = true;  // a plain BERT directory: mean pooling
  auto model = std::get<0>(models::open_encoder(dir));  // the only encoder preset: BERT
  auto tok_path = dir.tokenizer_path();
  if (!tok_path && std::filesystem::exists(dir.root() / "tokenizer.json")) tok_path = dir.root() / "tokenizer.json";
  if (!tok_path) throw std::runtime_error("'" + path + "' has no tokenizer.json");
  return {std::move(model), pooling, text::tokenizer::from_file(*tok_path)};
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}
}  // namespace

int main(int argc, char** argv) {
  return cli::run(prog, argc, argv, [](cli::args& a) {
    std::string model_dir, search_file, query;
    bool search = false, jsonl = false;
    std::int64_t top_k = 5, batch = 32;
    std::vector<std::string> given;
    while (a.next()) {
      if (a.is("--model")) model_dir = a.value();
      else if (a.is("--search")) search = true, search_file = a.value(), query = a.value();
      else if (a.is("--top-k")) top_k = a.integer(1);
      else if (a.is("--batch")) batch = a.integer(1);
      else if (a.is("--jsonl")) jsonl = true;
      else if (a.is("--threads")) tformer::set_num_threads(static_cast<int>(a.integer(1)));
      else if (a.is_option()) a.unknown();
      else given.push_back(a.arg());
    }
    if (model_dir.empty()) throw cli::usage_error("--model is required");
    if (search && !given.empty()) throw cli::usage_error("--search takes its query as its second value, not '" + given[0] + "'");

    if (!search) {
      const auto lines = cli::inputs_or_stdin(given);  // read before loading, so a pipe is not held
      const auto e = open(model_dir);
      const auto embeddings = e.embed(lines, batch);
      for (std::size_t i = 0; i < lines.size(); ++i) {
        if (jsonl) {
          cli::print_json({{"text", lines[i]}, {"embedding", embeddings[i]}});
          continue;
        }
        std::string row;
        char buf[32];
        for (const float v : embeddings[i]) {
          std::snprintf(buf, sizeof buf, row.empty() ? "%.7g" : " %.7g", static_cast<double>(v));
          row += buf;
        }
        std::printf("%s\n", row.c_str());
      }
      return 0;
    }

    // --search: the non-empty lines of the file, with their line numbers
    std::vector<std::string> lines;
    std::vector<std::size_t> numbers;
    const auto all = cli::read_lines(search_file);
    for (std::size_t i = 0; i < all.size(); ++i)
      if (all[i].find_first_not_of(" \t") != std::string::npos) lines.push_back(all[i]), numbers.push_back(i + 1);
    if (lines.empty()) throw std::runtime_error("'" + search_file + "' has no lines to search");
    const auto e = open(model_dir);
    const auto q = e.embed({query}, 1).front();
    const auto embeddings = e.embed(lines, batch);
    std::vector<std::pair<double, std::size_t>> scored;
    for (std::size_t i = 0; i < lines.size(); ++i) scored.emplace_back(cosine(q, embeddings[i]), i);
    const auto k = std::min<std::size_t>(static_cast<std::size_t>(top_k), scored.size());
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k), scored.end(),
                      [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
    for (std::size_t r = 0; r < k; ++r) {
      const auto [score, i] = scored[r];
      if (jsonl) cli::print_json({{"rank", r + 1}, {"line", numbers[i]}, {"text", lines[i]}, {"score", score}});
      else std::printf("%.4f\t%s\n", score, lines[i].c_str());
    }
    return 0;
  });
}
