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
// (s_x * s_w); every path gives the same bits (see channel_kernels::int8_dot). From
// packed_min_rows activation rows (8, where AVX-512 VNNI is compiled) ops::linear runs the same
// sums as a GEMM instead (quant::packed_fused_format, channel_kernels::int8_gemm): each tile packs
// 64 weight rows into vpdpbusd's layout and multiplies 6 activation rows x 64 columns at a time
// with the accumulators in registers, the same bits again (encoders, prefill, translation).
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

/// @brief Writes a prepared row's scale, activation sum and zero padding (after its integers).
inline void finish_prepared_row(std::byte* row, std::int64_t k, float s, std::int32_t sum) noexcept {
  auto* q = reinterpret_cast<std::int8_t*>(row + 64);
  std::fill(q + k, q + (k + 63) / 64 * 64, std::int8_t{0});
  std::memcpy(row, &s, 4);
  std::memcpy(row + 4, &sum, 4);
}

/// @brief x [m, k] (row stride ldx) -> the scratch above: the reference.
inline void prepare_int8_scalar(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
  for (std::int64_t i = 0; i < m; ++i) {
    const float* xr = x + i * ldx;
    std::byte* row = acts + i * fused_stride(k);
    auto* q = reinterpret_cast<std::int8_t*>(row + 64);
    float amax = 0.0f;
    for (std::int64_t t = 0; t < k; ++t) amax = std::max(amax, std::fabs(xr[t]));
    const float s = ct2_scale(amax);
    std::int32_t sum = 0;
    for (std::int64_t t = 0; t < k; ++t) {
      q[t] = static_cast<std::int8_t>(onnx_quant::round_half_even(xr[t] * s));
      sum += q[t];
    }
    finish_prepared_row(row, k, s, sum);
  }
}

#if defined(TFORMER_CHANNEL_DOT_AVX512F)
/// @brief AVX-512, 16 activations per step: the same bytes as the reference (the maximum does not
/// depend on the order, x * s is one rounding either way, and the conversion rounds half to even
/// whatever the rounding mode, as round_half_even does).
inline void prepare_int8_avx512(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
  const auto tail = [k](std::int64_t t) {
    return t + 16 <= k ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (k - t)) - 1);
  };
  for (std::int64_t i = 0; i < m; ++i) {
    const float* xr = x + i * ldx;
    std::byte* row = acts + i * fused_stride(k);
    auto* q = reinterpret_cast<std::int8_t*>(row + 64);
    __m512 mx = _mm512_setzero_ps();
    for (std::int64_t t = 0; t < k; t += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail(t), xr + t)));
    const float s = ct2_scale(_mm512_reduce_max_ps(mx));
    const __m512 sv = _mm512_set1_ps(s);
    __m512i sums = _mm512_setzero_si512();
    for (std::int64_t t = 0; t < k; t += 16) {
      const __mmask16 mask = tail(t);
      const __m512i v = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, xr + t), sv),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      sums = _mm512_add_epi32(sums, v);
      _mm512_mask_cvtsepi32_storeu_epi8(q + t, mask, v);
    }
    finish_prepared_row(row, k, s, _mm512_reduce_add_epi32(sums));
  }
}
#endif

