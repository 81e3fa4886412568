// T5 relative position buckets against Hugging Face's _relative_position_bucket (values printed
// by transformers 5.23).
#include <tformer/nn/t5_relative_bias.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

TEST_CASE("T5 buckets equal Hugging Face's _relative_position_bucket", "[positions][t5]") {
  const std::vector<std::int64_t> rel = {-200, -128, -100, -64, -33, -17, -16, -9, -8, -7, -1, 0,
                                         1,    7,    8,    9,   16,  17,  33,  64, 100, 128, 200};
  struct expected {
    bool bidirectional;
    std::int64_t buckets, max_distance;
    std::vector<std::int64_t> values;
  };
  const std::vector<expected> cases = {
      {true, 32, 128, {15, 15, 15, 14, 12, 10, 10, 8, 8, 7, 1, 0, 17, 23, 24, 24, 26, 26, 28, 30, 31, 31, 31}},
      {true, 8, 20, {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 0, 5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}},
      {false, 32, 128, {31, 31, 30, 26, 21, 16, 16, 9, 8, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {false, 8, 20, {7, 7, 7, 7, 7, 7, 7, 6, 5, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}};
  for (const auto& c : cases) {
    nn::t5_relative_bias bias(c.buckets, 2, c.max_distance, c.bidirectional);
    for (std::size_t i = 0; i < rel.size(); ++i) {
      INFO("bidirectional " << c.bidirectional << " buckets " << c.buckets << " relative " << rel[i]);
      CHECK(bias.bucket(rel[i]) == c.values[i]);
    }
  }
}

TEST_CASE("a T5 stack bias is bidirectional in an encoder and causal in a decoder", "[positions][t5]") {
  const nn::t5_relative_bias enc(nn::bias_config{.heads = 2, .relative_buckets = 32, .relative_max_distance = 128,
                                                 .bidirectional = true});
  const nn::t5_relative_bias dec(nn::bias_config{.heads = 2, .relative_buckets = 32, .relative_max_distance = 128,
                                                 .bidirectional = false});
  CHECK(enc.weight.shape() == shape{32, 2});
  CHECK(enc.bucket(7) == 23);
  CHECK(dec.bucket(7) == 0);
  CHECK(dec.bucket(-9) == 9);
}
