// libFuzzer target for the GGUF reader (io/gguf.hpp), on bytes in memory: the validating parser
// (detail::parse_gguf, what gguf_file runs on its mapped file), dequantization of every accepted
// tensor, the metadata accessors, and the writer: an accepted file rewritten by gguf_writer must
// parse again, to the same tensors, and rewriting that gives the same bytes.
//
// Build and run (Debian's clang; not part of the CMake build):
//   clang++ -std=c++20 -O1 -g -march=native -fsanitize=fuzzer,address,undefined \
//       -fno-sanitize-recover=undefined -Iinclude tests/fuzz/fuzz_gguf.cpp -o /tmp/fuzz_gguf
//   mkdir -p /tmp/gguf_corpus && cp tests/data/*.gguf /tmp/gguf_corpus/
//   /tmp/fuzz_gguf -max_total_time=120 -max_len=8192 -rss_limit_mb=2048 /tmp/gguf_corpus
// fuzz-seeds: tests/data/*.gguf
#include <tformer/io/gguf.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace {

using tformer::io::detail::gguf_contents;
using tformer::io::detail::parse_gguf;

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// The file c describes (its tensors' bytes in data), rewritten by gguf_writer.
std::string rewrite(const gguf_contents& c, const std::byte* data) {
  tformer::io::gguf_writer w;
  for (const auto& kv : c.metadata) w.add(kv.key, kv.value);
  for (const auto& t : c.tensors) w.add_raw(t.name, t.ggml_type, t.shape, {data + t.offset, static_cast<std::size_t>(t.bytes)});
  std::ostringstream out;
  w.write(out);
  return out.str();
}

void require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  gguf_contents c;
  try {
    c = parse_gguf(input, "<fuzz input>");
  } catch (const tformer::io_error&) {
    return 0;  // rejected: the only acceptable failure
  }

  // Accepted: every tensor lies in the input, and the supported ones dequantize (ASan checks reads).
  for (const auto& t : c.tensors) {
    require(t.offset <= size && t.bytes <= size - t.offset);
    const std::int64_t n = t.rows() * t.cols();
    if (n > (1 << 22)) continue;
    std::vector<float> out(static_cast<std::size_t>(n));
    (void)tformer::io::detail::dequantize_gguf(t, input.data() + t.offset, out.data());
  }
  for (const auto& kv : c.metadata) {
    (void)tformer::io::detail::gguf_as_int(kv.value);
    (void)tformer::io::detail::gguf_as_float(kv.value);
    (void)kv.value.type_string();
  }

  // The writer's output of what was read is valid and holds the same tensors; writing is a fixed
  // point after one pass (the first may quiet a signaling NaN float, through double).
  // (Skipped for alignments past 64 KiB: a valid file whose general.alignment is 2^31 rewrites
  // to gigabytes of padding, correctly, but too slowly to fuzz.)
  if (c.alignment > (1u << 16)) return 0;
  const std::string once = rewrite(c, input.data());
  gguf_contents again;
  try {
    again = parse_gguf(as_bytes(once), "<rewritten>");
  } catch (const tformer::io_error&) {
    require(false);
  }
  require(again.metadata.size() == c.metadata.size() && again.tensors.size() == c.tensors.size());
  require(again.alignment == c.alignment);
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    const auto &a = c.tensors[i], &b = again.tensors[i];
    require(a.name == b.name && a.ggml_type == b.ggml_type && a.shape == b.shape && a.bytes == b.bytes);
    require(a.bytes == 0 || std::memcmp(input.data() + a.offset, once.data() + b.offset, a.bytes) == 0);
  }
  for (std::size_t i = 0; i < c.metadata.size(); ++i) require(again.metadata[i].key == c.metadata[i].key);
  require(rewrite(again, as_bytes(once).data()) == once);
  return 0;
}