/// @brief x [m, k] (row stride ldx) -> the scratch above (the best path compiled in).
inline void prepare_int8(const float* x, std::int64_t ldx, std::int64_t m, std::int64_t k, std::byte* acts) {
#if defined(TFORMER_CHANNEL_DOT_AVX512F)
  prepare_int8_avx512(x, ldx, m, k, acts);
#else
  prepare_int8_scalar(x, ldx, m, k, acts);
#endif
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

// The packed product of int8_channel (many activation rows: encoders, prefill, translation): the
// same integer sums I and the same finish as int8_dot, so the same bits, computed as a GEMM. The
// weights of n rows (output columns) are packed per call into panels of 64 columns:
//   panel p: uint8 [kq][64][4]   kq = ceil(k / 4) quads; byte (q, c, e) = w[p * 64 + c][4q + e] ^ 0x80
//                                (w + 128; 0x80, weight 0, past k and past n)
//   then float sw[panels * 64]   the rows' scales (0 past n)
// Each activation quad (4 int8 of one row, from the int8_dot scratch) is broadcast against the 4
// registers of a panel's quad: vpdpbusd sums (w + 128) x = I + 128 sum_t x_t, and the scratch's
// activation sums take the 128 sum_t x_t off, as in int8_dot::avx512vnni. A micro-kernel call
// holds 6 rows x 64 columns of int32 accumulators (24 registers) over the whole of k.
struct int8_gemm {
  static constexpr std::int64_t panel = 64;  // columns per panel (4 registers of 16 int32)
  static constexpr std::int64_t rows = 6;    // activation rows per micro-kernel call

  static constexpr std::int64_t quads(std::int64_t k) noexcept { return (k + 3) / 4; }
  static constexpr std::int64_t panels(std::int64_t n) noexcept { return (n + panel - 1) / panel; }
  /// @brief Bytes of n packed rows of k weights.
  static constexpr std::size_t packed_bytes(std::int64_t k, std::int64_t n) noexcept {
    return static_cast<std::size_t>(panels(n) * panel * (quads(k) * 4 + 4));
  }
  static const float* scales(const std::byte* packed, std::int64_t k, std::int64_t n) noexcept {
    return reinterpret_cast<const float*>(packed + panels(n) * panel * quads(k) * 4);
  }

  /// @brief The scales of n rows (0 past n), after the panels.
  static void pack_scales(const std::byte* w, std::int64_t row_bytes, std::int64_t k, std::int64_t n, std::byte* packed) {
    auto* sw = reinterpret_cast<float*>(packed + panels(n) * panel * quads(k) * 4);
    for (std::int64_t j = 0; j < panels(n) * panel; ++j) sw[j] = j < n ? int8_layout::scale(w + j * row_bytes) : 0.0f;
  }

  /// @brief The reference packing: byte by byte.
  static void pack_scalar(const std::byte* w, std::int64_t row_bytes, std::int64_t k, std::int64_t n, std::byte* packed) {
    const std::int64_t kq = quads(k);
    auto* out = reinterpret_cast<std::uint8_t*>(packed);
    for (std::int64_t p = 0; p < panels(n); ++p)
      for (std::int64_t q = 0; q < kq; ++q)
        for (std::int64_t c = 0; c < panel; ++c)
          for (std::int64_t e = 0; e < 4; ++e) {
            const std::int64_t j = p * panel + c, t = 4 * q + e;
            const std::int8_t v = j < n && t < k ? int8_layout::q(w + j * row_bytes)[t] : std::int8_t{0};
            out[((p * kq + q) * panel + c) * 4 + e] = static_cast<std::uint8_t>(static_cast<std::uint8_t>(v) ^ 0x80u);
          }
    pack_scales(w, row_bytes, k, n, packed);
  }

  /// @brief The reference product on packed weights: I = sum_t x_t (u_t - 128) in int32, t in
  /// order; y[i * ldy + j] = int8_dot::finish(I, s_x, s_w).
  static void product_scalar(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* packed,
                             std::int64_t n, float* y, std::int64_t ldy) {
    const std::int64_t kq = quads(k);
    const auto* u = reinterpret_cast<const std::uint8_t*>(packed);
    const float* sw = scales(packed, k, n);
    for (std::int64_t i = 0; i < m; ++i) {
      const std::int8_t* qx = int8_dot::act_q(acts, k, i);
      for (std::int64_t j = 0; j < n; ++j) {
        const std::uint8_t* col = u + ((j / panel) * kq * panel + j % panel) * 4;
        std::int32_t sum = 0;
        for (std::int64_t t = 0; t < k; ++t)
          sum += static_cast<std::int32_t>(qx[t]) * (static_cast<std::int32_t>(col[(t / 4) * panel * 4 + t % 4]) - 128);
        y[i * ldy + j] = int8_dot::finish(sum, int8_dot::act_scale(acts, k, i), sw[j]);
      }
    }
  }

#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
  /// @brief AVX-512: 16 rows x 16 quads at a time, a 16 x 16 transpose of 32-bit words in
  /// registers (unpack 32, unpack 64, two 128-bit lane shuffles); masked loads past k and n.
  static void pack_avx512(const std::byte* w, std::int64_t row_bytes, std::int64_t k, std::int64_t n, std::byte* packed) {
    const std::int64_t kq = quads(k);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    auto* out = reinterpret_cast<std::uint8_t*>(packed);
    for (std::int64_t p = 0; p < panels(n); ++p) {
      for (std::int64_t c0 = 0; c0 < panel; c0 += 16) {
        for (std::int64_t q0 = 0; q0 < kq; q0 += 16) {
          {  // 16 rows read side by side are more streams than the hardware prefetcher follows
             // (from DRAM the packing ran at a fifth of the read bandwidth): the next block of 16
             // rows, contiguous bytes, is prefetched a slice per step of this one (2.2x faster)
            const std::int64_t next = p * panel + c0 + 16;
            const std::int64_t lines = (std::min<std::int64_t>(16, std::max<std::int64_t>(0, n - next)) * row_bytes + 63) / 64;
            const std::int64_t chunks = (kq + 15) / 16, ci = q0 / 16;
            const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(w) + static_cast<std::uintptr_t>(next * row_bytes);
            for (std::int64_t l = lines * ci / chunks; l < lines * (ci + 1) / chunks; ++l)  // addresses, never read
              _mm_prefetch(reinterpret_cast<const char*>(base + static_cast<std::uintptr_t>(64 * l)), _MM_HINT_T0);
          }
          const std::int64_t t0 = 4 * q0;  // the first weight of this block
          const __mmask64 bytes = t0 + 64 <= k ? ~__mmask64{0} : ~__mmask64{0} >> (t0 + 64 - k);
          __m512i r[16];  // r[i]: row p * 64 + c0 + i, weights t0 .. t0 + 63
          for (int i = 0; i < 16; ++i) {
            const std::int64_t j = p * panel + c0 + i;
            if (j >= n) {
              r[i] = _mm512_setzero_si512();
              continue;
            }
            const std::int8_t* src = int8_layout::q(w + j * row_bytes) + t0;
            r[i] = _mm512_maskz_loadu_epi8(bytes, src);
          }
          __m512i a[16], b[16];
          for (int i = 0; i < 8; ++i) {
            a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
          }
          for (int i = 0; i < 4; ++i) {  // b[4i + c], lane L: quad 4L + c of rows 4i .. 4i + 3
            b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
            b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
            b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
            b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
          }
          for (int c = 0; c < 4; ++c) {  // quads 4L + c: lane L of b[c], b[4 + c], b[8 + c], b[12 + c]
            const __m512i s0 = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(1, 0, 1, 0));
            const __m512i s1 = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(3, 2, 3, 2));
            const __m512i s2 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(1, 0, 1, 0));
            const __m512i s3 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(3, 2, 3, 2));
            const __m512i quad[4] = {_mm512_shuffle_i32x4(s0, s2, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i32x4(s0, s2, _MM_SHUFFLE(3, 1, 3, 1)),
                                     _mm512_shuffle_i32x4(s1, s3, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i32x4(s1, s3, _MM_SHUFFLE(3, 1, 3, 1))};
            for (int L = 0; L < 4; ++L) {
              const std::int64_t q = q0 + 4 * L + c;
              if (q < kq) _mm512_storeu_si512(out + ((p * kq + q) * panel + c0) * 4, _mm512_xor_si512(quad[L], flip));
            }
          }
        }
      }
    }
    pack_scales(w, row_bytes, k, n, packed);
  }

  /// @brief R activation rows from i0 against one panel (cols <= 64 of its columns are stored).
  /// The 4R accumulators are named variables (an array of them goes through the stack with g++).
  template <int R>
  static void tile(const std::byte* acts, std::int64_t k, std::int64_t i0, const std::uint8_t* u, const float* sw,
                   std::int64_t cols, float* y, std::int64_t ldy) {
    static_assert(R >= 1 && R <= rows);
    const std::int64_t kq = quads(k);
    const std::int8_t* qx[rows] = {};
    for (int r = 0; r < R; ++r) qx[r] = int8_dot::act_q(acts, k, i0 + r);
    // accumulator c<r><c>: row r, columns 16c .. 16c + 15
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    __m512i c40 = c00, c41 = c00, c42 = c00, c43 = c00, c50 = c00, c51 = c00, c52 = c00, c53 = c00;
    for (std::int64_t q = 0; q < kq; ++q) {
      const std::uint8_t* uq = u + q * panel * 4;
      const __m512i b0 = _mm512_loadu_si512(uq), b1 = _mm512_loadu_si512(uq + 64);
      const __m512i b2 = _mm512_loadu_si512(uq + 128), b3 = _mm512_loadu_si512(uq + 192);
#define TFORMER_INT8_GEMM_ROW(r)                                   \
  if constexpr (R > r) {                                           \
    std::int32_t quad;                                             \
    std::memcpy(&quad, qx[r] + 4 * q, sizeof quad);                \
    const __m512i a = _mm512_set1_epi32(quad);                     \
    c##r##0 = _mm512_dpbusd_epi32(c##r##0, b0, a);                 \
    c##r##1 = _mm512_dpbusd_epi32(c##r##1, b1, a);                 \
    c##r##2 = _mm512_dpbusd_epi32(c##r##2, b2, a);                 \
    c##r##3 = _mm512_dpbusd_epi32(c##r##3, b3, a);                 \
  }
      TFORMER_INT8_GEMM_ROW(0)
      TFORMER_INT8_GEMM_ROW(1)
      TFORMER_INT8_GEMM_ROW(2)
      TFORMER_INT8_GEMM_ROW(3)
      TFORMER_INT8_GEMM_ROW(4)
      TFORMER_INT8_GEMM_ROW(5)
#undef TFORMER_INT8_GEMM_ROW
    }
    const __m512i accs[rows][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},
                                   {c30, c31, c32, c33}, {c40, c41, c42, c43}, {c50, c51, c52, c53}};
    const __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) {
      const __m512i corr = _mm512_set1_epi32(128 * int8_dot::act_sum(acts, k, i0 + r));
      const __m512 sx = _mm512_set1_ps(int8_dot::act_scale(acts, k, i0 + r));
      float* yr = y + (i0 + r) * ldy;
      const __m512i* acc = accs[r];
      for (int c = 0; c < 4 && 16 * c < cols; ++c) {
        const __m512 s = _mm512_loadu_ps(sw + 16 * c);
        // (float)I / (s_x * s_w), 0 where s_w = 0: the operations of int8_dot::finish, lane by lane
        const __m512 v = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(s, zero, _CMP_NEQ_UQ),
                                             _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[c], corr)), _mm512_mul_ps(sx, s));
        const std::int64_t left = cols - 16 * c;
        _mm512_mask_storeu_ps(yr + 16 * c, left >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1), v);
      }
    }
  }

  /// @brief AVX-512 VNNI: panel by panel, 6 rows at a time against the panel's 64 columns.
  static void product_avx512vnni(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* packed,
                                 std::int64_t n, float* y, std::int64_t ldy) {
    panel_loop(acts, m, k, packed, n, y, ldy, {}, 0);
  }

  /// @brief The panels of packed against every row; while panel p runs, the next_lines cache
  /// lines from next (the raw rows the caller packs next) are prefetched to L2, a slice per row
  /// group.
  static void panel_loop(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* packed,
                         std::int64_t n, float* y, std::int64_t ldy, std::uintptr_t next, std::int64_t next_lines) {
    const std::int64_t kq = quads(k);
    const auto* u = reinterpret_cast<const std::uint8_t*>(packed);
    const float* sw = scales(packed, k, n);
    const std::int64_t groups = (m + rows - 1) / rows;
    for (std::int64_t p = 0; p < panels(n); ++p) {
      const std::int64_t cols = std::min(panel, n - p * panel);
      std::int64_t group = 0, fetched = 0;
      ggml_dot::for_row_groups<rows>(m, [&]<int R>(std::int64_t i0) {
        tile<R>(acts, k, i0, u + p * kq * panel * 4, sw + p * panel, cols, y + p * panel, ldy);
        if (p + 1 == panels(n))  // addresses, never read
          for (const std::int64_t upto = next_lines * ++group / groups; fetched < upto; ++fetched)
            _mm_prefetch(reinterpret_cast<const char*>(next + static_cast<std::uintptr_t>(64 * fetched)), _MM_HINT_T1);
      });
    }
  }
