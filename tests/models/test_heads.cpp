// Pooling heads: CLS, masked mean and last real token never read padding.
#include <tformer/models/heads.hpp>

#include "catch.hpp"

using namespace tformer;

TEST_CASE("pooling reads only real tokens", "[heads]") {
  tensor<float> h(shape{2, 4, 3});
  for (std::int64_t i = 0; i < h.numel(); ++i) h.data()[i] = static_cast<float>(i);
  tensor<std::int32_t> lengths(shape{2});
  lengths(0) = 4;
  lengths(1) = 2;
  tensor<float> out(shape{2, 3});
  models::pool(h, lengths, models::pooling::cls, out);
  CHECK(out(1, 0) == h(1, 0, 0));
  models::pool(h, lengths, models::pooling::last, out);
  CHECK(out(0, 2) == h(0, 3, 2));
  CHECK(out(1, 2) == h(1, 1, 2));  // position 1, not the padded 3
  models::pool(h, lengths, models::pooling::mean, out);
  CHECK(out(1, 1) == (h(1, 0, 1) + h(1, 1, 1)) / 2);
  CHECK(out(0, 0) == (h(0, 0, 0) + h(0, 1, 0) + h(0, 2, 0) + h(0, 3, 0)) / 4);
  lengths(1) = 0;  // an empty sequence pools to zeros
  models::pool(h, lengths, models::pooling::mean, out);
  CHECK(out(1, 0) == 0.0f);
  lengths(1) = 5;
  CHECK_THROWS_AS(models::pool(h, lengths, models::pooling::mean, out), value_error);
  tensor<float> wrong(shape{2, 4});
  CHECK_THROWS_AS(models::pool(h, lengths, models::pooling::cls, wrong), shape_error);
}
