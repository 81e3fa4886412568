// Parity of a tokenizer with the references tools/make_tokenizer_fixtures.py wrote: the corpus
// (tests/data/text/corpus.txt) and, per tokenizer, <name>.ref.bin (per line: a 64-bit FNV-1a
// hash of the ids, a 32-bit one of the decoded text) and <name>.first.json (the full ids of the
// first lines). Mismatching lines are counted; the first ones are printed in full.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#ifndef TFORMER_TEST_DATA_DIR
#error "TFORMER_TEST_DATA_DIR must name tests/data"
#endif

namespace tformer::test {

inline std::string text_data(const std::string& name) { return std::string(TFORMER_TEST_DATA_DIR) + "/text/" + name; }

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The corpus lines (bytes).
inline const std::vector<std::string>& corpus() {
  static const std::vector<std::string> lines = [] {
    std::vector<std::string> out;
    const std::string all = read_all(text_data("corpus.txt"));
    std::size_t b = 0;
    for (std::size_t e = all.find('\n'); e != std::string::npos; e = all.find('\n', b)) {
      out.push_back(all.substr(b, e - b));
      b = e + 1;
    }
    return out;
  }();
  return lines;
}

inline std::uint64_t fnv64_ids(const std::vector<std::int32_t>& ids) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const std::int32_t id : ids)
    for (int k = 0; k < 4; ++k) {
      h ^= (static_cast<std::uint32_t>(id) >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  return h;
}
inline std::uint32_t fnv32(const std::string& s) {
  std::uint32_t h = 0x811c9dc5u;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x01000193u;
  }
  return h;
}

struct parity_result {
  std::size_t lines = 0, id_mismatches = 0, decode_mismatches = 0;
};

inline std::string ids_string(const std::vector<std::int32_t>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

/// Runs encode and decode on every corpus line and compares with the references of `name`.
inline parity_result check_parity(const std::string& name, const std::function<std::vector<std::int32_t>(const std::string&)>& encode,
                                  const std::function<std::string(const std::vector<std::int32_t>&)>& decode, int show = 5) {
  parity_result r;
  const std::string ref = read_all(text_data(name + ".ref.bin"));
  const auto first = nlohmann::json::parse(read_all(text_data(name + ".first.json"))).at("ids");
  const auto& lines = corpus();
  std::uint32_t n = 0;
  if (ref.size() >= 4) std::memcpy(&n, ref.data(), 4);
  if (n != lines.size() || ref.size() != 4 + 12 * static_cast<std::size_t>(n)) {
    std::printf("%s: the references hold %u lines, the corpus %zu\n", name.c_str(), n, lines.size());
    r.id_mismatches = r.decode_mismatches = lines.size();
    return r;
  }
  int shown = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::uint64_t want_ids;
    std::uint32_t want_text;
    std::memcpy(&want_ids, ref.data() + 4 + 12 * i, 8);
    std::memcpy(&want_text, ref.data() + 12 + 12 * i, 4);
    const auto ids = encode(lines[i]);
    const std::string text = decode(ids);
    ++r.lines;
    const bool id_ok = fnv64_ids(ids) == want_ids, text_ok = fnv32(text) == want_text;
    r.id_mismatches += !id_ok;
    r.decode_mismatches += !text_ok;
    if ((!id_ok || !text_ok) && shown < show) {
      ++shown;
      std::printf("%s line %zu: \"%s\"\n  got  %s\n", name.c_str(), i, lines[i].c_str(), ids_string(ids).c_str());
      if (i < first.size()) std::printf("  want %s\n", ids_string(first[i].get<std::vector<std::int32_t>>()).c_str());
      if (!text_ok) std::printf("  decoded \"%s\" (hash differs)\n", text.c_str());
    }
  }
  std::printf("%s: %zu lines, %zu id mismatches, %zu decode mismatches\n", name.c_str(), r.lines, r.id_mismatches, r.decode_mismatches);
  return r;
}

}  // namespace tformer::test
