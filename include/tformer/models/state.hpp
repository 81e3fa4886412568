// models::model_state: what a model keeps between the calls of an incremental decode — one state
// per layer (whatever each layer's attention policy keeps: nn/state.hpp), the tokens consumed per
// sequence (the position of the next one), and the workspace every call draws its temporaries
// from. Models and generate use only its public operations.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "../core/tensor.hpp"
#include "../core/workspace.hpp"
#include "../ops/gather.hpp"

namespace tformer::models {

namespace detail {
template <class T>
inline constexpr bool is_variant = false;
template <class... T>
inline constexpr bool is_variant<std::variant<T...>> = true;
}  // namespace detail

/// @brief Per-layer states, positions and scratch memory of a model's incremental decode.
/// @tparam LayerState a layer's state type, or a std::variant of them for a mixed stack.
template <class LayerState>
class model_state {
 public:
  model_state() = default;
  model_state(std::vector<LayerState> layer_states, std::int64_t batch)
      : layers(std::move(layer_states)), lengths(shape{batch}) {}
  model_state(model_state&&) noexcept = default;
  model_state& operator=(model_state&&) noexcept = default;

  std::int64_t batch() const noexcept { return lengths.rank() == 1 ? lengths.dim(0) : 0; }

  /// @brief Keeps rows[i] of the batch as row i (rows may repeat: beams; may drop: finished sequences).
  void select(std::span<const std::int64_t> rows) {
    for (auto& l : layers) {
      if constexpr (detail::is_variant<LayerState>)
        std::visit([&](auto& s) { s.select(rows); }, l);
      else
        l.select(rows);
    }
    ops::select_rows(lengths, rows);
  }

  /// @brief Bytes the layer states hold (not the workspace).
  std::int64_t bytes() const {
    std::int64_t n = 0;
    for (const auto& l : layers) {
      if constexpr (detail::is_variant<LayerState>)
        n += std::visit([](const auto& s) { return static_cast<std::int64_t>(s.bytes()); }, l);
      else
        n += l.bytes();
    }
    return n;
  }

  std::vector<LayerState> layers;  ///< one per layer of the stack
  tensor<std::int32_t> lengths;    ///< [B] tokens consumed per sequence: the position of the next token
  workspace scratch;               ///< temporaries of every call that uses this state
};

}  // namespace tformer::models
