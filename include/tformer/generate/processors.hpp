// Logits processors for text generation: policies that rewrite one row of next-token scores in
// place, given the tokens so far (prompt included), and the two ways to pick a token from a row.
//
//   logits [vocab] -> logits [vocab]     temperature, top_k, top_p, min_p, repetition_penalty,
//                                        no_repeat_ngram, min_new_tokens, suppress_tokens,
//                                        begin_suppress_tokens, chain
//   logits [vocab] -> token id           argmax (greedy), sample (one uniform draw from portable_rng)
//
// The semantics are those of Hugging Face transformers' generation/logits_process.py
// (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper,
// RepetitionPenaltyLogitsProcessor, NoRepeatNGramLogitsProcessor, MinNewTokensLengthLogitsProcessor,
// SuppressTokensLogitsProcessor, SuppressTokensAtBeginLogitsProcessor) with their defaults: a
// filtered score becomes -inf and at least one token always survives (the masks of the last four
// may remove every token, as in HF). Scores may already hold -inf (masked tokens). Probabilities
// (top_p, min_p, sample) are computed in double, in index or sorted order, never with SIMD
// reductions, so the result does not depend on the instruction set; the only platform input is
// std::exp, whose last-ulp differences between libms move a decision only when it lies within
// ~1e-16 (relative) of its threshold. NaN or +inf scores make probabilities undefined: top_p and
// min_p then leave the row unchanged (HF's softmax turns such a row to NaN, which removes nothing)
// and sample throws.
//
// A processor is anything callable on a const p as p(tokens, logits), or as p(tokens,
// prompt_length, logits) when it needs to know where the prompt ends (the first prompt_length
// tokens were given, the rest generated: HF's prompt_length_to_skip / begin_index, per sequence).
// Concept logits_processor accepts both; apply_processor calls either. Users add their own (a
// banned-token list, a grammar mask) without touching this header.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../nn/parameters.hpp"

namespace tformer::generate {

/// @brief A policy that rewrites one row of scores in place: p(tokens, logits) or p(tokens,
/// prompt_length, logits) on a const p, where tokens is the sequence so far (prompt included), its
/// first prompt_length tokens the prompt, and logits the next-token scores [vocab].
template <class P>
concept logits_processor =
    requires(const P& p, std::span<const std::int32_t> tokens, std::span<float> logits) { p(tokens, logits); } ||
    requires(const P& p, std::span<const std::int32_t> tokens, std::int64_t prompt_length, std::span<float> logits) {
      p(tokens, prompt_length, logits);
    };

/// @brief Calls p(tokens, prompt_length, logits) when p takes the prompt length, else p(tokens, logits).
template <logits_processor P>
void apply_processor(const P& p, std::span<const std::int32_t> tokens, std::int64_t prompt_length,
                     std::span<float> logits) {
  if constexpr (requires { p(tokens, prompt_length, logits); })
    p(tokens, prompt_length, logits);
  else
    p(tokens, logits);
}

namespace detail {

inline constexpr float masked_score = -std::numeric_limits<float>::infinity();

/// Shortest round-trip text of a number, for error messages ("0.1", "-inf", "nan", "7").
template <class T>
std::string number_text(T x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

[[noreturn]] inline void bad_value(const char* who, const std::string& why) {
  throw value_error(std::string("tformer::generate::") + who + ": " + why);
}

/// The largest score of a row, or NaN when the row holds a NaN or +inf (probabilities undefined);
/// -inf for an empty or fully masked row.
inline float probability_max(std::span<const float> logits) noexcept {
  float m = masked_score;
  for (const float x : logits) {
    if (std::isnan(x) || x == std::numeric_limits<float>::infinity()) return std::numeric_limits<float>::quiet_NaN();
    m = std::max(m, x);
  }
  return m;
}

/// Descending order with NaN last: a strict weak ordering even when scores hold NaN.
inline bool greater_nan_last(float a, float b) noexcept { return a > b || (!std::isnan(a) && std::isnan(b)); }

/// A row length as an int32 token count (token ids are int32).
inline void check_vocab(const char* who, std::size_t n) {
  if (n == 0) bad_value(who, "logits is empty");
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    bad_value(who, "logits has " + number_text(n) + " entries, more than int32 token ids can index");
}

}  // namespace detail

/// @brief The default policy: leaves the scores as they are.
struct no_processing {
  constexpr void operator()(std::span<const std::int32_t>, std::span<float>) const noexcept {}
};

/// @brief logits /= value (HF TemperatureLogitsWarper). value finite and > 0: below 1 sharpens,
/// above 1 flattens. Masked (-inf) scores stay -inf.
class temperature {
 public:
  explicit temperature(float value) : value_(value) {
    if (!(std::isfinite(value) && value > 0.0f))
      detail::bad_value("temperature", "value must be finite and > 0, got " + detail::number_text(value));
  }
  float value() const noexcept { return value_; }

