// Decoding: greedy, sampling and beam search for decoder-only and encoder-decoder models, batched,
// streamed, with logits processors as policies.
//
//   auto out = generate::run(model, inputs, options, processors, on_token);
//
// inputs are prompts (decoder-only) or sources (encoder-decoder), one token vector each, of any
// lengths. Sequences that finish stop costing compute: their rows leave the batch (the KV cache is
// compacted). Beam search follows Hugging Face `generate` (transformers 5): 2 x beams candidates
// per source and step from beam score + log-softmax, a finished hypothesis scored as its summed
// log-probability / (generated tokens ^ length_penalty), the pool of the best `beams` finished
// ones, and HF's early-stop heuristic (or, with early_stopping, stop once `beams` have finished).
// For encoder-decoders the encoder runs once per source and all beams of a source share its
// cross-attention keys and values; the source may also be given as the encoder's output
// (models::encoded, or hidden states and lengths: HF's encoder_outputs), for models whose encoder
// does not read token ids (Whisper's convolutions over log-mel features), and the decoder may
// start from a prompt per source (options::decoder_prompts: HF's decoder_input_ids, e.g. Whisper's
// forced <|startoftranscript|><|en|><|transcribe|><|notimestamps|>).
//
// options also carry Hugging Face's built-in logits processors (no_repeat_ngram_size,
// min_new_tokens, suppress_tokens, begin_suppress_tokens), applied in HF's order before the
// caller's processors, and stop strings (stopping.hpp) checked after every token like the end ids.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../models/decoder.hpp"
#include "../models/encoder_decoder.hpp"
#include "../nn/parameters.hpp"
#include "../ops/gather.hpp"
#include "../simd/reduce.hpp"
#include "../simd/softmax.hpp"
#include "processors.hpp"
#include "stopping.hpp"

namespace tformer::generate {

/// @brief Search settings and stop conditions (runtime data).
struct options {
  std::int64_t max_new_tokens = 64;    ///< generated tokens per sequence at most
  std::vector<std::int32_t> eos_ids;   ///< any of these ends a sequence (it is kept in the output)
  std::int32_t decoder_start_id = 0;   ///< encoder-decoders: the first decoder token
  bool sample = false;                 ///< sample from the processed distribution instead of argmax
  std::uint64_t seed = 0;              ///< sampling seed: the same tokens on every run and thread count
  std::int64_t num_beams = 1;          ///< > 1: beam search
  float length_penalty = 1.0f;         ///< beam score = sum log p / generated_length ^ length_penalty
  bool early_stopping = false;         ///< beams: stop a source as soon as num_beams hypotheses finished
  std::int64_t num_return_sequences = 1;  ///< beams: hypotheses returned per input, best first
  // HF's logits processors, applied in this order before the caller's processors (0 or empty: off)
  std::int64_t no_repeat_ngram_size = 0;  ///< > 0: never repeat an n-gram of this size (prompt included)
  std::int64_t min_new_tokens = 0;        ///< the end ids are forbidden until this many tokens were generated
  std::vector<std::int32_t> suppress_tokens;        ///< never generated
  std::vector<std::int32_t> begin_suppress_tokens;  ///< never the first generated token
  /// End a sequence when its text ends with one of these (stop_strings in stopping.hpp); needs detokenize.
  std::vector<std::string> stop_strings;
  detokenizer detokenize;  ///< token ids -> text (a tokenizer's decode), for stop_strings
  /// Encoder-decoders: the decoder's prompt per input (HF decoder_input_ids), or one entry for every
  /// input, or none ({decoder_start_id}). A prompt that does not begin with decoder_start_id gets it
  /// in front (HF does so when no row of the batch begins with it). The output starts after the prompt.
  std::vector<std::vector<std::int32_t>> decoder_prompts;

