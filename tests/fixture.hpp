// Reference fixtures written by tools/make_fixtures.py: <name>.model.safetensors (the reference
// module's state_dict) and <name>.case.safetensors (inputs, outputs, and the config as JSON).
#pragma once

#include <tformer/io/safetensors.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#ifndef TFORMER_TEST_DATA_DIR
#error "TFORMER_TEST_DATA_DIR must name tests/data"
#endif

namespace tformer::test {

struct fixture {
  explicit fixture(const std::string& name)
      : model(std::string(TFORMER_TEST_DATA_DIR) + "/" + name + ".model.safetensors"),
        data(std::string(TFORMER_TEST_DATA_DIR) + "/" + name + ".case.safetensors"),
        config(nlohmann::json::parse(data.metadata().at("config"))) {}
  tensor<float> f32(const std::string& n) const { return data.load<float>(n); }
  tensor<std::int32_t> i32(const std::string& n) const {
    if (data.at(n).dtype == dtype::i32) return data.load<std::int32_t>(n);
    // torch writes int64 ids: narrow them
    const auto& e = data.at(n);
    const auto bytes = data.bytes(e);
    tensor<std::int32_t> t(e.shape.size() == 1 ? shape{e.shape[0]} : shape{e.shape[0], e.shape[1]});
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      std::int64_t v;
      std::memcpy(&v, bytes.data() + 8 * i, 8);
      t.data()[i] = static_cast<std::int32_t>(v);
    }
    return t;
  }
  io::safetensors_file model, data;
  nlohmann::json config;
};

/// Largest |got - want| over rows [b, s, :] with s < lengths[b] of [B, S, N] tensors (all rows
/// when lengths is empty).
inline double max_abs_diff(tensor_view<const float> got, tensor_view<const float> want,
                           tensor_view<const std::int32_t> lengths = {}) {
  double worst = 0;
  const std::int64_t B = want.dim(0), S = want.rank() == 3 ? want.dim(1) : 1, N = want.dim(-1);
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t n = lengths.data() ? lengths(b) : S;
    for (std::int64_t s = 0; s < n; ++s)
      for (std::int64_t c = 0; c < N; ++c) {
        const double g = want.rank() == 3 ? got(b, s, c) : got(b, c), w = want.rank() == 3 ? want(b, s, c) : want(b, c);
        worst = std::max(worst, std::isnan(g) ? INFINITY : std::fabs(g - w));
      }
  }
  return worst;
}

/// True when the argmax over the last axis agrees at every real position.
inline bool same_argmax(tensor_view<const float> got, tensor_view<const float> want, tensor_view<const std::int32_t> lengths) {
  const std::int64_t B = want.dim(0), S = want.dim(1), N = want.dim(2);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < (lengths.data() ? lengths(b) : S); ++s) {
      std::int64_t ig = 0, iw = 0;
      for (std::int64_t c = 1; c < N; ++c) {
        if (got(b, s, c) > got(b, s, ig)) ig = c;
        if (want(b, s, c) > want(b, s, iw)) iw = c;
      }
      if (ig != iw) return false;
    }
  return true;
}

}  // namespace tformer::test
