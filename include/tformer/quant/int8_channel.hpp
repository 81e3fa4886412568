// quant::int8_channel and quant::uint8_channel: 8-bit weights with one scale per output channel
// (a row of a [out, in] matrix), the first bit-exact with CTranslate2's int8 quantization, the
// second with ONNX's DynamicQuantizeLinear applied to each row.
//
// A per-row scale does not fit a block of fixed size, so these formats' block is one weight (one
// byte) and every row starts with a header holding its scale (the format's row_header_bytes):
// quant::row_bytes<F>(cols) = header + cols, so quant::matrix<F> (rows at r * row_bytes),
// ops::linear, the checkpoint loaders and save_safetensors all see whole rows with their header.
// Rows are byte aligned only: fields are read with memcpy, vectors with unaligned loads.
//
// int8_channel ("int8_channel"), row of cols weights = 4 + cols bytes:
//   offset 0   float32 s       CTranslate2's weight_scale, little endian: s = 127 / max |row|
//   offset 4   int8 q[cols]    weight t = (float)q_t / s (a float division, as CTranslate2 and
//                              io/ctranslate2.hpp dequantize)
// A scale of 0 (only the zero bytes of a new quant::matrix have one) reads as zero weights.
// Quantization is CTranslate2 4.x's (ctranslate2/specs/model_spec.py, quantization="int8"), in
// float32: amax = max |x_t|; amax = 127 when amax == 0 (an all-zero row gets s = 1, q = 0);
// amax = max(amax, 127 / FLT_MAX) (s stays finite); s = 127 / amax (a float division); q_t =
// rint(x_t * s), the product rounded to float, then to the nearest integer with ties to even
// (numpy's rint), in [-127, 127]. Inputs must be finite.
//
// uint8_channel ("uint8_channel"), row of cols weights = 8 + cols bytes:
//   offset 0   float32 s       the row's scale, little endian
//   offset 4   uint8 z         the row's zero point
//   offset 5   3 zero bytes    (keep the weights 4 bytes past a 4-byte field)
//   offset 8   uint8 q[cols]   weight t = ((float)q_t - (float)z) * s (ONNX DequantizeLinear)
// Quantization is ONNX DynamicQuantizeLinear on each row (quant::dynamic_quantization_of in
// quantize_linear.hpp: the range [min(0, min x), max(0, max x)] over 255 levels, zero point
// rounded half to even, q = saturate(round_half_even(x / s) + z)). Inputs must be finite.
//
// int8_channel also has a fused product (ops::linear uses it for quant::int8_activations<
// int8_channel>): activations quantized to int8 per row by the same CTranslate2 rule, exact int32
// sums (vpdpbusd on AVX-512 VNNI, maddubs with ggml's sign trick on AVX2, scalar), y = (float)I /
// (s_x * s_w); every path gives the same bits (see channel_kernels::int8_dot).
//
// float_product (decode, up to 8 activation rows; three paths chosen at compile time: AVX-512,
// AVX2 + FMA, and the scalar reference): the weights' integers (q - z) become floats in registers,
// never written to memory, acc = fma((float)(q_t - z), x_t, acc) over t, and the row's scale is
// applied once at the end: y = acc / s (int8_channel) or acc * s (uint8_channel). That differs from
// the dot product of dequantized rows by the scale's rounding (it is applied once instead of per
// weight), well within float products' error; the SIMD paths differ from the scalar one only in
// the order of the float sums.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../config.hpp"
#include "../core/error.hpp"
#include "format.hpp"
#include "ggml_dot.hpp"  // for_row_groups, hsum
#include "quantize_linear.hpp"  // dynamic_quantization_of, round_half_even

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#define TFORMER_CHANNEL_DOT_AVX512F 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define TFORMER_CHANNEL_DOT_AVX2 1
#endif
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(TFORMER_CHANNEL_DOT_AVX512F)
#define TFORMER_CHANNEL_DOT_AVX512VNNI 1
#endif
#if defined(TFORMER_CHANNEL_DOT_AVX2)
#include <immintrin.h>
#endif