  /// @brief Throws value_error naming the first bad field.
  void validate() const {
    auto fail = [](const std::string& why) { throw value_error("tformer::generate::options: " + why); };
    auto ids = [&](const char* field, const std::vector<std::int32_t>& v) {
      for (const std::int32_t id : v)
        if (id < 0) fail(std::string(field) + " holds the negative token id " + std::to_string(id));
    };
    if (max_new_tokens < 1) fail("max_new_tokens must be >= 1, got " + std::to_string(max_new_tokens));
    if (num_beams < 1) fail("num_beams (the beam width) must be >= 1, got " + std::to_string(num_beams));
    if (num_return_sequences < 1 || num_return_sequences > num_beams)
      fail("num_return_sequences must be in [1, num_beams = " + std::to_string(num_beams) + "], got " +
           std::to_string(num_return_sequences));
    if (sample && num_beams > 1) fail("sampling with num_beams > 1 is not supported");
    if (!(length_penalty == length_penalty)) fail("length_penalty is NaN");
    if (no_repeat_ngram_size < 0)
      fail("no_repeat_ngram_size must be >= 0 (0: off), got " + std::to_string(no_repeat_ngram_size));
    if (min_new_tokens < 0) fail("min_new_tokens must be >= 0, got " + std::to_string(min_new_tokens));
    ids("eos_ids", eos_ids);
    ids("suppress_tokens", suppress_tokens);
    ids("begin_suppress_tokens", begin_suppress_tokens);
    for (std::size_t i = 0; i < stop_strings.size(); ++i)
      if (stop_strings[i].empty()) fail("stop_strings[" + std::to_string(i) + "] is empty");
    if (!stop_strings.empty() && !detokenize) fail("stop_strings needs detokenize (token ids -> text)");
    for (std::size_t i = 0; i < decoder_prompts.size(); ++i)
      ids(("decoder_prompts[" + std::to_string(i) + "]").c_str(), decoder_prompts[i]);
  }
};

/// @brief One generated sequence: the new tokens (an end token included when one ended it) and,
/// for beam search, its length-penalized score (greedy/sampling: the summed log-probability).
struct hypothesis {
  std::vector<std::int32_t> tokens;
  float score = 0.0f;
};

/// @brief Streaming callback that never stops anything.
struct no_callback {
  bool operator()(std::int64_t, std::int32_t) const noexcept { return true; }
};

namespace detail {

template <class M>
concept decoder_only = requires(const M& m, tensor_view<const std::int32_t> ids, typename M::state_type* s) {
  m.forward(ids, ids, s);
  m.make_state(1, 1);
};
template <class M>
concept seq2seq = requires(const M& m, tensor_view<const std::int32_t> ids, const models::encoded& e) {
  m.encode(ids, ids);
  m.decode(ids, e);
};
// The decoder side of an encoder-decoder: decodes from models::encoded through a state.
template <class M>
concept encoded_decoder = requires(const M& m, tensor_view<const std::int32_t> ids, const models::encoded& e,
                                   typename M::state_type* s) {
  m.decode(ids, e, ids, s);
  m.make_state(1, 1);
};

// Padded [B, L] ids and lengths [B] of token vectors (each non-empty, every id in [0, vocab)).
inline void pack(const std::vector<std::vector<std::int32_t>>& seqs, tensor<std::int32_t>& ids, tensor<std::int32_t>& lengths,
                 const char* what) {
  std::int64_t longest = 0;
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    if (seqs[b].empty()) throw value_error(std::string("tformer::generate: ") + what + " " + std::to_string(b) + " is empty");
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(seqs[b].size()));
  }
  const auto B = static_cast<std::int64_t>(seqs.size());
  ids = tensor<std::int32_t>(shape{B, longest});
  lengths = tensor<std::int32_t>(shape{B});
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[static_cast<std::size_t>(b)];
    std::copy(s.begin(), s.end(), ids.data() + b * longest);
    lengths(b) = static_cast<std::int32_t>(s.size());
  }
}