  void operator()(std::span<const std::int32_t>, std::span<float> logits) const noexcept {
    for (float& x : logits) x /= value_;  // a true division, as torch's scores / temperature
  }

 private:
  float value_;
};

/// @brief Keeps every token whose score is >= the k-th largest score and masks the rest (HF
/// TopKLogitsWarper: the threshold is torch.topk's k-th value, so ties with it all survive and
/// more than k tokens may remain). k >= 1; k >= vocab keeps everything.
class top_k {
 public:
  explicit top_k(std::int64_t k) : k_(k) {
    if (k < 1) detail::bad_value("top_k", "k must be >= 1, got " + detail::number_text(k));
  }
  std::int64_t k() const noexcept { return k_; }

  void operator()(std::span<const std::int32_t>, std::span<float> logits) const {
    if (static_cast<std::uint64_t>(k_) >= logits.size()) return;
    const auto kth = static_cast<std::ptrdiff_t>(k_ - 1);
    std::vector<float> scores(logits.begin(), logits.end());  // [vocab] scratch for the selection
    std::nth_element(scores.begin(), scores.begin() + kth, scores.end(), detail::greater_nan_last);
    const float threshold = scores[static_cast<std::size_t>(kth)];
    for (float& x : logits)
      if (x < threshold) x = detail::masked_score;
  }

 private:
  std::int64_t k_;
};

/// @brief Nucleus filtering, HF TopPLogitsWarper's algorithm: sort the scores ascending, softmax,
/// cumulative sum, mask every token whose cumulative probability is <= 1 - p, never the top one.
/// The kept set is the smallest top set whose probability exceeds p (up to ties). p in (0, 1].
/// Tied scores are sorted by index (stable), so at a boundary that splits a tie the lower index is
/// masked first; torch's unstable sort may split long ties otherwise.
class top_p {
 public:
  explicit top_p(float p) : p_(p) {
    if (!(p > 0.0f && p <= 1.0f)) detail::bad_value("top_p", "p must be in (0, 1], got " + detail::number_text(p));
  }
  float p() const noexcept { return p_; }

  void operator()(std::span<const std::int32_t>, std::span<float> logits) const {
    const float m = detail::probability_max(logits);
    if (!std::isfinite(m)) return;  // fully masked, or NaN / +inf: nothing to filter
    // candidates: the unmasked tokens (masked ones add 0 to every cumulative sum), ascending
    std::vector<std::int32_t> order;
    for (std::size_t i = 0; i < logits.size(); ++i)
      if (logits[i] != detail::masked_score) order.push_back(static_cast<std::int32_t>(i));
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return logits[static_cast<std::size_t>(a)] < logits[static_cast<std::size_t>(b)];
    });
    const auto weight = [&](std::int32_t i) {
      return std::exp(static_cast<double>(logits[static_cast<std::size_t>(i)]) - static_cast<double>(m));
    };
    double total = 0.0;
    for (const std::int32_t i : order) total += weight(i);
    const double limit = 1.0 - static_cast<double>(p_);
    double cumulative = 0.0;
    // the cumulative sum only grows: stop at the first token kept; the last (top) one always stays
    for (std::size_t j = 0; j + 1 < order.size(); ++j) {
      cumulative += weight(order[j]) / total;
      if (!(cumulative <= limit)) break;
      logits[static_cast<std::size_t>(order[j])] = detail::masked_score;
    }
  }