namespace tformer::quant {

namespace detail::channel_kernels {

inline constexpr std::int64_t max_rows = 8;  // activation rows that share one read of a weight row

/// @brief v with its 4 bytes reversed.
constexpr std::uint32_t swap_bytes(std::uint32_t v) noexcept {
  return (v >> 24) | ((v >> 8) & 0xFF00u) | ((v << 8) & 0xFF0000u) | (v << 24);
}
/// @brief The float32 at p (an unaligned little-endian field).
inline float float_at(const std::byte* p) noexcept {
  std::uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  if constexpr (std::endian::native == std::endian::big) bits = swap_bytes(bits);
  return std::bit_cast<float>(bits);
}
/// @brief Stores v at p as a little-endian float32.
inline void put_float(std::byte* p, float v) noexcept {
  auto bits = std::bit_cast<std::uint32_t>(v);
  if constexpr (std::endian::native == std::endian::big) bits = swap_bytes(bits);
  std::memcpy(p, &bits, sizeof bits);
}

/// @brief The layout of a per-channel format's rows: Q the stored integer (int8 or uint8), header
/// bytes before the weights, the zero point's offset (uint8 only), and the final scaling
/// (divide: acc / s, else acc * s).
template <class Q, std::int64_t Header, bool Divide>
struct layout {
  using q_type = Q;
  static constexpr std::int64_t header = Header;
  static constexpr bool divide = Divide;
  static float scale(const std::byte* row) noexcept { return float_at(row); }
  static std::int32_t zero(const std::byte* row) noexcept {
    if constexpr (std::is_same_v<Q, std::uint8_t>) return static_cast<std::int32_t>(std::to_integer<std::uint8_t>(row[4]));
    else return 0;
  }
  static const Q* q(const std::byte* row) noexcept { return reinterpret_cast<const Q*>(row + Header); }
  /// @brief acc / s or acc * s; a scale of 0 (the zero bytes of a new matrix) gives 0.
  static float finish(float acc, float s) noexcept {
    if constexpr (Divide) return s != 0.0f ? acc / s : 0.0f;
    else return acc * s;
  }
};

using ggml_dot::for_row_groups;  // groups of up to max_rows activation rows
static_assert(max_rows == ggml_dot::max_rows);
#if defined(TFORMER_CHANNEL_DOT_AVX2)
using ggml_dot::hsum;
#endif

/// @brief The float-activation product over rows in layout L: y[i * ldy + j] = finish(sum_t
/// (q_jt - z_j) x_it, s_j) for i < m, j < n; w -> n rows of row_bytes each.
template <class L>
struct float_dot {
  /// @brief The reference: acc = fma((float)(q_t - z), x_t, acc), t in order.
  static void scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        const auto* q = L::q(row);
        const std::int32_t z = L::zero(row);
        float acc[R] = {};
        for (std::int64_t t = 0; t < k; ++t) {
          const auto wt = static_cast<float>(static_cast<std::int32_t>(q[t]) - z);
          for (int r = 0; r < R; ++r) acc[r] = std::fma(wt, x[(i0 + r) * ldx + t], acc[r]);
        }
        const float s = L::scale(row);
        for (int r = 0; r < R; ++r) y[(i0 + r) * ldy + j] = L::finish(acc[r], s);
      }
    });
  }

#if defined(TFORMER_CHANNEL_DOT_AVX2)
  /// @brief 8 weights at p as floats (q - z).
  static __m256 weights8(const typename L::q_type* p, __m256i z) noexcept {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    const __m256i i = std::is_same_v<typename L::q_type, std::int8_t> ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(i, z));
  }
  /// @brief AVX2 + FMA: 8 weights per register, one accumulator per activation row; the tail
  /// (k % 8 weights) in scalar fmas after the lanes are summed.
  static void avx2(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    const std::int64_t k8 = k / 8 * 8;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        const auto* q = L::q(row);
        const std::int32_t z = L::zero(row);
        const __m256i zv = _mm256_set1_epi32(z);
        __m256 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
        for (std::int64_t t = 0; t < k8; t += 8) {
          const __m256 wf = weights8(q + t, zv);
          for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(wf, _mm256_loadu_ps(x + (i0 + r) * ldx + t), acc[r]);
        }
        const float s = L::scale(row);
        for (int r = 0; r < R; ++r) {
          float a = hsum(acc[r]);
          for (std::int64_t t = k8; t < k; ++t)
            a = std::fma(static_cast<float>(static_cast<std::int32_t>(q[t]) - z), x[(i0 + r) * ldx + t], a);
          y[(i0 + r) * ldy + j] = L::finish(a, s);
        }
      }
    });
  }