// Rows [R, V] from logits [R, S, V] at per-row positions.
inline tensor<float> last_rows(const tensor<float>& logits, const std::vector<std::int64_t>& pos) {
  const std::int64_t R = logits.dim(0), V = logits.dim(2);
  tensor<float> out(shape{R, V});
  for (std::int64_t r = 0; r < R; ++r)
    std::copy_n(logits.view()[r][pos[static_cast<std::size_t>(r)]].data(), V, out.data() + r * V);
  return out;
}

// Running rows of a decoder-only model: prompts prefilled once, then one token per row and step.
template <class Model>
class lm_state {
 public:
  lm_state(const Model& m, const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t max_new) : model_(m) {
    tensor<std::int32_t> ids, lengths;
    pack(prompts, ids, lengths, "prompt");
    state_ = m.make_state(ids.dim(0), ids.dim(1) + max_new);
    if constexpr (requires { m.forward_last(ids, lengths, state_, first_); }) {
      first_ = tensor<float>(shape{ids.dim(0), m.config.vocab});  // [B, V]: the head on each prompt's last token only
      m.forward_last(ids, lengths, state_, first_);
    } else {
      const tensor<float> logits = m.forward(ids, lengths, &state_);  // [B, L, V]
      std::vector<std::int64_t> last(prompts.size());
      for (std::size_t b = 0; b < prompts.size(); ++b) last[b] = lengths(static_cast<std::int64_t>(b)) - 1;
      first_ = last_rows(logits, last);
    }
  }
  tensor<float> start(std::int64_t group) {  // [B * group, V]: each prompt's logits, repeated per beam
    if (group > 1) {
      std::vector<std::int64_t> rows;
      for (std::int64_t b = 0; b < first_.dim(0); ++b) rows.insert(rows.end(), static_cast<std::size_t>(group), b);
      state_.select(rows);
      return ops::gather_rows<float>(first_, rows);
    }
    return std::move(first_);
  }
  tensor<float> step(const std::vector<std::int32_t>& tokens) {
    tensor<std::int32_t> ids(shape{static_cast<std::int64_t>(tokens.size()), 1});
    std::copy(tokens.begin(), tokens.end(), ids.data());
    tensor<float> logits = model_.forward(ids, {}, &state_);  // [R, 1, V]
    logits.reshape(shape{ids.dim(0), logits.dim(2)});
    return logits;
  }
  void keep_rows(std::span<const std::int64_t> rows) { state_.select(rows); }
  void keep_sources(std::span<const std::int64_t>) {}

 private:
  const Model& model_;
  typename Model::state_type state_;
  tensor<float> first_;
};

// Running rows of an encoder-decoder: sources encoded once; each source's decoder prompt run once,
// then `group` decoder rows per source.
template <class Model>
class seq2seq_state {
 public:
  seq2seq_state(const Model& m, models::encoded source, std::vector<std::vector<std::int32_t>> prompts,
                std::int64_t max_new)
      : model_(m), max_new_(max_new), prompts_(std::move(prompts)), source_(std::move(source)) {
    if (source_.batch() != static_cast<std::int64_t>(prompts_.size()))
      throw value_error("tformer::generate: " + std::to_string(prompts_.size()) + " decoder prompts for " +
                        std::to_string(source_.batch()) + " encoded sources");
  }
  tensor<float> start(std::int64_t group) {  // [B * group, V]: each prompt's last logits, repeated per beam
    tensor<std::int32_t> ids, lengths;
    pack(prompts_, ids, lengths, "decoder prompt");
    state_ = model_.make_state(ids.dim(0), ids.dim(1) + max_new_);
    const tensor<float> logits = model_.decode(ids, source_, lengths, &state_);  // [B, P, V]
    std::vector<std::int64_t> last(prompts_.size());
    for (std::size_t b = 0; b < prompts_.size(); ++b) last[b] = lengths(static_cast<std::int64_t>(b)) - 1;
    tensor<float> first = last_rows(logits, last);
    if (group == 1) return first;
    std::vector<std::int64_t> rows;
    for (std::int64_t b = 0; b < first.dim(0); ++b) rows.insert(rows.end(), static_cast<std::size_t>(group), b);
    state_.select(rows);
    return ops::gather_rows<float>(first, rows);
  }
  tensor<float> step(const std::vector<std::int32_t>& tokens) {
    tensor<std::int32_t> ids(shape{static_cast<std::int64_t>(tokens.size()), 1});
    std::copy(tokens.begin(), tokens.end(), ids.data());
    tensor<float> logits = model_.decode(ids, source_, {}, &state_);  // [R, 1, V]
    logits.reshape(shape{ids.dim(0), logits.dim(2)});
    return logits;
  }
  void keep_rows(std::span<const std::int64_t> rows) { state_.select(rows); }
  void keep_sources(std::span<const std::int64_t> sources) { source_.select(sources); }

