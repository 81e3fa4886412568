// The sizes of a model (runtime data), the rule that gives each layer its own settings, and the
// checks that turn sizes no machine can hold into an error naming the field.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "../core/error.hpp"
#include "../nn/layers.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace tformer::models {

/// @brief Sizes of a model (runtime data).
struct model_config {
  std::int64_t vocab = 0;
  std::int64_t layers = 0;           ///< layers of the stack (the encoder's, for encoder-decoders)
  std::int64_t decoder_layers = 0;   ///< encoder-decoders: decoder layers (0: same as layers)
  std::int64_t max_positions = 0;    ///< learned position table size
  std::int64_t position_offset = 0;  ///< learned positions: the table row of position 0 (BART: 2)
  std::int64_t token_types = 0;      ///< BERT segment embeddings (segment 0 is used); 0: none
  float embed_scale = 1.0f;          ///< token embeddings are multiplied by this (sqrt(d) in the original Transformer)
  float final_norm_eps = 0.0f;       ///< 0: the layers' norm eps
  std::int64_t relative_buckets = 32;        ///< T5 relative attention buckets
  std::int64_t relative_max_distance = 128;  ///< T5 relative attention max distance
  nn::layer_config layer;            ///< every layer's sizes (attention, ffn, norm eps)
  /// Per-layer settings: layer_rule(i, c) may change c, a copy of `layer`, for layer i of a stack
  /// (e.g. a sliding window on every other layer). Empty: every layer uses `layer`.
  std::function<void(std::int64_t layer, nn::layer_config& c)> layer_rule;

  std::int64_t d_model() const { return layer.attention.d_model; }
  /// @brief The settings of layer i of a stack.
  nn::layer_config layer_at(std::int64_t i) const {
    nn::layer_config c = layer;
    if (layer_rule) layer_rule(i, c);
    return c;
  }
};

namespace detail {

// The size fields of a config, by name.
inline std::pair<const char*, std::int64_t> largest_size_field(const model_config& c) {
  const std::pair<const char*, std::int64_t> fields[] = {
      {"vocab", c.vocab},
      {"layers", c.layers},
      {"decoder_layers", c.decoder_layers},
      {"max_positions", c.max_positions},
      {"token_types", c.token_types},
      {"layer.attention.d_model", c.layer.attention.d_model},
      {"layer.attention.heads", c.layer.attention.heads},
      {"layer.attention.kv_heads", c.layer.attention.kv_heads},
      {"layer.attention.head_dim", c.layer.attention.head_dim},
      {"layer.ffn.d_ff", c.layer.ffn.d_ff},
      {"relative_buckets", c.relative_buckets},
  };
  auto best = fields[0];
  for (const auto& f : fields)
    if (f.second > best.second) best = f;
  return best;
}

// A lower bound on the weights of a model with these sizes (at least one byte each), in doubles
// so that no size overflows it.
inline double weights_lower_bound(const model_config& c) {
  const double d = static_cast<double>(c.d_model()), ff = static_cast<double>(c.layer.ffn.d_ff);
  const double heads = static_cast<double>(c.layer.attention.heads);
  const double hd = c.layer.attention.head_dim > 0 ? static_cast<double>(c.layer.attention.head_dim)
                                                   : (heads > 0 ? d / heads : 0.0);
  const double per_layer = 2.0 * d * heads * hd + 2.0 * d * ff + 2.0 * d;
  const double layers = static_cast<double>(c.layers) + static_cast<double>(c.decoder_layers);
  return static_cast<double>(c.vocab) * d + static_cast<double>(c.max_positions + c.position_offset) * d +
         static_cast<double>(c.token_types) * d + layers * per_layer;
}

// Physical memory plus swap in bytes, or 0 when unknown.
inline double memory_bytes() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) return static_cast<double>(pages) * static_cast<double>(page) * 2.0;  // generous: swap
#endif
  return 0.0;
}

inline std::string bytes_text(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", b);
  return buf;
}

[[noreturn]] inline void too_large(const char* who, const model_config& c, const std::string& what) {
  const auto [field, value] = largest_size_field(c);
  throw value_error(std::string("tformer::models::") + who + ": " + what + "; model_config." + field + " = " +
                    std::to_string(value) + " is its largest size (vocab " + std::to_string(c.vocab) + ", layers " +
                    std::to_string(c.layers) + ", d_model " + std::to_string(c.d_model()) + ", d_ff " +
                    std::to_string(c.layer.ffn.d_ff) + ")");
}

// Builds a model's parts, turning sizes that cannot be held into a value_error naming the field:
// negative sizes, sizes whose weights exceed the machine's memory even at one byte each, and
// allocations that fail.
template <class Build>
void build_checked(const char* who, const model_config& c, Build&& build) {
  const std::pair<const char*, std::int64_t> sizes[] = {
      {"vocab", c.vocab}, {"layers", c.layers}, {"decoder_layers", c.decoder_layers}, {"max_positions", c.max_positions},
      {"position_offset", c.position_offset}, {"token_types", c.token_types}, {"layer.ffn.d_ff", c.layer.ffn.d_ff}};
  for (const auto& [field, value] : sizes)
    if (value < 0)
      throw value_error(std::string("tformer::models::") + who + ": model_config." + field + " must be >= 0, got " +
                        std::to_string(value));
  const double need = weights_lower_bound(c), have = memory_bytes();
  if (have > 0 && need > have)
    too_large(who, c, "the weights need at least " + bytes_text(need) + " bytes, more than this machine's " +
                          bytes_text(have) + " bytes of memory");
  try {
    build();
  } catch (const std::bad_alloc&) {
    too_large(who, c, "out of memory while allocating the weights");
  } catch (const std::length_error&) {
    too_large(who, c, "the sizes exceed what a container can hold");
  }
}

}  // namespace detail

}  // namespace tformer::models