#endif

#if defined(TFORMER_CHANNEL_DOT_AVX512F)
  /// @brief AVX-512: as avx2, 16 weights per register (tail in scalar fmas).
  static void avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                     std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    const std::int64_t k16 = k / 16 * 16;
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        const auto* q = L::q(row);
        const std::int32_t z = L::zero(row);
        const __m512i zv = _mm512_set1_epi32(z);
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        for (std::int64_t t = 0; t < k16; t += 16) {
          const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + t));
          const __m512i i =
              std::is_same_v<typename L::q_type, std::int8_t> ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
          const __m512 wf = _mm512_cvtepi32_ps(_mm512_sub_epi32(i, zv));
          for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(wf, _mm512_loadu_ps(x + (i0 + r) * ldx + t), acc[r]);
        }
        const float s = L::scale(row);
        for (int r = 0; r < R; ++r) {
          float a = _mm512_reduce_add_ps(acc[r]);
          for (std::int64_t t = k16; t < k; ++t)
            a = std::fma(static_cast<float>(static_cast<std::int32_t>(q[t]) - z), x[(i0 + r) * ldx + t], a);
          y[(i0 + r) * ldy + j] = L::finish(a, s);
        }
      }
    });
  }
#endif

  /// @brief The best path compiled in (best_float_path).
  static void best(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                   std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_CHANNEL_DOT_AVX512F)
    avx512(x, ldx, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_CHANNEL_DOT_AVX2)
    avx2(x, ldx, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(x, ldx, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The name of the path float_dot<L>::best uses in this build (the channel path macros are
/// ggml_dot's float ones: the same choice).
using ggml_dot::best_float_path;

using int8_layout = layout<std::int8_t, 4, true>;
using uint8_layout = layout<std::uint8_t, 8, false>;

/// @brief CTranslate2's scale for a row whose largest magnitude is amax (see the top of the file).
inline float ct2_scale(float amax) noexcept {
  if (amax == 0.0f) amax = 127.0f;
  amax = std::max(amax, 127.0f / std::numeric_limits<float>::max());
  return 127.0f / amax;
}

// The fused product of int8_channel (decode with int8 activations, as CTranslate2 runs int8
// models): each activation row is quantized like a weight row (CTranslate2's rule, scale s_x =
// 127 / max |x|, q = round_half_even(x * s_x)), the int32 sums I = sum_t qx_t qw_t are exact, and
// y = (float)I / (s_x * s_w) (0 where s_w = 0). Every path computes the same I and the same float
// operations, so all paths give the same bits. The scratch, row i at acts + i * fused_stride(k):
//   [0, 4)     float s_x
//   [4, 8)     int32 sum_t qx_t (the VNNI path's correction)
//   [64, 64 + kp)  int8 qx[k], zero padded to kp = k rounded up to 64 (whole 64-byte loads)
// I is an int32 sum: exact while k < 2^31 / (127 * 128), about 132000.
inline constexpr std::int64_t fused_stride(std::int64_t k) noexcept { return 64 + (k + 63) / 64 * 64; }

/// @brief x [m, k] (row stride ldx) -> the scratch above.
inline void prepare_int8(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
  for (std::int64_t i = 0; i < m; ++i) {
    const float* xr = x + i * ldx;
    std::byte* row = acts + i * fused_stride(k);
    float amax = 0.0f;
    for (std::int64_t t = 0; t < k; ++t) amax = std::max(amax, std::fabs(xr[t]));
    const float s = ct2_scale(amax);
    auto* q = reinterpret_cast<std::int8_t*>(row + 64);
    std::int32_t sum = 0;
    for (std::int64_t t = 0; t < k; ++t) {
      q[t] = static_cast<std::int8_t>(onnx_quant::round_half_even(xr[t] * s));
      sum += q[t];
    }
    std::fill(q + k, q + (k + 63) / 64 * 64, std::int8_t{0});
    std::memcpy(row, &s, 4);
    std::memcpy(row + 4, &sum, 4);
  }
}

/// @brief The fused product's paths over int8_channel rows.
struct int8_dot {
  static float act_scale(const std::byte* acts, std::int64_t k, std::int64_t i) noexcept {
    float s;
    std::memcpy(&s, acts + i * fused_stride(k), 4);
    return s;
  }
  static std::int32_t act_sum(const std::byte* acts, std::int64_t k, std::int64_t i) noexcept {
    std::int32_t v;
    std::memcpy(&v, acts + i * fused_stride(k) + 4, 4);
    return v;
  }
  static const std::int8_t* act_q(const std::byte* acts, std::int64_t k, std::int64_t i) noexcept {
    return reinterpret_cast<const std::int8_t*>(acts + i * fused_stride(k) + 64);
  }
  /// @brief y = (float)I / (s_x * s_w), 0 where s_w = 0.
  static float finish(std::int32_t sum, float sx, float sw) noexcept {
    return sw != 0.0f ? static_cast<float>(sum) / (sx * sw) : 0.0f;
  }

  /// @brief The reference: I = sum_t qx_t qw_t in int32, t in order.
  static void scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                     std::int64_t n, float* y, std::int64_t ldy) {
    for (std::int64_t j = 0; j < n; ++j) {
      const std::byte* row = w + j * row_bytes;
      const auto* qw = int8_layout::q(row);
      const float sw = int8_layout::scale(row);
      for (std::int64_t i = 0; i < m; ++i) {
        const std::int8_t* qx = act_q(acts, k, i);
        std::int32_t sum = 0;
        for (std::int64_t t = 0; t < k; ++t) sum += static_cast<std::int32_t>(qx[t]) * qw[t];
        y[i * ldy + j] = finish(sum, act_scale(acts, k, i), sw);
      }
    }
  }

#if defined(TFORMER_CHANNEL_DOT_AVX2)
  /// @brief AVX2: 32 weights per step with ggml's sign trick (|w| as u8 by sign(x, w) as s8 in
  /// maddubs: pairs at most 2 * 128 * 127 < 32767, no saturation), the tail in scalar.
  static void avx2(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                   std::int64_t n, float* y, std::int64_t ldy) {
    const std::int64_t k32 = k / 32 * 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        const auto* qw = int8_layout::q(row);
        __m256i acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
        for (std::int64_t t = 0; t < k32; t += 32) {
          const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qw + t));
          const __m256i aw = _mm256_abs_epi8(wv);
          for (int r = 0; r < R; ++r) {
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act_q(acts, k, i0 + r) + t));
            acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv)), ones));
          }
        }
        const float sw = int8_layout::scale(row);
        for (int r = 0; r < R; ++r) {
          alignas(32) std::int32_t lanes[8];
          _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[r]);
          std::int32_t sum = 0;
          for (const std::int32_t v : lanes) sum += v;
          const std::int8_t* qx = act_q(acts, k, i0 + r);
          for (std::int64_t t = k32; t < k; ++t) sum += static_cast<std::int32_t>(qx[t]) * qw[t];
          y[(i0 + r) * ldy + j] = finish(sum, act_scale(acts, k, i0 + r), sw);
        }
      }
    });
  }
