// generate::processors against Hugging Face transformers 5.23.0 (torch 2.15) run on fixed rows:
// TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper,
// RepetitionPenaltyLogitsProcessor and LogitsProcessorList, with their defaults (filter_value=-inf,
// min_tokens_to_keep=1); NoRepeatNGramLogitsProcessor, MinNewTokensLengthLogitsProcessor,
// SuppressTokensLogitsProcessor and SuppressTokensAtBeginLogitsProcessor with transformers 5.24. Each expected row was printed in Python as, e.g.
//   X = torch.tensor([kRow]); ids = torch.tensor([kTokens])
//   TopPLogitsWarper(0.3)(ids, X.clone())
// Values are compared exactly: torch divides / multiplies a float32 row by the float32-rounded
// scalar, as tformer does. Every top_p / min_p decision on kRow lies at least 3.5e-3 from its
// threshold in HF's float32 arithmetic (1.6e-5 on the 1000-token row), far above the ~1e-7
// difference between its float32 softmax and tformer's double one, so the masks must agree.
// sample() is checked against a Python re-implementation of its documented rule (HF draws with
// torch.multinomial, whose generator tformer does not reproduce) and against the distribution.
#include <tformer/generate/processors.hpp>
#include <tformer/nn/parameters.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace gen = tformer::generate;
using tformer::value_error;
using tformer::nn::portable_rng;