#endif

  /// @brief The best packing compiled in (the same bytes on every path).
  static void pack(const std::byte* w, std::int64_t row_bytes, std::int64_t k, std::int64_t n, std::byte* packed) {
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
    pack_avx512(w, row_bytes, k, n, packed);
#else
    pack_scalar(w, row_bytes, k, n, packed);
#endif
  }
  /// @brief The best product compiled in, on packed rows.
  static void product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* packed, std::int64_t n,
                      float* y, std::int64_t ldy) {
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
    product_avx512vnni(acts, m, k, packed, n, y, ldy);
#else
    product_scalar(acts, m, k, packed, n, y, ldy);
#endif
  }
  /// @brief y for n rows of w (row_bytes apart), a panel of 64 rows at a time packed into scratch
  /// (packed_bytes(k, panel) bytes) and multiplied while the next panel's rows are prefetched.
  static void run(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w, std::int64_t row_bytes,
                  std::int64_t n, float* y, std::int64_t ldy, std::byte* scratch) {
    for (std::int64_t j0 = 0; j0 < n; j0 += panel) {
      const std::int64_t cols = std::min(panel, n - j0);
      pack(w + j0 * row_bytes, row_bytes, k, cols, scratch);
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
      const std::int64_t next_rows = std::max<std::int64_t>(0, std::min(panel, n - j0 - panel));
      panel_loop(acts, m, k, scratch, cols, y + j0, ldy,
                 reinterpret_cast<std::uintptr_t>(w) + static_cast<std::uintptr_t>((j0 + panel) * row_bytes),
                 (next_rows * row_bytes + 63) / 64);
#else
      product_scalar(acts, m, k, scratch, cols, y + j0, ldy);
#endif
    }
  }
};

