// Memory bandwidth probe: read (sum), copy and triad over buffers sized for L1, L2, L3 and DRAM,
// at 1 and 2 threads (kernels and byte counting: bandwidth.hpp).
//
// Names: mem/<read|copy|triad>/<buffer KiB>KiB/t:<threads>; the size is per buffer.
#include <array>
#include <cstddef>

#include "bandwidth.hpp"

int main(int argc, char** argv) {
  using namespace tformer::bench::bandwidth;
  tformer::bench::add_common_context();
  // 32 KiB: L1 (48 KiB/core); 256 KiB: L2 (1 MiB/core, triad's 3 buffers still fit);
  // 8 MiB: L3 (32 MiB shared); 256 MiB: DRAM.
  constexpr std::array<std::size_t, 4> sizes{32u << 10, 256u << 10, 8u << 20, 256u << 20};
  for (const kernel k : {kernel::read, kernel::copy, kernel::triad})
    for (const std::size_t bytes : sizes)
      for (const int t : {1, 2}) add(k, bytes, t);
  return tformer::bench::run_main(argc, argv);
}