 private:
  const Model& model_;
  std::int64_t max_new_;
  std::vector<std::vector<std::int32_t>> prompts_;
  models::encoded source_;
  typename Model::state_type state_;
};

// The decoder prompt of each of n sources (options::decoder_prompts), each beginning with the start id.
inline std::vector<std::vector<std::int32_t>> decoder_prompts(const options& o, std::size_t n) {
  const auto& given = o.decoder_prompts;
  if (!given.empty() && given.size() != 1 && given.size() != n)
    throw value_error("tformer::generate::options: decoder_prompts has " + std::to_string(given.size()) +
                      " entries for " + std::to_string(n) + " inputs (give 0, 1 or one per input)");
  std::vector<std::vector<std::int32_t>> out(n);
  for (std::size_t b = 0; b < n; ++b) {
    const std::vector<std::int32_t> none;
    const auto& p = given.empty() ? none : given[given.size() == 1 ? 0 : b];
    if (p.empty() || p.front() != o.decoder_start_id) out[b].push_back(o.decoder_start_id);
    out[b].insert(out[b].end(), p.begin(), p.end());
  }
  return out;
}

// The options' processors in HF's order (no_repeat_ngram, min_new_tokens, suppress_tokens,
// begin_suppress_tokens), then the caller's.
template <class Processor>
class configured {
 public:
  configured(const options& o, const Processor& user) : user_(user) {
    if (o.no_repeat_ngram_size > 0) ngram_.emplace(o.no_repeat_ngram_size);
    if (o.min_new_tokens > 0 && !o.eos_ids.empty()) min_new_.emplace(o.min_new_tokens, o.eos_ids);
    if (!o.suppress_tokens.empty()) suppress_.emplace(o.suppress_tokens);
    if (!o.begin_suppress_tokens.empty()) begin_.emplace(o.begin_suppress_tokens);
  }
  void operator()(std::span<const std::int32_t> tokens, std::int64_t prompt_length, std::span<float> logits) const {
    if (ngram_) (*ngram_)(tokens, logits);
    if (min_new_) (*min_new_)(tokens, prompt_length, logits);
    if (suppress_) (*suppress_)(tokens, logits);
    if (begin_) (*begin_)(tokens, prompt_length, logits);
    apply_processor(user_, tokens, prompt_length, logits);
  }

 private:
  const Processor& user_;
  std::optional<no_repeat_ngram> ngram_;
  std::optional<min_new_tokens> min_new_;
  std::optional<generate::suppress_tokens> suppress_;
  std::optional<generate::begin_suppress_tokens> begin_;
};

// Whether a sequence ends at its last token for a reason other than an end id or the length limit.
class stop_check {
 public:
  explicit stop_check(const options& o) {
    if (!o.stop_strings.empty()) strings_.emplace(o.stop_strings, o.detokenize);
  }
  bool enabled() const noexcept { return strings_.has_value(); }
  bool operator()(std::span<const std::int32_t> tokens) const { return strings_ && (*strings_)(tokens); }

