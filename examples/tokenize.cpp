// tformer-tokenize: text to token ids, or ids to text, with any tokenizer: a tokenizer.json, a
// model directory holding one, or a GGUF file's vocabulary. Reads the lines given as arguments,
// or standard input; one output line per input line.
//
//   tformer-tokenize --tokenizer minilm/tokenizer.json "Hello world"      ->  101 7592 2088 102
//   echo "101 7592 2088 102" | tformer-tokenize --tokenizer minilm --decode  ->  [CLS] hello world [SEP]
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {
const cli::program prog{
    "tformer-tokenize",
    "usage: tformer-tokenize --tokenizer FILE|DIR|GGUF [--decode] [--no-special] [--jsonl] [--threads N] [TEXT ...]",
    "\n"
    "Encodes each TEXT (or each line of standard input) to token ids, one line of ids per input line.\n"
    "\n"
    "  --tokenizer PATH  a tokenizer.json, a model directory holding one, or a .gguf file\n"
    "  --decode          read lines of ids (separated by spaces or commas) and print their text\n"
    "  --no-special      encoding: add no special tokens; decoding: leave special tokens out\n"
    "  --jsonl           one JSON object per line: {\"text\", \"ids\", \"tokens\"}\n"
    "  --threads N       number of threads\n"
    "  -h, --help        print this help and exit\n"
    "\n"
    "A bad input line gets an empty output line and \"tformer-tokenize: line N: why\" on standard error.\n"
    "Exit status: 0 done, 1 a bad file or line, 2 a bad command line.\n"};

// The ids of a line like "101 7592, 102"; throws std::runtime_error naming a bad one.
std::vector<std::int32_t> parse_ids(const std::string& line, std::int64_t vocab) {
  std::string s = line;
  for (char& c : s)
    if (c == ',' || c == '[' || c == ']') c = ' ';
  std::istringstream in(s);
  std::vector<std::int32_t> ids;
  for (std::string w; in >> w;) {
    std::size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(w, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != w.size() || id < 0 || id >= vocab) throw std::runtime_error("'" + w + "' is not a token id (0 to " + std::to_string(vocab - 1) + ")");
    ids.push_back(static_cast<std::int32_t>(id));
  }
  return ids;
}
}  // namespace

int main(int argc, char** argv) {
  return cli::run(prog, argc, argv, [](cli::args& a) {
    std::string path;
    bool decode = false, special = true, jsonl = false;
    std::vector<std::string> given;
    while (a.next()) {
      if (a.is("--tokenizer")) path = a.value();
      else if (a.is("--decode")) decode = true;
      else if (a.is("--no-special")) special = false;
      else if (a.is("--jsonl")) jsonl = true;
      else if (a.is("--threads")) tformer::set_num_threads(static_cast<int>(a.integer(1)));
      else if (a.is_option()) a.unknown();
      else given.push_back(a.arg());
    }
    if (path.empty()) throw cli::usage_error("--tokenizer is required");
    const auto tok = cli::open_tokenizer(path);
    const auto lines = cli::inputs_or_stdin(given);

    int status = 0;
    cli::progress progress(decode ? "decoding" : "encoding");
    for (std::size_t n = 0; n < lines.size(); ++n) {
      progress.update(static_cast<std::int64_t>(n), static_cast<std::int64_t>(lines.size()));
      std::vector<std::int32_t> ids;
      std::string text;
      try {
        if (decode) {
          ids = parse_ids(lines[n], tok.vocab_size());
          text = tok.decode(ids, /*skip_special_tokens=*/!special);
        } else {
          text = lines[n];
          ids = tok.encode(text, special);
        }
      } catch (const std::exception& e) {
        progress.done();
        std::fprintf(stderr, "%s: line %zu: %s\n", prog.name, n + 1, cli::one_line(e.what()).c_str());
        std::printf("\n");
        status = 1;
        continue;
      }
      if (jsonl) {
        nlohmann::json tokens = nlohmann::json::array();
        for (const auto id : ids) tokens.push_back(tok.id_to_token(id).value_or(""));
        cli::print_json({{"text", text}, {"ids", ids}, {"tokens", tokens}});
      } else if (decode) {
        std::printf("%s\n", text.c_str());
      } else {
        std::string out;
        for (const auto id : ids) {
          if (!out.empty()) out += ' ';
          out += std::to_string(id);
        }
        std::printf("%s\n", out.c_str());
      }
    }
    return status;
  });
}
