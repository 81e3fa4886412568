// Walking a block's parameters. Every block has visit(visitor, prefix), which calls
// visitor(name, param&) for each parameter with a hierarchical name ("layers.3.attn.q.weight");
// param is a tensor<T> (biases, norms, positions) or a quant::matrix<F> (weights in a format).
// Loading (io/checkpoint.hpp), counting and initialization all go through it.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/half.hpp"
#include "../core/tensor.hpp"
#include "../quant/matrix.hpp"

namespace tformer::nn {

/// @brief Number of scalar parameters (weights) of a model or block.
template <class M>
std::int64_t count_parameters(M& m) {
  std::int64_t n = 0;
  m.visit([&](const std::string&, auto& t) { n += t.numel(); }, "");
  return n;
}

/// @brief The parameter names of a model or block, in visiting order.
template <class M>
std::vector<std::string> parameter_names(M& m) {
  std::vector<std::string> names;
  m.visit([&](const std::string& name, auto&) { names.push_back(name); }, "");
  return names;
}

/// @brief A small portable generator (SplitMix64): the same numbers on every platform and compiler.
class portable_rng {
 public:
  explicit portable_rng(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// @brief Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

/// @brief Bytes the parameters of a model or block occupy in their formats.
template <class M>
std::int64_t parameter_bytes(M& m) {
  std::int64_t n = 0;
  m.visit(
      [&](const std::string&, auto& t) {
        using P = std::remove_reference_t<decltype(t)>;
        if constexpr (quant::is_matrix<P>)
          n += static_cast<std::int64_t>(t.size_bytes());
        else
          n += t.numel() * static_cast<std::int64_t>(sizeof(typename P::value_type));
      },
      "");
  return n;
}

/// @brief Random weights for tests and benchmarks: matrices and embeddings uniform in
/// (-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's Linear default), biases zero, norm weights one.
/// Deterministic for a seed on every platform; weights in a format are drawn as floats and
/// quantized, so every format starts from the same float weights.
template <class M>
void init_random(M& m, std::uint64_t seed) {
  portable_rng rng(seed);
  m.visit(
      [&](const std::string& name, auto& t) {
        using P = std::remove_reference_t<decltype(t)>;
        const bool is_norm = name.find("norm.") != std::string::npos;
        const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
        const double a = t.rank() >= 2 ? 1.0 / std::sqrt(static_cast<double>(t.dim(-1))) : 0.0;
        auto next = [&] {
          float x = 0.0f;
          if (is_norm && !is_bias)
            x = 1.0f;
          else if (!is_bias && t.rank() >= 2)
            x = static_cast<float>((2.0 * rng.uniform() - 1.0) * a);
          return x;
        };
        if constexpr (quant::is_matrix<P>) {
          tensor<float> w(t.shape());  // the float weights, then quantized
          for (std::int64_t i = 0; i < w.numel(); ++i) w.data()[i] = next();
          t.quantize_from(w);
        } else {
          using T = typename P::value_type;
          for (std::int64_t i = 0; i < t.numel(); ++i) {
            const float x = next();
            if constexpr (std::is_same_v<T, float>)
              t.data()[i] = x;
            else
              t.data()[i] = T(x);
          }
        }
      },
      "");
}

}  // namespace tformer::nn