 private:
  std::optional<stop_strings> strings_;
};

inline bool is_eos(const options& o, std::int32_t t) {
  return std::find(o.eos_ids.begin(), o.eos_ids.end(), t) != o.eos_ids.end();
}

// log-softmax of one row, in place: simd::log_softmax (vectorized exponentials, the normalizer
// summed in double; rows of -inf stay -inf). A beam step normalizes beams x vocabulary entries per
// source, which with std::exp per entry was a tenth of a beam-4 translation's time.
inline void log_softmax_row(std::span<float> row) { simd::log_softmax(row.data(), row.data(), row.size()); }

// Greedy or sampled decoding of every row of state.
template <class State, class Processor, class Callback>
std::vector<std::vector<hypothesis>> greedy(State& state, std::vector<std::vector<std::int32_t>> histories,
                                            const options& o, const Processor& proc, Callback& on_token) {
  const auto B = static_cast<std::int64_t>(histories.size());
  std::vector<std::vector<hypothesis>> out(static_cast<std::size_t>(B), std::vector<hypothesis>(1));
  std::vector<nn::portable_rng> rngs;
  for (std::int64_t b = 0; b < B; ++b) rngs.emplace_back(o.seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(b));
  std::vector<std::int64_t> active(static_cast<std::size_t>(B));  // input index of each running row
  std::iota(active.begin(), active.end(), 0);
  tensor<float> logits = state.start(1);  // [R, V]
  const std::int64_t V = logits.dim(1);
  std::vector<float> row(static_cast<std::size_t>(V));
  std::vector<std::int64_t> prompt_length;  // per input
  for (const auto& h : histories) prompt_length.push_back(static_cast<std::int64_t>(h.size()));
  const configured<Processor> processors(o, proc);
  const stop_check stops(o);
  for (std::int64_t step = 0;; ++step) {
    std::vector<std::int32_t> next;
    std::vector<std::int64_t> keep;
    for (std::size_t r = 0; r < active.size(); ++r) {
      const auto b = static_cast<std::size_t>(active[r]);
      std::copy_n(logits.data() + static_cast<std::int64_t>(r) * V, V, row.begin());
      processors(std::span<const std::int32_t>(histories[b]), prompt_length[b], std::span<float>(row));
      const std::int32_t tok = o.sample ? generate::sample(row, rngs[b]) : generate::argmax(row);
      log_softmax_row(row);
      out[b][0].score += row[static_cast<std::size_t>(tok)];
      out[b][0].tokens.push_back(tok);
      histories[b].push_back(tok);
      const bool go_on = on_token(static_cast<std::int64_t>(b), tok);
      if (go_on && !is_eos(o, tok) && step + 1 < o.max_new_tokens && !stops(histories[b])) {
        keep.push_back(static_cast<std::int64_t>(r));
        next.push_back(tok);
      }
    }
    if (keep.empty()) break;
    if (keep.size() != active.size()) {  // finished rows leave the batch
      state.keep_rows(keep);
      state.keep_sources(keep);
      std::vector<std::int64_t> still;
      for (auto r : keep) still.push_back(active[static_cast<std::size_t>(r)]);
      active = std::move(still);
    }
    logits = state.step(next);
  }
  return out;
}

