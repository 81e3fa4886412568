// libFuzzer target for the safetensors reader (io/safetensors.hpp) and the checkpoint source over it
// (io/checkpoint.hpp): an input is written to a file (the reader maps files), opened, and every
// accepted tensor is read as float and through safetensors_source (packed formats named in the
// tformer.formats metadata are dequantized). Anything but a tformer::error is a finding.
//
// Build and run (Debian's clang; .ci/run runs it for a bounded time):
//   clang++ -std=c++20 -O1 -g -march=native -fsanitize=fuzzer,address,undefined \
//       -fno-sanitize-recover=undefined -Iinclude -isystem /usr/include/eigen3 tests/fuzz/fuzz_safetensors.cpp \
//       -o /tmp/fuzz_safetensors
//   mkdir -p /tmp/st_corpus && cp tests/data/*.safetensors /tmp/st_corpus/
//   /tmp/fuzz_safetensors -max_total_time=120 -max_len=65536 -rss_limit_mb=2048 /tmp/st_corpus
// fuzz-seeds: tests/data/*.safetensors
#include <tformer/io/checkpoint.hpp>
#include <tformer/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/tformer_fuzz_" + std::to_string(::getpid()) + ".safetensors";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const tformer::io::safetensors_file f(path);
    const tformer::io::safetensors_source src(f);
    for (const auto& e : f.entries()) {
      try {
        (void)src.find_tensor(e.name);
        const auto t = src.read_float(e.name);
        if (t.numel() > 0 && t.data() == nullptr) __builtin_trap();
      } catch (const tformer::error&) {
      }
    }
  } catch (const tformer::error&) {
  }
  return 0;
}
