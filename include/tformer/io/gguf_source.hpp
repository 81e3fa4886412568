// A GGUF file as a checkpoint source (io/checkpoint.hpp): a tensor whose ggml type is a known weight
// format (F32, F16, BF16, Q8_0, Q4_0, Q4_1, ...) is in that format, so a parameter of the same
// format takes its bytes as they are; load_gguf(model, file, map) loads a model through a name map.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "../quant/formats.hpp"
#include "checkpoint.hpp"
#include "gguf.hpp"

namespace tformer::io {

/// @brief gguf_file seen by load_checkpoint.
class gguf_source {
 public:
  explicit gguf_source(const gguf_file& f) : f_(&f) {}
  std::string path() const { return f_->path(); }
  std::vector<std::string> tensor_names() const {
    std::vector<std::string> names;
    for (const auto& t : f_->tensors()) names.push_back(t.name);
    return names;
  }
  std::optional<checkpoint_tensor> find_tensor(const std::string& name) const {
    const auto* t = f_->find(name);
    if (!t) return std::nullopt;
    checkpoint_tensor out{t->name, t->shape, {}, f_->bytes(*t)};
    quant::visit_ggml_type(t->ggml_type, [&](auto fmt) { out.format = decltype(fmt)::name; });
    return out;
  }
  tensor<float> read_float(const std::string& name) const { return f_->load_float(name); }

 private:
  const gguf_file* f_;
};

static_assert(checkpoint_source<gguf_source>);

/// @brief load_checkpoint from a GGUF file.
template <class M>
std::int64_t load_gguf(M& m, const gguf_file& f, const name_map& map) {
  return load_checkpoint(m, gguf_source(f), map);
}

}  // namespace tformer::io