// Beam search with Hugging Face's semantics (see the file comment).
template <class State, class Processor>
std::vector<std::vector<hypothesis>> beam(State& state, const std::vector<std::vector<std::int32_t>>& prefixes,
                                          const options& o, const Processor& proc) {
  const auto B = static_cast<std::int64_t>(prefixes.size());
  const std::int64_t nb = o.num_beams;
  const std::int64_t keep_k = std::max<std::int64_t>(2, 1 + static_cast<std::int64_t>(o.eos_ids.size())) * nb;
  constexpr float dead = -1.0e9f;  // HF's score of an empty beam slot
  struct source_state {
    std::vector<std::vector<std::int32_t>> beams;  // generated tokens of each running beam
    std::vector<float> scores;                     // summed log-probabilities
    std::vector<hypothesis> finished;              // best first, at most nb
    bool open = true;                              // HF's is_early_stop_heuristic_unsatisfied
  };
  std::vector<source_state> src(static_cast<std::size_t>(B));
  for (auto& s : src) {
    s.beams.assign(static_cast<std::size_t>(nb), {});
    s.scores.assign(static_cast<std::size_t>(nb), dead);
    s.scores[0] = 0.0f;
  }
  std::vector<std::int64_t> active(static_cast<std::size_t>(B));  // input index of each running source
  std::iota(active.begin(), active.end(), 0);
  tensor<float> logits = state.start(nb);  // [active * nb, V]
  const std::int64_t V = logits.dim(1);
  if (V < 1) throw value_error("tformer::generate: beam search needs a vocabulary of at least one token");
  if (nb * V > std::numeric_limits<std::int32_t>::max())
    throw value_error("tformer::generate: num_beams * vocabulary = " + std::to_string(nb * V) +
                      " candidates per source; beam search ranks at most 2^31 - 1");
  const std::int64_t ranked = std::min(keep_k, nb * V);  // candidates kept per source and step
  std::vector<float> acc(static_cast<std::size_t>(nb * V));    // [nb, V] accumulated log-probabilities
  std::vector<float> top_score(static_cast<std::size_t>(ranked));  // [ranked] best first
  std::vector<std::int32_t> top(static_cast<std::size_t>(ranked));  // [ranked] their flat indices into acc
  const configured<Processor> processors(o, proc);
  const stop_check stops(o);
  std::vector<std::int32_t> history;
  for (std::int64_t step = 0;; ++step) {
    std::vector<std::int64_t> rows, still;  // cache rows for the next step; sources still running
    std::vector<std::int32_t> next;
    const bool last_step = step + 1 >= o.max_new_tokens;
    for (std::size_t a = 0; a < active.size(); ++a) {
      auto& s = src[static_cast<std::size_t>(active[a])];
      const auto& prefix = prefixes[static_cast<std::size_t>(active[a])];
      for (std::int64_t j = 0; j < nb; ++j) {  // accumulated log-probabilities of every continuation
        std::span<float> lp(acc.data() + j * V, static_cast<std::size_t>(V));
        std::copy_n(logits.data() + (static_cast<std::int64_t>(a) * nb + j) * V, V, lp.begin());
        log_softmax_row(lp);
        history = prefix;
        history.insert(history.end(), s.beams[static_cast<std::size_t>(j)].begin(), s.beams[static_cast<std::size_t>(j)].end());
        processors(std::span<const std::int32_t>(history), static_cast<std::int64_t>(prefix.size()), lp);
        for (float& v : lp) v += s.scores[static_cast<std::size_t>(j)];
      }
      // the best `ranked` candidates, ties to the lower index
      simd::top_k(acc.data(), acc.size(), static_cast<std::size_t>(ranked), top_score.data(), top.data());
      const float norm = std::pow(static_cast<float>(step + 1), o.length_penalty);  // generated length
      std::vector<hypothesis> fresh;
      std::vector<std::pair<float, std::int64_t>> running;  // (score, candidate); stopped ones pushed to the back
      for (std::int64_t c = 0; c < ranked; ++c) {
        const std::int64_t flat = top[static_cast<std::size_t>(c)];
        const auto tok = static_cast<std::int32_t>(flat % V);
        bool hits = is_eos(o, tok) || last_step;
        if (!hits && stops.enabled()) {  // HF checks its stopping criteria on every candidate
          history = prefix;
          const auto& parent = s.beams[static_cast<std::size_t>(flat / V)];
          history.insert(history.end(), parent.begin(), parent.end());
          history.push_back(tok);
          hits = stops(history);
        }
        running.emplace_back(acc[static_cast<std::size_t>(flat)] + (hits ? dead : 0.0f), flat);
        const bool pool_full = static_cast<std::int64_t>(s.finished.size()) >= nb;
        if (hits && c < nb && s.open && !(o.early_stopping && pool_full)) {
          hypothesis h{s.beams[static_cast<std::size_t>(flat / V)], acc[static_cast<std::size_t>(flat)] / norm};
          h.tokens.push_back(tok);
          fresh.push_back(std::move(h));
        }
      }
      for (auto& h : fresh) s.finished.push_back(std::move(h));  // keep the best nb (stable)
      std::stable_sort(s.finished.begin(), s.finished.end(), [](const auto& x, const auto& y) { return x.score > y.score; });
      if (static_cast<std::int64_t>(s.finished.size()) > nb) s.finished.resize(static_cast<std::size_t>(nb));
      // the next running beams: the best nb candidates once stopped ones lose 1e9 (as in HF, a slot
      // may hold a stopped candidate when too few continue; its score keeps it out of every pool)
      std::stable_sort(running.begin(), running.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
      std::vector<std::vector<std::int32_t>> beams(static_cast<std::size_t>(nb));
      std::vector<float> scores(static_cast<std::size_t>(nb));
      std::vector<std::int64_t> parents(static_cast<std::size_t>(nb));
      for (std::int64_t j = 0; j < nb; ++j) {
        const auto [score, flat] = running[static_cast<std::size_t>(j)];
        parents[static_cast<std::size_t>(j)] = flat / V;
        beams[static_cast<std::size_t>(j)] = s.beams[static_cast<std::size_t>(flat / V)];
        beams[static_cast<std::size_t>(j)].push_back(static_cast<std::int32_t>(flat % V));
        scores[static_cast<std::size_t>(j)] = score;
      }
      s.beams = std::move(beams);
      s.scores = std::move(scores);
      // HF's heuristic: can the best running beam still beat the worst finished hypothesis?
      const bool full = static_cast<std::int64_t>(s.finished.size()) >= nb;
      const float worst = full ? s.finished.back().score : dead;
      if (s.open) s.open = s.scores[0] / norm > worst;
      const bool done = !s.open || (o.early_stopping && full) || last_step;
      if (done) continue;
      still.push_back(active[a]);
      for (std::int64_t j = 0; j < nb; ++j) {
        rows.push_back(static_cast<std::int64_t>(a) * nb + parents[static_cast<std::size_t>(j)]);
        next.push_back(s.beams[static_cast<std::size_t>(j)].back());
      }
    }
    if (still.empty()) break;
    if (still.size() != active.size()) {  // sources that ended leave the batch
      std::vector<std::int64_t> kept_sources;
      for (std::size_t a = 0; a < active.size(); ++a)
        if (std::find(still.begin(), still.end(), active[a]) != still.end()) kept_sources.push_back(static_cast<std::int64_t>(a));
      state.keep_sources(kept_sources);
    }
    state.keep_rows(rows);
    active = std::move(still);
    logits = state.step(next);
  }
  std::vector<std::vector<hypothesis>> out(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) {
    auto& f = src[static_cast<std::size_t>(b)].finished;
    f.resize(std::min<std::size_t>(f.size(), static_cast<std::size_t>(o.num_return_sequences)));
    out[static_cast<std::size_t>(b)] = std::move(f);
  }
  return out;
}

}  // namespace detail

