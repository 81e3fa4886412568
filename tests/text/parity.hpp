// Parity of a tokenizer with the references tools/make_tokenizer_fixtures.py wrote: the corpus
// (tests/data/text/corpus.txt) and, per tokenizer, <name>.ref.bin (per line: a 64-bit FNV-1a
// hash of the ids, a 32-bit one of the decoded text) and <name>.first.json (the full ids of the
// first lines); and the encodings of pairs, truncation and padding (check_encodings below).
// Mismatching lines are counted; the first ones are printed in full.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tformer/text.hpp>

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

// Encodings (pairs, truncation, padding) against tests/data/text/encoding.json and
// encoding.ref.bin (tools/make_tokenizer_fixtures.py): per case, a tokenizer file with some of its
// sections replaced, the corpus as singles (line k) or pairs (lines 2k, 2k+1), encoded one by one
// or in batches; per input, the high half of a 64-bit FNV-1a over ids, type ids, attention mask and
// special tokens mask (0: Hugging Face raised an error, so tformer must throw value_error).
namespace tformer::test {

inline std::uint32_t encoding_hash(const text::encoding& e) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  const auto byte = [&](std::uint32_t b) {
    h ^= b & 0xFF;
    h *= 0x100000001b3ull;
  };
  for (const auto* v : {&e.ids, &e.type_ids, &e.attention_mask, &e.special_tokens_mask}) {
    const auto n = static_cast<std::uint32_t>(v->size());
    for (int k = 0; k < 4; ++k) byte(n >> (8 * k));
    for (const std::int32_t x : *v)
      for (int k = 0; k < 4; ++k) byte(static_cast<std::uint32_t>(x) >> (8 * k));
  }
  return static_cast<std::uint32_t>(h >> 32);
}

inline std::string encoding_string(const text::encoding& e) {
  return "ids " + ids_string(e.ids) + " types " + ids_string(e.type_ids) + " attention " + ids_string(e.attention_mask) + " special " +
         ids_string(e.special_tokens_mask);
}

// Hugging Face's JSON, read here by hand (the test of enable_truncation / enable_padding must not
// lean on the library's own readers)
inline text::truncation_params truncation_from(const nlohmann::json& j) {
  text::truncation_params p;
  p.max_length = j.at("max_length").get<std::size_t>();
  const std::string s = j.at("strategy");
  p.strategy = s == "LongestFirst" ? text::truncation_strategy::longest_first
               : s == "OnlyFirst"  ? text::truncation_strategy::only_first
                                   : text::truncation_strategy::only_second;
  p.direction = j.at("direction") == "Left" ? text::side::left : text::side::right;
  p.stride = j.at("stride").get<std::size_t>();
  return p;
}
inline text::padding_params padding_from(const nlohmann::json& j) {
  text::padding_params p;
  if (j.at("strategy").is_object()) p.length = j.at("strategy").at("Fixed").get<std::size_t>();
  p.direction = j.at("direction") == "Left" ? text::side::left : text::side::right;
  p.pad_to_multiple_of = j.at("pad_to_multiple_of").is_null() ? 0 : j.at("pad_to_multiple_of").get<std::size_t>();
  p.pad_id = j.at("pad_id").get<std::int32_t>();
  p.pad_type_id = j.at("pad_type_id").get<std::int32_t>();
  p.pad_token = j.at("pad_token").get<std::string>();
  return p;
}

struct encoding_result {
  std::size_t cases = 0, inputs = 0, errors = 0, mismatches = 0;
};