 private:
  float p_;
};

/// @brief Masks tokens whose probability is below p times the top probability (HF
/// MinPLogitsWarper: probs < min_p * max(probs)), evaluated as exp(score - max) < p in double.
/// p in [0, 1]: 0 keeps everything, 1 keeps only the tokens tied with the maximum.
class min_p {
 public:
  explicit min_p(float p) : p_(p) {
    if (!(p >= 0.0f && p <= 1.0f)) detail::bad_value("min_p", "p must be in [0, 1], got " + detail::number_text(p));
  }
  float p() const noexcept { return p_; }

  void operator()(std::span<const std::int32_t>, std::span<float> logits) const noexcept {
    const float m = detail::probability_max(logits);
    if (!std::isfinite(m)) return;  // fully masked, or NaN / +inf: nothing to filter
    const double p = static_cast<double>(p_);
    for (float& x : logits)
      if (std::exp(static_cast<double>(x) - static_cast<double>(m)) < p) x = detail::masked_score;
  }

 private:
  float p_;
};

/// @brief For every distinct token id in tokens: score < 0 ? score * penalty : score / penalty (HF
/// RepetitionPenaltyLogitsProcessor; applied once per id however often it occurs). penalty finite
/// and > 0: above 1 discourages repeats, below 1 encourages them. Ids >= vocab are ignored, as HF
/// does (embedding tables may be larger than the output layer); a negative id is a value_error.
/// To leave the prompt out, pass only the generated part of the sequence.
class repetition_penalty {
 public:
  explicit repetition_penalty(float penalty) : penalty_(penalty) {
    if (!(std::isfinite(penalty) && penalty > 0.0f))
      detail::bad_value("repetition_penalty", "penalty must be finite and > 0, got " + detail::number_text(penalty));
  }
  float penalty() const noexcept { return penalty_; }

  void operator()(std::span<const std::int32_t> tokens, std::span<float> logits) const {
    std::vector<std::int32_t> ids(tokens.begin(), tokens.end());  // distinct ids, ascending
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (!ids.empty() && ids.front() < 0)
      detail::bad_value("repetition_penalty", "token id " + detail::number_text(ids.front()) + " is negative");
    for (const std::int32_t id : ids) {
      if (static_cast<std::size_t>(id) >= logits.size()) break;  // ascending: the rest are out of range too
      float& s = logits[static_cast<std::size_t>(id)];
      s = s < 0.0f ? s * penalty_ : s / penalty_;
    }
  }

 private:
  float penalty_;
};

/// @brief Bans every token that would repeat an n-gram of the sequence (HF
/// NoRepeatNGramLogitsProcessor): when the last n - 1 tokens occurred before followed by t, t's
/// score becomes -inf. The whole sequence counts, prompt included (for an encoder-decoder, the
/// decoder's tokens). n >= 1 (n = 1 bans every token seen). Ids >= vocab are ignored.
class no_repeat_ngram {
 public:
  explicit no_repeat_ngram(std::int64_t n) : n_(n) {
    if (n < 1) detail::bad_value("no_repeat_ngram", "the n-gram size must be >= 1, got " + detail::number_text(n));
  }
  std::int64_t size() const noexcept { return n_; }