/// @brief Activation rows from which ops::linear runs int8_channel's packed product instead of the
/// fused one (0: never, where only the scalar product is compiled).
#if defined(TFORMER_CHANNEL_DOT_AVX512VNNI)
inline constexpr std::int64_t packed_min_rows = 8;
#else
inline constexpr std::int64_t packed_min_rows = 0;
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
  /// @brief The longest rows the fused and packed products take: their int32 sums of up to
  /// 127 * 128 per term stay exact below 2^31 (longer rows take ops::linear's float path).
  static constexpr std::int64_t max_fused_k = std::int64_t{0x7fffffff} / (127 * 128);
  /// @brief Scratch bytes for m rows of k int8 activations (see channel_kernels::fused_stride).
  static std::size_t activation_bytes(std::int64_t m, std::int64_t k) noexcept {
    return static_cast<std::size_t>(m * detail::channel_kernels::fused_stride(k));
  }
  /// @brief x [m, k] (row stride ldx) -> int8 per activation row, CTranslate2's scale rule. x
  /// must be finite (as for quantize_row).
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
  // The packed product (quant::packed_fused_format; channel_kernels::int8_gemm): fused_product's
  // bits as a GEMM over weights packed per call, for many activation rows.
  static constexpr std::int64_t packed_min_rows = detail::channel_kernels::packed_min_rows;
  static constexpr std::int64_t packed_columns = detail::channel_kernels::int8_gemm::panel;
  /// @brief Scratch bytes of packed_product for rows of k weights (one packed panel).
  static std::size_t packed_bytes(std::int64_t k) noexcept {
    return detail::channel_kernels::int8_gemm::packed_bytes(k, packed_columns);
  }
  /// @brief fused_product's y (the same bits) for n rows of w, a GEMM over panels of 64 rows
  /// packed into scratch (packed_bytes(k), 64-byte aligned).
  static void packed_product(const std::byte* acts, std::int64_t m, std::int64_t k, const std::byte* w,
                             std::int64_t row_bytes, std::int64_t n, float* y, std::int64_t ldy, std::byte* scratch) {
    detail::channel_kernels::int8_gemm::run(acts, m, k, w, row_bytes, n, y, ldy, scratch);
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
static_assert(packed_fused_format<int8_channel> && packed_fused_format<int8_activations<int8_channel>>);

}  // namespace tformer::quant