#endif

#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
  /// @brief AVX-512 VNNI: 64 weights per vpdpbusd, the weights shifted to u8 (w + 128, a flipped
  /// sign bit) and the activations s8: sum (w + 128) x = I + 128 sum x, the activation sums from the
  /// scratch. The tail is a masked load (bytes past k read as 0, +128 -> 128, against zero padding).
  static void avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                         std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    const std::int64_t kp = (k + 63) / 64 * 64;
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for_row_groups(m, [&]<int R>(std::int64_t i0) {
      for (std::int64_t j = 0; j < n; ++j) {
        const std::byte* row = w + j * row_bytes;
        const auto* qw = int8_layout::q(row);
        __m512i acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
        for (std::int64_t t = 0; t < kp; t += 64) {
          const __m512i wv = t + 64 <= k ? _mm512_loadu_si512(qw + t)
                                         : _mm512_maskz_loadu_epi8(~__mmask64{0} >> (t + 64 - k), qw + t);
          const __m512i uw = _mm512_xor_si512(wv, flip);
          for (int r = 0; r < R; ++r) acc[r] = _mm512_dpbusd_epi32(acc[r], uw, _mm512_loadu_si512(act_q(acts, k, i0 + r) + t));
        }
        const float sw = int8_layout::scale(row);
        for (int r = 0; r < R; ++r) {
          const std::int32_t sum = _mm512_reduce_add_epi32(acc[r]) - 128 * act_sum(acts, k, i0 + r);
          y[(i0 + r) * ldy + j] = finish(sum, act_scale(acts, k, i0 + r), sw);
        }
      }
    });
  }
