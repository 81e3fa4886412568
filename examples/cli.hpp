// What the command-line programs (embed, generate, transcribe, tokenize) share: reading options,
// the one-line error with its exit status, the progress line, JSON lines, opening a tokenizer.
//
// Exit statuses: 0 done, 1 a bad file or a failure while working, 2 a bad command line. Errors are
// one line on standard error, "tformer-NAME: why". The progress line appears only when standard
// error is a terminal and the work has taken over a second.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tformer/io/gguf.hpp>
#include <tformer/text.hpp>
#include <tformer/tformer.hpp>

namespace cli {

/// @brief A bad command line: main prints why and the usage line, and exits 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// @brief A program: its name (as errors are prefixed), its usage line and its --help text.
struct program {
  const char* name;
  const char* usage;  // "usage: tformer-x ...", without the newline
  const char* help;   // what follows the usage line for --help
};

/// @brief Reads argv one argument at a time; value(), integer() and number() take the option's value.
class args {
 public:
  args(int argc, char** argv) : argc_(argc), argv_(argv) {}
  bool next() { return ++i_ < argc_; }
  const std::string& arg() {
    cur_ = argv_[i_];
    return cur_;
  }
  bool is(const char* a, const char* b = nullptr) const {
    const std::string s = argv_[i_];
    return s == a || (b && s == b);
  }
  /// @brief True for an option ("-x", "--x"); "-" alone is an input.
  bool is_option() const { return argv_[i_][0] == '-' && argv_[i_][1] != '\0'; }
  std::string value() {
    const std::string name = argv_[i_];
    if (i_ + 1 >= argc_) throw usage_error(name + " needs a value");
    return argv_[++i_];
  }
  std::int64_t integer(std::int64_t at_least) {
    const std::string name = argv_[i_], v = value();
    std::size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size()) throw usage_error(name + " needs a whole number, got '" + v + "'");
    if (n < at_least) throw usage_error(name + " must be at least " + std::to_string(at_least) + ", got " + v);
    return n;
  }
  double number() {
    const std::string name = argv_[i_], v = value();
    std::size_t used = 0;
    double x = 0;
    try {
      x = std::stod(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size()) throw usage_error(name + " needs a number, got '" + v + "'");
    return x;
  }
  /// @brief Throws the "unknown option" usage error for the current argument.
  [[noreturn]] void unknown() const { throw usage_error(std::string("unknown option ") + argv_[i_]); }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string cur_;
};

/// @brief Text on one line: line breaks (load errors list problems on several) become "; ", and the
/// library's "tformer: " prefix goes (the program names itself).
inline std::string one_line(std::string s) {
  if (s.rfind("tformer: ", 0) == 0) s.erase(0, 9);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  for (std::size_t p; (p = s.find('\n')) != std::string::npos;) s.replace(p, 1, "; ");
  return s;
}

/// @brief Runs body(args) and turns what it throws into the program's one-line error and exit status.
template <class Body>
int run(const program& p, int argc, char** argv, Body&& body) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s\n%s", p.usage, p.help);
      return 0;
    }
  }
  try {
    args a(argc, argv);
    return body(a);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "%s: %s\n%s\n", p.name, one_line(e.what()).c_str(), p.usage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", p.name, one_line(e.what()).c_str());
    return 1;
  }
}

/// @brief The lines of a file; std::runtime_error when it cannot be read.
inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  if (in.bad()) throw std::runtime_error("cannot read '" + path + "'");
  return lines;
}

/// @brief The inputs given as arguments, or else the lines of standard input.
inline std::vector<std::string> inputs_or_stdin(std::vector<std::string> given) {
  if (!given.empty()) return given;
  for (std::string line; std::getline(std::cin, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    given.push_back(line);
  }
  return given;
}

/// @brief One JSON object on one line of standard output (invalid UTF-8 shown as U+FFFD).
inline void print_json(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  s += '\n';
  std::fwrite(s.data(), 1, s.size(), stdout);
}

/// @brief "what done/total" on standard error, rewritten in place, once the work has taken over a
/// second, and only when standard error is a terminal; cleared by done() or the destructor.
class progress {
 public:
  explicit progress(std::string what) : what_(std::move(what)), tty_(isatty(fileno(stderr)) != 0) {}
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;
  ~progress() { done(); }
  void update(std::int64_t done_count, std::int64_t total = 0) {
    if (!tty_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (s < 1.0) return;
    if (total > 0)
      std::fprintf(stderr, "\r%s %lld/%lld (%.0f s)", what_.c_str(), static_cast<long long>(done_count),
                   static_cast<long long>(total), s);
    else
      std::fprintf(stderr, "\r%s %lld (%.0f s)", what_.c_str(), static_cast<long long>(done_count), s);
    std::fflush(stderr);
    shown_ = true;
  }
  void done() {
    if (shown_) std::fputs("\r\033[K", stderr);
    shown_ = false;
  }

 private:
  std::string what_;
  bool tty_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// @brief True when path is a GGUF file (by its magic bytes).
inline bool is_gguf(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

/// @brief A tokenizer from a tokenizer.json, a directory holding one, or a GGUF file's vocabulary.
inline tformer::text::tokenizer open_tokenizer(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    const auto file = path / "tokenizer.json";
    if (!std::filesystem::exists(file, ec)) throw std::runtime_error("'" + path.string() + "' has no tokenizer.json");
    return tformer::text::tokenizer::from_file(file);
  }
  if (!std::filesystem::exists(path, ec)) throw std::runtime_error("cannot open '" + path.string() + "'");
  if (is_gguf(path)) return tformer::text::tokenizer_from_gguf(tformer::io::gguf_file(path.string()));
  return tformer::text::tokenizer::from_file(path);
}

}  // namespace cli