/// Runs the cases whose tokenizer is a file of tests/data/text/ (real_weights empty) or, with
/// real_weights, those under it ("real:<path>"); each twice: with the sections in the JSON, and
/// with them off in the JSON and set by enable_truncation / enable_padding.
/// fraction < 1 checks only the first part of each case's inputs (the unoptimized sanitizer build).
inline encoding_result check_encodings(const std::string& real_weights = "", int show = 3, double fraction = 1.0) {
  encoding_result r;
  const auto manifest = nlohmann::json::parse(read_all(text_data("encoding.json")));
  const std::string ref = read_all(text_data("encoding.ref.bin"));
  const auto& lines = corpus();
  std::map<std::string, nlohmann::json> files;
  int shown = 0;
  for (const auto& c : manifest.at("cases")) {
    const std::string file = c.at("tokenizer");
    const bool real = file.rfind("real:", 0) == 0;
    if (real != !real_weights.empty()) continue;
    if (!files.count(file)) files[file] = nlohmann::json::parse(read_all(real ? real_weights + "/" + file.substr(5) : text_data(file)));
    const std::string name = c.at("name");
    const auto& set = c.at("set");
    auto in_json = files[file], in_code = files[file];
    for (const auto& [k, v] : set.items()) in_json[k] = v;
    if (set.contains("post_processor")) in_code["post_processor"] = set.at("post_processor");
    in_code["truncation"] = nullptr;
    in_code["padding"] = nullptr;
    auto code = text::tokenizer::from_json(in_code.dump(), name);
    if (!set.at("truncation").is_null()) code.enable_truncation(truncation_from(set.at("truncation")));
    if (!set.at("padding").is_null()) code.enable_padding(padding_from(set.at("padding")));
    const text::tokenizer& t_code = code;
    const auto t_json = text::tokenizer::from_json(in_json.dump(), name);

    const bool pair = c.at("input") == "pair", special = c.at("add_special_tokens");
    const std::size_t count = c.at("count"), offset = c.at("offset");
    std::vector<std::size_t> batches;
    if (c.at("batch").is_null()) batches.assign(count, 0);  // 0: encode one at a time
    else batches = c.at("batch").get<std::vector<std::size_t>>();
    std::size_t case_mismatches = 0, case_errors = 0;
    const auto limit = static_cast<std::size_t>(static_cast<double>(count) * fraction);
    std::size_t checked = count;
    for (const text::tokenizer* t : {&t_json, &t_code}) {
      std::vector<std::uint32_t> got;
      std::vector<text::encoding> encodings;
      std::size_t k = 0;
      for (const std::size_t size : batches) {
        if (k > 0 && k >= limit) break;  // whole batches: at least one, then up to the limit
        const std::size_t n = size ? size : 1;
        try {
          if (size == 0 && pair) encodings.push_back(t->encode_pair(lines[2 * k], lines[2 * k + 1], special));
          else if (size == 0) encodings.push_back(t->encode_single(lines[k], special));
          else if (pair) {
            std::vector<std::pair<std::string, std::string>> in;
            for (std::size_t i = k; i < k + n; ++i) in.emplace_back(lines[2 * i], lines[2 * i + 1]);
            for (auto& e : t->encode_pair_batch(in, special)) encodings.push_back(std::move(e));
          } else {
            const std::vector<std::string> in(lines.begin() + static_cast<std::ptrdiff_t>(k), lines.begin() + static_cast<std::ptrdiff_t>(k + n));
            for (auto& e : t->encode_batch(in, special)) encodings.push_back(std::move(e));
          }
          for (std::size_t i = encodings.size() - n; i < encodings.size(); ++i) got.push_back(encoding_hash(encodings[i]));
        } catch (const value_error&) {
          for (std::size_t i = 0; i < n; ++i) got.push_back(0), encodings.emplace_back();
        }
        k += n;
      }
      checked = k;
      for (std::size_t i = 0; i < checked; ++i) {
        std::uint32_t want = 0;
        std::memcpy(&want, ref.data() + offset + 4 * i, 4);
        case_errors += t == &t_json && want == 0;
        if (got[i] == want) continue;
        ++case_mismatches;
        if (shown++ < show) {
          std::printf("%s (%s) input %zu:\n  got  %s\n", name.c_str(), t == &t_json ? "from the JSON" : "set in code", i,
                      got[i] ? encoding_string(encodings[i]).c_str() : "an error");
          if (i < c.at("first").size()) std::printf("  want %s\n", c.at("first")[i].dump().c_str());
        }
      }
    }
    std::printf("%s: %zu inputs%s, %zu mismatches\n", name.c_str(), checked,
                case_errors ? (" (" + std::to_string(case_errors) + " errors)").c_str() : "", case_mismatches);
    ++r.cases;
    r.inputs += checked;
    r.errors += case_errors;
    r.mismatches += case_mismatches;
  }
  std::printf("encodings: %zu cases, %zu inputs (%zu errors), %zu mismatches\n", r.cases, r.inputs, r.errors, r.mismatches);
  return r;
}

}  // namespace tformer::test
