// nn::quantized_kv_cache<KF, VF>: the full key/value cache of one attention layer with every
// key row (one position, one key/value head: head_dim values) stored in weight format KF and every
// value row in VF: int8 (quant::q8_0: blocks of 32 with a binary16 scale, 8.5 bits a value) or
// 4-bit (quant::q4_0, q4_1, iq4_nl, ...), so the scales are per head and block of 32. Keys may be
// Hadamard-rotated before they are rounded (quant::hadamard<quant::q4_0>: outliers spread over
// their block of 64; reading unrotates them). A drop-in for nn::kv_cache:
//
//   struct attention_q8 : nn::default_attention { using state = nn::quantized_kv_cache<quant::q8_0>; };
//
// The attention kernel reads it directly: for each tile of up to key_block positions it
// dequantizes the tile's rows of one head into its own scratch (ops::kv_reader), never the whole
// cache. Appending quantizes each row once; a position is never re-rounded. So attention over
// this cache computes exactly what attention over an nn::kv_cache computes when that cache is
// given KF's and VF's round trip of the same keys and values (tests/nn/test_quantized_kv_cache.cpp).
// bytes() is the memory held; per position and layer it is kv_heads * (row_bytes(KF) +
// row_bytes(VF)), against kv_heads * head_dim * 8 for the float cache (3.76x smaller for q8_0 at
// head_dim 64, 7.1x for q4_0).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../ops/attention.hpp"
#include "../ops/gather.hpp"
#include "../quant/format.hpp"
#include "attention_config.hpp"
#include "kv_cache.hpp"
#include "state.hpp"

namespace tformer::nn {

/// @brief Every key and value of up to capacity positions per sequence, keys in format KF and
/// values in VF, one packed row per position and head.
template <quant::weight_format KF, quant::weight_format VF = KF>
class quantized_kv_cache final : public ops::kv_reader {
 public:
  using key_format = KF;
  using value_format = VF;

  quantized_kv_cache() = default;
  /// @brief An empty cache for batch sequences of up to capacity positions (c: a resolved config);
  /// shape_error when head_dim is not a whole number of KF's and VF's blocks.
  quantized_kv_cache(std::int64_t batch, std::int64_t capacity, const attention_config& c)
      : heads_(c.kv_heads), dim_(c.head_dim), end_(shape{batch}) {
    for (const auto& [name, block] : {std::pair<const char*, std::int64_t>{KF::name, KF::block_size}, {VF::name, VF::block_size}})
      if (dim_ % block != 0)
        throw shape_error("tformer::nn::quantized_kv_cache: head_dim " + std::to_string(dim_) + " is not a multiple of " +
                          name + "'s block of " + std::to_string(block));
    k_ = tensor<std::uint8_t>(shape{batch, capacity, heads_, quant::row_bytes<KF>(dim_)});
    v_ = tensor<std::uint8_t>(shape{batch, capacity, heads_, quant::row_bytes<VF>(dim_)});
  }
  quantized_kv_cache(const quantized_kv_cache&) = default;
  quantized_kv_cache(quantized_kv_cache&&) noexcept = default;
  quantized_kv_cache& operator=(const quantized_kv_cache&) = default;
  quantized_kv_cache& operator=(quantized_kv_cache&&) noexcept = default;
  ~quantized_kv_cache() = default;

  std::int64_t batch() const noexcept { return end_.rank() == 1 ? end_.dim(0) : 0; }
  std::int64_t capacity() const noexcept { return k_.rank() == 4 ? k_.dim(1) : 0; }
  std::int64_t max_append() const noexcept { return capacity(); }
  /// @brief Memory held: the packed rows and the positions.
  std::int64_t bytes() const noexcept { return k_.numel() + v_.numel() + 4 * end_.numel(); }
  /// @brief Bytes one position takes in this layer (keys and values of every head).
  std::int64_t bytes_per_position() const noexcept {
    return heads_ * (quant::row_bytes<KF>(dim_) + quant::row_bytes<VF>(dim_));
  }
  /// @brief Positions held by sequence b (one past the last).
  std::int64_t end(std::int64_t b) const { return end_(b); }

  /// @brief Stores this call's keys and values (see nn/state.hpp), each row quantized once.
  void append(tensor_view<const float> k, tensor_view<const float> v, tensor_view<const std::int32_t> counts = {},
              tensor_view<const std::int32_t> positions = {}) {
    const std::int64_t B = batch();
    detail::check_append("quantized_kv_cache", k, v, counts, positions, B, heads_, dim_);
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t p = positions.data() ? positions(b) : end_(b), n = counts.data() ? counts(b) : k.dim(1);
      detail::check_room("quantized_kv_cache", b, p, n, end_(b), capacity());
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t h = 0; h < heads_; ++h) {
          KF::quantize_row(k.data() + b * k.stride(0) + i * k.stride(1) + h * k.stride(2), row(k_, b, p + i, h), dim_);
          VF::quantize_row(v.data() + b * v.stride(0) + i * v.stride(1) + h * v.stride(2), row(v_, b, p + i, h), dim_);
        }
      end_(b) = static_cast<std::int32_t>(p + n);
    }
  }

  /// @brief Positions [0, end[b]) at slot = position, read through this cache (ops::kv_reader).
  kv_view keys() const noexcept {
    const shape s{batch(), capacity(), heads_, dim_};  // what the rows hold as floats
    return {tensor_view<const float>(nullptr, s), tensor_view<const float>(nullptr, s), {}, end_.view(), 0, this};
  }

  /// @brief Keys (or values) of sequence b, head h, slots [slot0, slot0 + n) as floats out [n, head_dim].
  void read(bool keys, std::int64_t b, std::int64_t h, std::int64_t slot0, std::int64_t n, float* out) const override {
    for (std::int64_t i = 0; i < n; ++i) {
      if (keys)
        KF::dequantize_row(row(k_, b, slot0 + i, h), out + i * dim_, dim_);
      else
        VF::dequantize_row(row(v_, b, slot0 + i, h), out + i * dim_, dim_);
    }
  }

  /// @brief Keeps rows[i] of the batch as row i.
  void select(std::span<const std::int64_t> rows) {
    std::int64_t used = 0;
    for (std::int64_t b = 0; b < batch(); ++b) used = std::max<std::int64_t>(used, end_(b));
    ops::select_rows(k_, rows, used);
    ops::select_rows(v_, rows, used);
    ops::select_rows(end_, rows);
  }

 private:
  static std::byte* row(tensor<std::uint8_t>& t, std::int64_t b, std::int64_t slot, std::int64_t h) {
    return reinterpret_cast<std::byte*>(t.data() + ((b * t.dim(1) + slot) * t.dim(2) + h) * t.dim(3));
  }
  static const std::byte* row(const tensor<std::uint8_t>& t, std::int64_t b, std::int64_t slot, std::int64_t h) {
    return reinterpret_cast<const std::byte*>(t.data() + ((b * t.dim(1) + slot) * t.dim(2) + h) * t.dim(3));
  }

  std::int64_t heads_ = 0, dim_ = 0;
  tensor<std::uint8_t> k_;    // [B, capacity, kv_heads, row_bytes<KF>(head_dim)]
  tensor<std::uint8_t> v_;    // [B, capacity, kv_heads, row_bytes<VF>(head_dim)]
  tensor<std::int32_t> end_;  // [B] positions held
};

}  // namespace tformer::nn