#endif

  /// @brief The best path compiled in (best_fused_path).
  static void best(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                   std::int64_t n, float* y, std::int64_t ldy) {
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
    avx512vnni(acts, m, k, w, row_bytes, n, y, ldy);
#elif defined(TFORMER_CHANNEL_DOT_AVX2)
    avx2(acts, m, k, w, row_bytes, n, y, ldy);
#else
    scalar(acts, m, k, w, row_bytes, n, y, ldy);
#endif
  }
};

/// @brief The name of the path int8_dot::best uses in this build.
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
inline constexpr const char* best_fused_path = "avx512vnni";
#elif defined(TFORMER_CHANNEL_DOT_AVX2)
inline constexpr const char* best_fused_path = "avx2";
#else
inline constexpr const char* best_fused_path = "scalar";
#endif

}  // namespace detail::channel_kernels

/// @brief Symmetric int8 weights with one float32 scale per row, CTranslate2's int8 (see the top
/// of int8_channel.hpp): a row is its scale s = 127 / max|row| and q = rint(x * s); weight = q / s.
struct int8_channel {
  static constexpr const char* name = "int8_channel";
  static constexpr std::int64_t block_size = 1;  // the row's scale is a header (row_header_bytes)
  static constexpr std::int64_t block_bytes = 1;
  static constexpr double bits_per_weight = 8.0;  // plus 32 bits per row
  static constexpr std::int64_t row_header_bytes = detail::channel_kernels::int8_layout::header;

  /// @brief x [n] -> the row (4 + n bytes): CTranslate2's scale and rint(x * s). Finite x.
  static void quantize_row(const float* x, std::byte* row, std::int64_t n) {
    float amax = 0.0f;
    for (std::int64_t t = 0; t < n; ++t) amax = std::max(amax, std::fabs(x[t]));
    const float s = detail::channel_kernels::ct2_scale(amax);
    detail::channel_kernels::put_float(row, s);
    auto* q = reinterpret_cast<std::int8_t*>(row + row_header_bytes);
    for (std::int64_t t = 0; t < n; ++t) {
      const float p = x[t] * s;  // rounded to float, then to an integer (no addition to fuse with)
      q[t] = static_cast<std::int8_t>(detail::onnx_quant::round_half_even(p));
    }
  }
  /// @brief The row (4 + n bytes) -> y [n]: y_t = (float)q_t / s (0 where s = 0: the zero bytes
  /// of a new quant::matrix read as zero weights, not 0 / 0).
  static void dequantize_row(const std::byte* row, float* y, std::int64_t n) {
    const float s = detail::channel_kernels::float_at(row);
    if (s == 0.0f) {
      std::fill(y, y + n, 0.0f);
      return;
    }
    const auto* q = reinterpret_cast<const std::int8_t*>(row + row_header_bytes);
    for (std::int64_t t = 0; t < n; ++t) y[t] = static_cast<float>(q[t]) / s;
  }
  static constexpr std::int64_t max_fused_rows = detail::channel_kernels::max_rows;
  /// @brief Scratch bytes for m rows of k int8 activations (see channel_kernels::fused_stride).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return static_cast<std::size_t>(m * detail::channel_kernels::fused_stride(k));
  }
  /// @brief x [m, k] (row stride ldx) -> int8 per activation row, CTranslate2's scale rule.
  static void prepare_activations(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
    detail::channel_kernels::prepare_int8(x, ldx, m, k, acts);
  }
  /// @brief y[i * ldy + j] = (float)(sum_t qx_it q_jt) / (s_x,i * s_j): exact int32 sums (best path).
  static void fused_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    detail::channel_kernels::int8_dot::best(acts, m, k, w, row_bytes, n, y, ldy);
  }
  /// @brief y[i * ldy + j] = (sum_t q_jt x_it) / s_j, weights converted in registers (best path).
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    detail::channel_kernels::float_dot<detail::channel_kernels::int8_layout>::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

