// A user's program: one include, the tformer::tformer target, nothing else.
#include <tformer/tformer.hpp>

#include <cmath>
#include <cstdio>

int main() {
  tformer::tensor<float> x(tformer::shape{2, 3}, 1.0f);
  tformer::tensor<float> w(tformer::shape{4, 3}, 0.5f);
  tformer::tensor<float> y(tformer::shape{2, 4});
  tformer::ops::linear(x, w, y);  // y = x W^T: every entry 1.5
  for (std::int64_t i = 0; i < y.numel(); ++i)
    if (std::fabs(y.data()[i] - 1.5f) > 1e-6f) return 1;
  std::printf("tformer %s: consumer OK\n", tformer::version_string);
  return 0;
}