namespace detail {
// Generation from encoded sources with the decoder prompts of options.
template <class Model, class Processor, class Callback>
std::vector<std::vector<hypothesis>> run_encoded(const Model& model, models::encoded source, const options& o,
                                                 const Processor& proc, Callback& on_token) {
  const auto n = static_cast<std::size_t>(source.batch());
  if (n == 0) return {};
  auto prompts = decoder_prompts(o, n);
  seq2seq_state<Model> state(model, std::move(source), prompts, o.max_new_tokens);
  if (o.num_beams > 1) return beam(state, prompts, o, proc);
  return greedy(state, std::move(prompts), o, proc, on_token);
}
}  // namespace detail

/// @brief Generates for every input; returns, per input, the hypotheses best first (one unless
/// beam search returns more). Decoder-only models continue each prompt; encoder-decoders encode
/// each source and decode it from its decoder prompt (options::decoder_prompts, by default
/// {decoder_start_id}). The hypotheses hold the generated tokens only (after the prompt).
/// on_token(input, token) sees every token as it is chosen (greedy and sampling) and returns false
/// to stop that sequence.
template <class Model, logits_processor Processor = no_processing, class Callback = no_callback>
std::vector<std::vector<hypothesis>> run(const Model& model, const std::vector<std::vector<std::int32_t>>& inputs,
                                         const options& o, const Processor& proc = {}, Callback&& on_token = {}) {
  static_assert(detail::decoder_only<Model> || detail::seq2seq<Model>,
                "generate::run needs a models::decoder_lm or a models::encoder_decoder");
  o.validate();
  if (inputs.empty()) return {};
  if constexpr (detail::seq2seq<Model>) {
    tensor<std::int32_t> ids, lengths;
    detail::pack(inputs, ids, lengths, "source");
    return detail::run_encoded(model, model.encode(ids, lengths), o, proc, on_token);
  } else {
    if (!o.decoder_prompts.empty())
      throw value_error("tformer::generate::options: decoder_prompts is for encoder-decoders (a decoder-only "
                        "model continues its input)");
    detail::lm_state<Model> state(model, inputs, o.max_new_tokens);
    if (o.num_beams > 1) return detail::beam(state, inputs, o, proc);
    return detail::greedy(state, inputs, o, proc, on_token);
  }
}