/// @brief Asymmetric uint8 weights with a float32 scale and a uint8 zero point per row, ONNX's
/// DynamicQuantizeLinear per row (see the top of int8_channel.hpp): weight = (q - z) * s.
struct uint8_channel {
  static constexpr const char* name = "uint8_channel";
  static constexpr std::int64_t block_size = 1;  // the row's scale and zero point are a header
  static constexpr std::int64_t block_bytes = 1;
  static constexpr double bits_per_weight = 8.0;  // plus 64 bits per row
  static constexpr std::int64_t row_header_bytes = detail::channel_kernels::uint8_layout::header;

  /// @brief x [n] -> the row (8 + n bytes): DynamicQuantizeLinear of x. Finite x.
  static void quantize_row(const float* x, std::byte* row, std::int64_t n) {
    float lo = 0.0f, hi = 0.0f;
    for (std::int64_t t = 0; t < n; ++t) {
      lo = x[t] < lo ? x[t] : lo;
      hi = x[t] > hi ? x[t] : hi;
    }
    const dynamic_quantization dq = dynamic_quantization_of(lo, hi);
    detail::channel_kernels::put_float(row, dq.scale);
    row[4] = static_cast<std::byte>(dq.zero_point);
    row[5] = row[6] = row[7] = std::byte{0};
    auto* q = reinterpret_cast<std::uint8_t*>(row + row_header_bytes);
    const float z = dq.zero_point;
    for (std::int64_t t = 0; t < n; ++t)
      q[t] = detail::onnx_quant::saturate<std::uint8_t>(detail::onnx_quant::round_half_even(x[t] / dq.scale), z);
  }
  /// @brief The row (8 + n bytes) -> y [n]: y_t = ((float)q_t - (float)z) * s.
  static void dequantize_row(const std::byte* row, float* y, std::int64_t n) {
    const float s = detail::channel_kernels::float_at(row);
    const auto z = static_cast<float>(std::to_integer<std::uint8_t>(row[4]));
    const auto* q = reinterpret_cast<const std::uint8_t*>(row + row_header_bytes);
    for (std::int64_t t = 0; t < n; ++t) y[t] = (static_cast<float>(q[t]) - z) * s;
  }
  /// @brief y[i * ldy + j] = (sum_t (q_jt - z_j) x_it) * s_j, weights converted in registers.
  static void float_product(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, const std::byte* w,
                            std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy) {
    detail::channel_kernels::float_dot<detail::channel_kernels::uint8_layout>::best(x, ldx, m, k, w, row_bytes, n, y, ldy);
  }
};

static_assert(row_bytes<int8_channel>(10) == 14 && row_bytes<uint8_channel>(10) == 18 &&
              row_bytes<int8_activations<int8_channel>>(10) == 14);
static_assert(float_product_format<int8_channel> && float_product_format<uint8_channel>);
static_assert(fused_format<int8_channel> && uses_fused_product<int8_activations<int8_channel>>);

}  // namespace tformer::quant