  void operator()(std::span<const std::int32_t> tokens, std::span<float> logits) const noexcept {
    const auto len = static_cast<std::int64_t>(tokens.size());
    if (len < n_) return;  // no complete n-gram yet
    const std::int64_t k = n_ - 1;  // length of the prefix to match: the last n - 1 tokens
    const std::int32_t* suffix = tokens.data() + (len - k);
    // window [i, i + n) ends in an earlier token that followed the same prefix
    for (std::int64_t i = 0; i + n_ <= len; ++i) {
      if (!std::equal(suffix, suffix + k, tokens.data() + i)) continue;
      const std::int32_t banned = tokens[static_cast<std::size_t>(i + k)];
      if (banned >= 0 && static_cast<std::size_t>(banned) < logits.size()) logits[static_cast<std::size_t>(banned)] = detail::masked_score;
    }
  }

 private:
  std::int64_t n_;
};

namespace detail {
/// Sets logits[id] = -inf for every id of ids inside the row (others are ignored, as torch.isin over the vocab).
inline void mask_ids(std::span<const std::int32_t> ids, std::span<float> logits) noexcept {
  for (const std::int32_t id : ids)
    if (id >= 0 && static_cast<std::size_t>(id) < logits.size()) logits[static_cast<std::size_t>(id)] = masked_score;
}
/// Checks that a token list holds no negative id.
inline std::vector<std::int32_t> checked_ids(const char* who, std::vector<std::int32_t> ids) {
  for (const std::int32_t id : ids)
    if (id < 0) bad_value(who, "token id " + number_text(id) + " is negative");
  return ids;
}
}  // namespace detail

/// @brief Forbids the end tokens until count tokens were generated (HF
/// MinNewTokensLengthLogitsProcessor): while tokens.size() - prompt_length < count, the scores of
/// eos_ids become -inf. count >= 0; ids >= vocab are ignored.
class min_new_tokens {
 public:
  min_new_tokens(std::int64_t count, std::vector<std::int32_t> eos_ids)
      : count_(count), eos_(detail::checked_ids("min_new_tokens", std::move(eos_ids))) {
    if (count < 0) detail::bad_value("min_new_tokens", "count must be >= 0, got " + detail::number_text(count));
  }
  std::int64_t count() const noexcept { return count_; }

  void operator()(std::span<const std::int32_t> tokens, std::int64_t prompt_length, std::span<float> logits) const noexcept {
    if (static_cast<std::int64_t>(tokens.size()) - prompt_length < count_) detail::mask_ids(eos_, logits);
  }

 private:
  std::int64_t count_;
  std::vector<std::int32_t> eos_;
};

/// @brief Never lets these tokens be chosen (HF SuppressTokensLogitsProcessor): their scores
/// become -inf at every step. Ids >= vocab are ignored.
class suppress_tokens {
 public:
  explicit suppress_tokens(std::vector<std::int32_t> ids) : ids_(detail::checked_ids("suppress_tokens", std::move(ids))) {}
  const std::vector<std::int32_t>& ids() const noexcept { return ids_; }

  void operator()(std::span<const std::int32_t>, std::span<float> logits) const noexcept { detail::mask_ids(ids_, logits); }

 private:
  std::vector<std::int32_t> ids_;
};

/// @brief Forbids these tokens as the first generated token (HF SuppressTokensAtBeginLogitsProcessor
/// with begin_index = the prompt length: Whisper's blank and end tokens). Ids >= vocab are ignored.
class begin_suppress_tokens {
 public:
  explicit begin_suppress_tokens(std::vector<std::int32_t> ids)
      : ids_(detail::checked_ids("begin_suppress_tokens", std::move(ids))) {}
  const std::vector<std::int32_t>& ids() const noexcept { return ids_; }

  void operator()(std::span<const std::int32_t> tokens, std::int64_t prompt_length, std::span<float> logits) const noexcept {
    if (static_cast<std::int64_t>(tokens.size()) == prompt_length) detail::mask_ids(ids_, logits);
  }

 private:
  std::vector<std::int32_t> ids_;
};

/// @brief Applies its processors in order (left to right); a chain is itself a processor.
/// @tparam P the processors, stored by value
template <logits_processor... P>
class chain {
 public:
  explicit chain(P... steps) : steps_(std::move(steps)...) {}