/// @brief Generates from sources already encoded (models::encoded: the encoder's output with the
/// decoder's cross-attention keys and values, e.g. from encoder_decoder::encode or
/// from_encoder_output), one input per source row. Otherwise as run() on token ids.
template <class Model, class Source, logits_processor Processor = no_processing, class Callback = no_callback>
  requires std::same_as<std::remove_cvref_t<Source>, models::encoded>
std::vector<std::vector<hypothesis>> run(const Model& model, Source&& source, const options& o, const Processor& proc = {},
                                         Callback&& on_token = {}) {
  static_assert(detail::encoded_decoder<Model>, "generate::run on encoded sources needs an encoder-decoder model");
  o.validate();
  return detail::run_encoded(model, models::encoded(std::forward<Source>(source)), o, proc, on_token);
}

/// @brief Generates from the encoder's output given as hidden states [B, S, d] with lengths [B]
/// (empty: all S) — HF's encoder_outputs — for an encoder that does not read token ids (audio,
/// images) or runs elsewhere: model.from_encoder_output(hidden, lengths) prepares the sources.
template <class Model, class Hidden, logits_processor Processor = no_processing, class Callback = no_callback>
  requires std::same_as<std::remove_cvref_t<Hidden>, tensor<float>>
std::vector<std::vector<hypothesis>> run(const Model& model, Hidden&& hidden, tensor_view<const std::int32_t> lengths,
                                         const options& o, const Processor& proc = {}, Callback&& on_token = {}) {
  static_assert(requires { model.from_encoder_output(std::forward<Hidden>(hidden), lengths); },
                "generate::run on hidden states needs a model with from_encoder_output(hidden, lengths)");
  o.validate();
  return detail::run_encoded(model, model.from_encoder_output(std::forward<Hidden>(hidden), lengths), o, proc, on_token);
}

}  // namespace tformer::generate
