// The registry of formats by name (the one runtime-to-type crossing) and the float formats it holds.
#include <tformer/quant/formats.hpp>

#include <string>

#include "catch.hpp"

using namespace tformer;

TEST_CASE("visit_format finds each known format by name and rejects others", "[quant][formats]") {
  for (const char* name : {"f32", "f16", "bf16"}) {
    std::string seen;
    double bits = 0;
    quant::visit_format(name, [&](auto f) {
      using F = decltype(f);
      seen = F::name;
      bits = F::bits_per_weight;
    });
    CHECK(seen == name);
    CHECK(bits == (seen == "f32" ? 32.0 : 16.0));
    CHECK(quant::is_known_format(name));
  }
  CHECK_FALSE(quant::is_known_format("q3_weird"));
  CHECK_THROWS_AS(quant::visit_format("q3_weird", [](auto) {}), dtype_error);
  CHECK(std::string(quant::f32::file_dtype) == "F32");
  CHECK(std::string(quant::bf16::file_dtype) == "BF16");
  CHECK(std::string(quant::f16::file_dtype) == "F16");
}