namespace {

constexpr float ninf = -std::numeric_limits<float>::infinity();

// 12 scores with ties (3.0 twice, 2.0 twice) and two masked tokens.
const std::vector<float> kRow = {1.5f, -0.5f, 3.0f, 3.0f, ninf, 0.25f, 2.0f, -2.0f, 2.0f, 0.0f, ninf, 1.0f};
// The sequence so far: repeats (2, 7), a masked id (4), a zero score (9) and an id past the
// vocabulary (12, ignored by HF).
const std::vector<std::int32_t> kTokens = {2, 7, 9, 2, 4, 12, 0, 5, 7};

/// The row after p(kTokens, row).
template <class P>
std::vector<float> run(const P& p, std::vector<float> row = kRow) {
  p(std::span<const std::int32_t>(kTokens), std::span<float>(row));
  return row;
}

/// 1 where a score survived, 0 where it is -inf.
std::vector<int> kept(const std::vector<float>& row) {
  std::vector<int> k;
  for (const float x : row) k.push_back(x != ninf ? 1 : 0);
  return k;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// A user-defined processor: never emit these ids (HF's SuppressTokensLogitsProcessor).
struct banned_tokens {
  std::vector<std::int32_t> ids;
  void operator()(std::span<const std::int32_t>, std::span<float> logits) const {
    for (const std::int32_t id : ids)
      if (id >= 0 && static_cast<std::size_t>(id) < logits.size()) logits[static_cast<std::size_t>(id)] = ninf;
  }
};

/// Appends its id to a log when called: shows the order a chain runs in.
struct recorder {
  std::vector<int>* log;
  int id;
  void operator()(std::span<const std::int32_t>, std::span<float>) const { log->push_back(id); }
};

/// Not a processor: its call operator is not const.
struct mutating {
  void operator()(std::span<const std::int32_t>, std::span<float>) {}
};

/// The 1000-score row of the long tests: float((2u - 1) * 6) from portable_rng(7).
std::vector<float> long_row() {
  portable_rng rng(7);
  std::vector<float> row(1000);
  for (float& x : row) x = static_cast<float>((2.0 * rng.uniform() - 1.0) * 6.0);
  return row;
}

}  // namespace

static_assert(gen::logits_processor<banned_tokens>);
static_assert(gen::logits_processor<gen::chain<banned_tokens, gen::chain<gen::top_k, gen::no_processing>>>);
static_assert(!gen::logits_processor<mutating>);
static_assert(!gen::logits_processor<int>);

TEST_CASE("temperature divides every score like TemperatureLogitsWarper", "[generate][processors][parity]") {
  CHECK(run(gen::temperature(0.7f)) == std::vector<float>{2.142857f, -0.71428573f, 4.285714f, 4.285714f, ninf,
                                                         0.35714287f, 2.857143f, -2.857143f, 2.857143f, 0.0f, ninf,
                                                         1.4285715f});
  CHECK(run(gen::temperature(1.3f)) == std::vector<float>{1.1538461f, -0.3846154f, 2.3076923f, 2.3076923f, ninf,
                                                         0.1923077f, 1.5384616f, -1.5384616f, 1.5384616f, 0.0f, ninf,
                                                         0.7692308f});
  CHECK(gen::temperature(0.7f).value() == 0.7f);
}

TEST_CASE("top_k keeps every score tied with the k-th like TopKLogitsWarper", "[generate][processors][parity]") {
  // k = 1 keeps both 3.0s; k = 3 keeps both 2.0s; k = 11 reaches a masked score; k > vocab
  CHECK(kept(run(gen::top_k(1))) == std::vector<int>{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(kept(run(gen::top_k(3))) == std::vector<int>{0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0});
  CHECK(kept(run(gen::top_k(5))) == std::vector<int>{1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0});
  CHECK(kept(run(gen::top_k(11))) == std::vector<int>{1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1});
  CHECK(kept(run(gen::top_k(20))) == std::vector<int>{1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1});
  // the kept scores are untouched
  const auto out = run(gen::top_k(5));
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] != ninf) CHECK(out[i] == kRow[i]);
}

TEST_CASE("top_p follows TopPLogitsWarper's sorted cumulative rule", "[generate][processors][parity]") {
  // p = 0.3 splits the tie of 3.0s: sorted ascending, index 2 precedes index 3 and its cumulative
  // probability (0.692) is <= 0.7, so HF keeps index 3 alone
  CHECK(kept(run(gen::top_p(0.3f))) == std::vector<int>{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(kept(run(gen::top_p(0.5f))) == std::vector<int>{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(kept(run(gen::top_p(0.8f))) == std::vector<int>{0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0});
  CHECK(kept(run(gen::top_p(0.95f))) == std::vector<int>{1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1});
  CHECK(kept(run(gen::top_p(1.0f))) == std::vector<int>{1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1});
  // the top token survives however small p is
  CHECK(kept(run(gen::top_p(1e-6f), {0.0f, 9.0f, 1.0f})) == std::vector<int>{0, 1, 0});
}

TEST_CASE("min_p masks probabilities below p * max like MinPLogitsWarper", "[generate][processors][parity]") {
  CHECK(kept(run(gen::min_p(0.0f))) == std::vector<int>{1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1});
  CHECK(kept(run(gen::min_p(0.1f))) == std::vector<int>{1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1});
  CHECK(kept(run(gen::min_p(0.3f))) == std::vector<int>{0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0});
  CHECK(kept(run(gen::min_p(0.5f))) == std::vector<int>{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(kept(run(gen::min_p(1.0f))) == std::vector<int>{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("repetition_penalty scales each distinct seen token once like RepetitionPenaltyLogitsProcessor",
          "[generate][processors][parity]") {
  // ids 2 and 7 occur twice but are penalized once; 4 stays -inf, 9 stays 0, 12 is past the vocab
  CHECK(run(gen::repetition_penalty(1.3f)) == std::vector<float>{1.1538461f, -0.5f, 2.3076923f, 3.0f, ninf, 0.1923077f,
                                                                2.0f, -2.6f, 2.0f, 0.0f, ninf, 1.0f});
  CHECK(run(gen::repetition_penalty(0.7f)) == std::vector<float>{2.142857f, -0.5f, 4.285714f, 3.0f, ninf, 0.35714287f,
                                                                2.0f, -1.4f, 2.0f, 0.0f, ninf, 1.0f});
  // no tokens: nothing changes
  std::vector<float> row = kRow;
  gen::repetition_penalty(1.3f)({}, row);
  CHECK(row == kRow);
}

TEST_CASE("chains apply their processors in order, matching LogitsProcessorList", "[generate][processors][parity]") {
  // each pair differs only in order, and the orders give different rows (HF gives the same ones)
  CHECK(run(gen::make_chain(gen::temperature(0.5f), gen::top_p(0.7f))) ==
        std::vector<float>{ninf, ninf, 6.0f, 6.0f, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf});
  CHECK(run(gen::make_chain(gen::top_p(0.7f), gen::temperature(0.5f))) ==
        std::vector<float>{ninf, ninf, 6.0f, 6.0f, ninf, ninf, ninf, ninf, 4.0f, ninf, ninf, ninf});
  CHECK(run(gen::make_chain(gen::repetition_penalty(2.0f), gen::top_k(3))) ==
        std::vector<float>{ninf, ninf, ninf, 3.0f, ninf, ninf, 2.0f, ninf, 2.0f, ninf, ninf, ninf});
  CHECK(run(gen::make_chain(gen::top_k(3), gen::repetition_penalty(2.0f))) ==
        std::vector<float>{ninf, ninf, 1.5f, 3.0f, ninf, ninf, 2.0f, ninf, 2.0f, ninf, ninf, ninf});
  CHECK(run(gen::make_chain(gen::temperature(0.5f), gen::min_p(0.2f))) ==
        std::vector<float>{ninf, ninf, 6.0f, 6.0f, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf});
  CHECK(run(gen::make_chain(gen::min_p(0.2f), gen::temperature(0.5f))) ==
        std::vector<float>{3.0f, ninf, 6.0f, 6.0f, ninf, ninf, 4.0f, ninf, 4.0f, ninf, ninf, ninf});

  // the order of calls, through a nested chain
  std::vector<int> log;
  const auto c = gen::make_chain(recorder{&log, 1}, gen::make_chain(recorder{&log, 2}, recorder{&log, 3}),
                                 recorder{&log, 4});
  run(c);
  CHECK(log == std::vector<int>{1, 2, 3, 4});
  CHECK(c.size() == 3);
  CHECK(c.get<1>().size() == 2);

  // the empty chain and no_processing change nothing
  CHECK(run(gen::chain<>()) == kRow);
  CHECK(run(gen::no_processing{}) == kRow);
}

TEST_CASE("a user-defined processor composes with the built-in ones", "[generate][processors]") {
  // ban the two 3.0s, then keep the top 2 of what is left: the two 2.0s
  const auto c = gen::make_chain(banned_tokens{{2, 3, 99}}, gen::top_k(2));
  CHECK(kept(run(c)) == std::vector<int>{0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0});
  // a lambda is a processor too
  const auto halve = [](std::span<const std::int32_t>, std::span<float> logits) {
    for (float& x : logits) x *= 0.5f;
  };
  static_assert(gen::logits_processor<decltype(halve)>);
  CHECK(run(gen::make_chain(halve, gen::temperature(0.5f))) == kRow);
}

TEST_CASE("on 1000 scores, top_p, min_p and top_k keep as many tokens as HF", "[generate][processors][parity]") {
  const auto row = long_row();
  // the Python side rebuilt the row with SplitMix64: check that both sides agree on it
  CHECK(row[0] == -1.3220431f);
  CHECK(row[1] == -5.7985406f);
  CHECK(row[2] == 4.8091283f);
  CHECK(row[3] == 0.9951635f);
  // {processor, kept count printed by HF}
  const auto count = [&](const auto& p, std::size_t expect) {
    const auto out = run(p, row);
    std::size_t n = 0;
    float lowest_kept = std::numeric_limits<float>::infinity(), highest_masked = ninf;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i] != ninf) {
        ++n;
        CHECK(out[i] == row[i]);
        lowest_kept = std::min(lowest_kept, row[i]);
      } else {
        highest_masked = std::max(highest_masked, row[i]);
      }
    }
    CHECK(n == expect);
    CHECK(lowest_kept > highest_masked);  // the kept tokens are the top ones
  };
  count(gen::top_p(0.5f), 54);
  count(gen::top_p(0.9f), 181);
  count(gen::top_p(0.99f), 364);
  count(gen::min_p(0.05f), 238);
  count(gen::min_p(0.2f), 124);
  count(gen::min_p(0.6f), 43);
  count(gen::top_k(1), 1);
  count(gen::top_k(50), 50);
  count(gen::top_k(999), 999);
}

TEST_CASE("rows without probabilities are left alone by top_p and min_p", "[generate][processors]") {
  const std::vector<float> masked(5, ninf);
  CHECK(kept(run(gen::top_p(0.5f), masked)) == std::vector<int>(5, 0));
  CHECK(kept(run(gen::min_p(0.5f), masked)) == std::vector<int>(5, 0));
  CHECK(run(gen::top_k(2), masked) == masked);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const auto& row : {std::vector<float>{1.0f, nan, 3.0f}, std::vector<float>{1.0f, -ninf, 3.0f}}) {
    CHECK(kept(run(gen::top_p(0.1f), row)) == std::vector<int>{1, 1, 1});
    CHECK(kept(run(gen::min_p(0.9f), row)) == std::vector<int>{1, 1, 1});
  }
  CHECK(run(gen::top_p(0.5f), {}).empty());
  CHECK(run(gen::min_p(0.5f), {}).empty());
  CHECK(run(gen::top_k(1), {}).empty());
}

TEST_CASE("argmax returns the first index of the largest score", "[generate][argmax]") {
  CHECK(gen::argmax(kRow) == 2);  // 3.0 at indices 2 and 3
  CHECK(gen::argmax(std::vector<float>{ninf, ninf, -7.0f, ninf}) == 2);
  CHECK(gen::argmax(std::vector<float>{ninf, ninf}) == 0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(gen::argmax(std::vector<float>{nan, 2.0f, 5.0f, nan, 5.0f}) == 2);  // NaN never wins
  CHECK(gen::argmax(std::vector<float>{nan, nan}) == 0);
  CHECK(contains(tformer::test::thrown_message<value_error>([] { gen::argmax({}); }), "argmax"));
}

TEST_CASE("sample is reproducible for a seed", "[generate][sample]") {
  // from a Python re-implementation of the rule (SplitMix64, exp(x - max) in double, index order)
  portable_rng rng(42);
  std::vector<std::int32_t> drawn;
  for (int i = 0; i < 16; ++i) drawn.push_back(gen::sample(kRow, rng));
  CHECK(drawn == std::vector<std::int32_t>{6, 2, 2, 2, 0, 8, 2, 6, 2, 3, 2, 3, 3, 3, 3, 2});

  // one uniform draw per call: the generator ends where 16 draws leave it
  portable_rng reference(42);
  for (int i = 0; i < 16; ++i) reference.next();
  CHECK(rng.next() == reference.next());

  // a single unmasked token is always drawn
  portable_rng r2(3);
  const std::vector<float> one = {ninf, ninf, 0.5f, ninf};
  for (int i = 0; i < 100; ++i) REQUIRE(gen::sample(one, r2) == 2);
}

TEST_CASE("sample follows softmax over many draws", "[generate][sample]") {
  // Pearson's chi-square over the 10 unmasked tokens (9 degrees of freedom) with 100000 draws.
  // Bound: 27.88, the 99.9% quantile of chi2(9); with the fixed seed the statistic is a fixed
  // number, so this says that the sampler's output is indistinguishable from softmax at 0.1%.
  constexpr int draws = 100000;
  std::vector<double> prob(kRow.size(), 0.0);
  double total = 0.0;
  for (std::size_t i = 0; i < kRow.size(); ++i) total += prob[i] = std::exp(static_cast<double>(kRow[i]) - 3.0);
  for (double& p : prob) p /= total;

  portable_rng rng(2024);
  std::vector<int> counts(kRow.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[static_cast<std::size_t>(gen::sample(kRow, rng))];
  double chi2 = 0.0;
  for (std::size_t i = 0; i < kRow.size(); ++i) {
    if (prob[i] == 0.0) {
      CHECK(counts[i] == 0);  // masked tokens are never drawn
      continue;
    }
    const double expect = prob[i] * draws;
    chi2 += (counts[i] - expect) * (counts[i] - expect) / expect;
  }
  INFO("chi-square " << chi2);
  CHECK(chi2 < 27.88);

  // after top_k(3) only the four tokens tied at or above 2.0 can be drawn
  const auto filtered = run(gen::top_k(3));
  for (int i = 0; i < 1000; ++i) {
    const auto t = gen::sample(filtered, rng);
    REQUIRE((t == 2 || t == 3 || t == 6 || t == 8));
  }
}

TEST_CASE("bad arguments throw value_error naming the processor and the value", "[generate][errors]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto message = [](auto make) { return tformer::test::thrown_message<value_error>(make); };
  const auto names = [](const std::string& msg, const std::string& who, const std::string& value) {
    INFO(msg);
    CHECK(contains(msg, "tformer::generate::" + who));
    CHECK(contains(msg, "got " + value));
  };
  names(message([] { (void)gen::temperature(0.0f); }), "temperature", "0");
  names(message([] { (void)gen::temperature(-1.5f); }), "temperature", "-1.5");
  names(message([&] { (void)gen::temperature(-ninf); }), "temperature", "inf");
  names(message([&] { (void)gen::temperature(nan); }), "temperature", "nan");
  names(message([] { (void)gen::top_k(0); }), "top_k", "0");
  names(message([] { (void)gen::top_k(-3); }), "top_k", "-3");
  names(message([] { (void)gen::top_p(0.0f); }), "top_p", "0");
  names(message([] { (void)gen::top_p(1.5f); }), "top_p", "1.5");
  names(message([&] { (void)gen::top_p(nan); }), "top_p", "nan");
  names(message([] { (void)gen::min_p(-0.1f); }), "min_p", "-0.1");
  names(message([] { (void)gen::min_p(1.01f); }), "min_p", "1.01");
  names(message([&] { (void)gen::min_p(nan); }), "min_p", "nan");
  names(message([] { (void)gen::repetition_penalty(0.0f); }), "repetition_penalty", "0");
  names(message([&] { (void)gen::repetition_penalty(-ninf); }), "repetition_penalty", "inf");

  // a negative token id
  const auto neg = message([] {
    std::vector<float> row = kRow;
    const std::vector<std::int32_t> tokens = {3, -2};
    gen::repetition_penalty(1.2f)(tokens, row);
  });
  CHECK(contains(neg, "repetition_penalty"));
  CHECK(contains(neg, "-2"));

  // sample: a fully masked row, NaN, +inf, empty; the generator is not advanced
  portable_rng rng(1), untouched(1);
  const auto all_masked = message([&] { (void)gen::sample(std::vector<float>(4, ninf), rng); });
  CHECK(contains(all_masked, "sample"));
  CHECK(contains(all_masked, "-inf"));
  const auto with_nan = message([&] { (void)gen::sample(std::vector<float>{0.0f, nan}, rng); });
  CHECK(contains(with_nan, "nan"));
  CHECK(contains(with_nan, "index 1"));
  CHECK(contains(message([&] { (void)gen::sample(std::vector<float>{-ninf, 0.0f}, rng); }), "index 0"));
  CHECK(contains(message([&] { (void)gen::sample({}, rng); }), "empty"));
  CHECK(rng.next() == untouched.next());
}

TEST_CASE("no_repeat_ngram bans the tokens that would repeat an n-gram like NoRepeatNGramLogitsProcessor",
          "[generate][processors][parity]") {
  // kTokens = 2 7 9 2 4 12 0 5 7: n = 1 bans every id seen (12 is past the vocab); n = 2 bans what
  // followed earlier 7s (9); n >= 3 finds no earlier (5, 7) or longer match
  CHECK(kept(run(gen::no_repeat_ngram(1))) == std::vector<int>{0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1});
  CHECK(kept(run(gen::no_repeat_ngram(2))) == std::vector<int>{1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1});
  for (std::int64_t n : {3, 4, 9, 10}) CHECK(kept(run(gen::no_repeat_ngram(n))) == kept(kRow));
  // ... 7 9 at the end: (7, 9) was followed by 2, so n = 2 (after 9: 2) and n = 3 (after 7 9: 2) ban 2
  std::vector<float> row = kRow;
  const std::vector<std::int32_t> more = {2, 7, 9, 2, 4, 12, 0, 5, 7, 9};
  gen::no_repeat_ngram(2)(more, row);
  CHECK(kept(row) == std::vector<int>{1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1});
  row = kRow;
  gen::no_repeat_ngram(3)(more, row);
  CHECK(kept(row) == std::vector<int>{1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1});
  // untouched scores keep their values
  const auto out = run(gen::no_repeat_ngram(2));
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] != ninf) CHECK(out[i] == kRow[i]);
}

TEST_CASE("min_new_tokens masks the end ids until enough tokens were generated like MinNewTokensLengthLogitsProcessor",
          "[generate][processors][parity]") {
  const gen::min_new_tokens p(3, {3, 6, 40});  // 40 is past the vocab
  const auto with_prompt = [&](std::int64_t prompt) {
    std::vector<float> row = kRow;
    p(kTokens, prompt, row);
    return kept(row);
  };
  CHECK(with_prompt(5) == kept(kRow));  // 4 generated >= 3
  CHECK(with_prompt(8) == std::vector<int>{1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1});
  CHECK(with_prompt(9) == std::vector<int>{1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1});
  CHECK(p.count() == 3);
}

TEST_CASE("suppress_tokens and begin_suppress_tokens mask like HF's Suppress processors", "[generate][processors][parity]") {
  const std::vector<std::int32_t> ids = {0, 3, 11, 40};
  CHECK(kept(run(gen::suppress_tokens(ids))) == std::vector<int>{0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0});
  const gen::begin_suppress_tokens begin(ids);
  std::vector<float> row = kRow;
  begin(kTokens, 8, row);  // one token generated already: nothing
  CHECK(row == kRow);
  begin(kTokens, 9, row);  // the first generated token
  CHECK(kept(row) == std::vector<int>{0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0});
}

TEST_CASE("a chain passes the prompt length to the processors that take it", "[generate][processors]") {
  const auto c = gen::make_chain(gen::min_new_tokens(3, {2}), gen::top_k(1));
  static_assert(gen::logits_processor<decltype(c)>);
  static_assert(!std::is_invocable_v<const decltype(c)&, std::span<const std::int32_t>, std::span<float>>);
  std::vector<float> row = kRow;
  c(kTokens, 9, row);  // 2 masked, then top_k(1) keeps the other 3.0
  CHECK(kept(row) == std::vector<int>{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  row = kRow;
  gen::apply_processor(c, kTokens, 0, row);  // 9 generated: both 3.0s stay
  CHECK(kept(row) == std::vector<int>{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  // a two-argument processor through apply_processor ignores the prompt length
  row = kRow;
  gen::apply_processor(gen::top_k(1), kTokens, 4, row);
  CHECK(kept(row) == std::vector<int>{0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("bad arguments of the masking processors throw value_error", "[generate][errors]") {
  const auto message = [](auto make) { return tformer::test::thrown_message<value_error>(make); };
  CHECK(contains(message([] { (void)gen::no_repeat_ngram(0); }), "no_repeat_ngram"));
  CHECK(contains(message([] { (void)gen::min_new_tokens(-1, {2}); }), "got -1"));
  CHECK(contains(message([] { (void)gen::min_new_tokens(2, {2, -7}); }), "-7"));
  CHECK(contains(message([] { (void)gen::suppress_tokens({-3}); }), "suppress_tokens"));
  CHECK(contains(message([] { (void)gen::begin_suppress_tokens({-3}); }), "begin_suppress_tokens"));
}