  /// @brief Runs every processor; those that take a prompt length get prompt_length.
  void operator()(std::span<const std::int32_t> tokens, std::int64_t prompt_length, std::span<float> logits) const {
    std::apply([&](const P&... step) { (apply_processor(step, tokens, prompt_length, logits), ...); }, steps_);
  }
  /// @brief Runs every processor (only when none of them needs the prompt length).
  void operator()(std::span<const std::int32_t> tokens, std::span<float> logits) const
    requires(std::is_invocable_v<const P&, std::span<const std::int32_t>, std::span<float>> && ...)
  {
    std::apply([&](const P&... step) { (step(tokens, logits), ...); }, steps_);
  }

  /// @brief The I-th processor.
  template <std::size_t I>
  const auto& get() const noexcept {
    return std::get<I>(steps_);
  }
  static constexpr std::size_t size() noexcept { return sizeof...(P); }

 private:
  std::tuple<P...> steps_;
};

/// @brief chain(p...) with the processors copied or moved in: make_chain(temperature(0.7f), top_p(0.9f)).
template <class... P>
  requires(logits_processor<std::remove_cvref_t<P>> && ...)
chain<std::remove_cvref_t<P>...> make_chain(P&&... steps) {
  return chain<std::remove_cvref_t<P>...>(std::forward<P>(steps)...);
}

/// @brief Greedy choice: the first index of the largest score. NaN scores are skipped (never
/// chosen; a row of only NaN gives 0, whereas torch.argmax would return a NaN's index); a fully
/// masked row gives 0. Throws value_error on an empty row.
inline std::int32_t argmax(std::span<const float> logits) {
  detail::check_vocab("argmax", logits.size());
  std::size_t best = logits.size();  // none yet
  for (std::size_t i = 0; i < logits.size(); ++i)
    if (!std::isnan(logits[i]) && (best == logits.size() || logits[i] > logits[best])) best = i;
  return best == logits.size() ? 0 : static_cast<std::int32_t>(best);
}

/// @brief Draws a token from softmax(logits): weights exp(score - max) in double, in index order;
/// one uniform draw u = rng.uniform() per call; returns the first index whose cumulative weight
/// exceeds u * total. The same inputs and generator state give the same token on every platform.
/// Masked (-inf) tokens are never drawn. Throws value_error for an empty row, a NaN or +inf score,
/// or a row where every score is -inf (the generator is not advanced then).
inline std::int32_t sample(std::span<const float> logits, nn::portable_rng& rng) {
  detail::check_vocab("sample", logits.size());
  float m = detail::masked_score;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (std::isnan(x) || x == std::numeric_limits<float>::infinity())
      detail::bad_value("sample", "score " + detail::number_text(x) + " at index " + detail::number_text(i) +
                                      " gives no probability");
    m = std::max(m, x);
  }
  if (m == detail::masked_score) detail::bad_value("sample", "every score is -inf (all tokens masked)");
  const auto weight = [&](float x) { return std::exp(static_cast<double>(x) - static_cast<double>(m)); };
  double total = 0.0;
  for (const float x : logits) total += weight(x);
  const double target = rng.uniform() * total;
  double cumulative = 0.0;
  std::size_t last = 0;  // the last token with a non-zero weight
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double w = weight(logits[i]);
    if (w > 0.0) {
      cumulative += w;
      last = i;
      if (cumulative > target) return static_cast<std::int32_t>(i);
    }
  }
  return static_cast<std::int32_t>(last);  // u * total rounded up to total
}

static_assert(logits_processor<no_processing> && logits_processor<temperature> && logits_processor<top_k> &&
              logits_processor<top_p> && logits_processor<min_p> && logits_processor<repetition_penalty> &&
              logits_processor<chain<temperature, top_p>> && logits_processor<chain<>> &&
              logits_processor<no_repeat_ngram> && logits_processor<min_new_tokens> &&
              logits_processor<suppress_tokens> && logits_processor<begin_suppress_tokens> &&
              logits_processor<chain<min_new_tokens, top_k>>);

}  // namespace tformer::generate
