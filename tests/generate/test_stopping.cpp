// generate::stop_strings with Hugging Face StopStringCriteria's documented cases (transformers 5.24,
// generation/stopping_criteria.py): the stop string must overlap the last token, may overhang it
// and may start in earlier tokens (the prompt too). Generation with stop strings against HF
// generate is in test_search.cpp.
#include <tformer/generate/stopping.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace gen = tformer::generate;
using tformer::value_error;

namespace {

// A vocabulary of word pieces; decode concatenates them.
struct pieces {
  std::vector<std::string> strings;
  std::int32_t id(const std::string& s) {
    for (std::size_t i = 0; i < strings.size(); ++i)
      if (strings[i] == s) return static_cast<std::int32_t>(i);
    strings.push_back(s);
    return static_cast<std::int32_t>(strings.size() - 1);
  }
  std::vector<std::int32_t> ids(const std::vector<std::string>& words) {
    std::vector<std::int32_t> out;
    for (const auto& w : words) out.push_back(id(w));
    return out;
  }
  gen::detokenizer decode() const {
    return [this](std::span<const std::int32_t> t) {
      std::string s;
      for (const std::int32_t i : t) s += strings.at(static_cast<std::size_t>(i));
      return s;
    };
  }
};

}  // namespace

TEST_CASE("stop_strings ends a sequence when a stop string reaches into its last token", "[generate][stopping][parity]") {
  pieces v;
  const gen::stop_strings stop({"stop"}, v.decode());
  // HF's docstring: these match
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"st", "op"}, {"stop"}, {"st", "opera"}, {"sto", "pper"}, {"las", "topper"}, {"s", "to", "pped"},
           {"a", "b", "c", "s", "to", "p"}}) {
    INFO(words.size() << " tokens ending " << words.back());
    CHECK(stop(v.ids(words)));
  }
  // ... and these do not: the string lies wholly before the last token
  for (const auto& words : std::vector<std::vector<std::string>>{{"stop", "at"}, {"st", "op", "at"}, {"st", "opera", "tion"}}) {
    INFO(words.size() << " tokens ending " << words.back());
    CHECK_FALSE(stop(v.ids(words)));
  }
  // a string that starts inside the last token does not overlap its start (HF's token tables agree)
  CHECK_FALSE(stop(v.ids({"a", "xstopy"})));
  CHECK_FALSE(stop(std::vector<std::int32_t>{}));
}

TEST_CASE("stop_strings checks every string and only the sequence's tail", "[generate][stopping]") {
  pieces v;
  const gen::stop_strings stop({"\n\n", "END"}, v.decode());
  CHECK(stop(v.ids({"one", "\n", "\n"})));
  CHECK(stop(v.ids({"E", "ND"})));
  CHECK_FALSE(stop(v.ids({"E", "N", "D", "x"})));
  // a long history before the match does not matter; only the last longest + 1 tokens are decoded
  std::vector<std::string> words(500, "w");
  words.push_back("EN");
  words.push_back("D.");
  int decoded = 0;
  const gen::stop_strings counted({"END"}, [&](std::span<const std::int32_t> t) {
    decoded += static_cast<int>(t.size());
    return v.decode()(t);
  });
  CHECK(counted(v.ids(words)));
  CHECK(decoded <= 2 * 4);
  CHECK(stop.strings().size() == 2);
}

TEST_CASE("stop_strings rejects empty strings and an empty detokenizer", "[generate][stopping][errors]") {
  pieces v;
  CHECK(tformer::test::thrown_message<value_error>([&] { gen::stop_strings({"a", ""}, v.decode()); }).find("string 1") !=
        std::string::npos);
  CHECK(tformer::test::thrown_message<value_error>([&] { gen::stop_strings({"a"}, gen::detokenizer{}); }).find("detokenizer") !=
        std::string::npos);
}
