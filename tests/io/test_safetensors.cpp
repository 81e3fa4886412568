// safetensors: a valid file read back exactly, and every rule of the format enforced with an
// io_error naming the file, the tensor and the byte offset.
#include <tformer/io/safetensors.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "catch.hpp"

namespace fs = std::filesystem;
using tformer::io::safetensors_file;

namespace {

// Writes u64 header length, the header text and the data bytes to a fresh temporary file.
fs::path write_file(const std::string& name, const std::string& header, const std::vector<std::uint8_t>& data,
                    std::uint64_t length_override = 0) {
  const fs::path p = fs::temp_directory_path() / ("tformer_test_" + name + ".safetensors");
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  const std::uint64_t n = length_override ? length_override : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return p;
}

fs::path write_raw(const std::string& name, const std::vector<std::uint8_t>& bytes) {
  const fs::path p = fs::temp_directory_path() / ("tformer_test_" + name + ".safetensors");
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

// Opening must fail with an io_error whose message holds every one of the given fragments.
void expect_rejected(const fs::path& p, std::initializer_list<std::string> fragments) {
  try {
    safetensors_file f(p);
    FAIL("expected io_error for " << p);
  } catch (const tformer::io_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    for (const auto& f : fragments) CHECK(msg.find(f) != std::string::npos);
  }
}

void put_f32(std::vector<std::uint8_t>& d, float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  for (int i = 0; i < 4; ++i) d.push_back(static_cast<std::uint8_t>(b >> (8 * i)));
}
void put_u16(std::vector<std::uint8_t>& d, std::uint16_t b) {
  d.push_back(static_cast<std::uint8_t>(b & 0xFF));
  d.push_back(static_cast<std::uint8_t>(b >> 8));
}

}  // namespace

TEST_CASE("a valid file: entries, metadata and values of every float dtype", "[safetensors]") {
  std::vector<std::uint8_t> data;
  for (int i = 0; i < 6; ++i) put_f32(data, 0.5f * static_cast<float>(i) - 1.0f);  // w: F32 [2, 3], bytes 0..24
  put_u16(data, 0x3C00);                                                             // h: F16 [2] = {1, -2}
  put_u16(data, 0xC000);
  put_u16(data, 0x3F80);  // b: BF16 [2] = {1, -inf}
  put_u16(data, 0xFF80);
  for (std::int32_t v : {7, -9}) put_f32(data, std::bit_cast<float>(v));  // i: I32 [2]
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[28,32]},)"
      R"("e":{"dtype":"F32","shape":[0,4],"data_offsets":[32,32]},"i":{"dtype":"I32","shape":[2],"data_offsets":[32,40]}})"
      "    ";  // space padding is allowed
  const auto p = write_file("valid", header, data);
  safetensors_file f(p);
  CHECK(f.entries().size() == 5);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.data_offset() == 8 + header.size());
  CHECK(f.at("h").dtype == tformer::dtype::f16);

  auto w = f.load<float>("w");
  CHECK(w.shape() == tformer::shape{2, 3});
  CHECK(w(1, 2) == 1.5f);
  auto h = f.load<float>("h");
  CHECK(h(0) == 1.0f);
  CHECK(h(1) == -2.0f);
  auto b = f.load<float>("b");
  CHECK(b(0) == 1.0f);
  CHECK(std::isinf(b(1)));
  auto hb = f.load<tformer::f16>("h");  // no conversion when the type matches
  CHECK(hb(1).bits == 0xC000);
  auto i = f.load<std::int32_t>("i");
  CHECK(i(1) == -9);
  CHECK(f.load<float>("e").numel() == 0);

  tformer::tensor<float> wrong(tformer::shape{3, 2});
  CHECK_THROWS_AS(f.read<float>("w", wrong.view()), tformer::shape_error);
  CHECK_THROWS_AS(f.load<std::int32_t>("w"), tformer::dtype_error);
  CHECK_THROWS_AS(f.load<float>("i"), tformer::dtype_error);
  try {
    (void)f.at("missing.weight");
    FAIL("expected io_error");
  } catch (const tformer::io_error& e) {
    CHECK(std::string(e.what()).find("missing.weight") != std::string::npos);
  }
}

TEST_CASE("file and header length rules", "[safetensors]") {
  expect_rejected(write_raw("short", {1, 2, 3}), {"3 bytes", "byte 0"});
  expect_rejected(write_file("huge_n", "{}", {}, 100'000'001), {"100,000,000"});
  expect_rejected(write_file("past_end", "{}", {}, 50), {"runs past the end"});
  CHECK_THROWS_AS(safetensors_file(fs::temp_directory_path() / "tformer_no_such_file.safetensors"), tformer::io_error);
}

TEST_CASE("header JSON rules", "[safetensors]") {
  expect_rejected(write_file("bad_json", R"({"w": {"dtype": "F32",)", {}), {"not valid JSON", "byte"});
  expect_rejected(write_file("not_object", "[1, 2]", {}), {"not a JSON object"});
  expect_rejected(write_file("dup", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                    R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             std::vector<std::uint8_t>(8)),
                  {"'w' appears twice"});
  expect_rejected(write_file("meta", R"({"__metadata__":{"a":1}})", {}), {"__metadata__", "'a'"});
  expect_rejected(write_file("dtype", R"({"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", std::vector<std::uint8_t>(4)),
                  {"'w'", "unknown dtype \"F17\""});
  expect_rejected(write_file("neg_shape", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                             std::vector<std::uint8_t>(4)),
                  {"'w'", "non-negative"});
  expect_rejected(write_file("no_offsets", R"({"w":{"dtype":"F32","shape":[1]}})", std::vector<std::uint8_t>(4)),
                  {"'w'", "data_offsets"});
}

TEST_CASE("offset and size rules", "[safetensors]") {
  expect_rejected(write_file("end_before_begin", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})",
                             std::vector<std::uint8_t>(4)),
                  {"'w'", "before begin"});
  expect_rejected(
      write_file("overflow", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                 std::vector<std::uint8_t>(4)),
      {"'w'", "overflows"});
  expect_rejected(write_file("size", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", std::vector<std::uint8_t>(4)),
                  {"'w'", "needs 8 bytes", "hold 4"});
  expect_rejected(write_file("hole", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                             std::vector<std::uint8_t>(12)),
                  {"'b'", "a hole"});
  expect_rejected(write_file("overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             std::vector<std::uint8_t>(8)),
                  {"'b'", "overlaps"});
  expect_rejected(write_file("trailing", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                             std::vector<std::uint8_t>(6)),
                  {"trailing bytes"});
  expect_rejected(write_file("truncated", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                             std::vector<std::uint8_t>(5)),
                  {"truncated"});
  // a data buffer starting at offset 0 is required: the first tensor may not begin later
  expect_rejected(write_file("late_start", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             std::vector<std::uint8_t>(8)),
                  {"'a'", "a hole"});
}

TEST_CASE("element and byte counts must fit in int64_t, counting nonzero extents", "[safetensors]") {
  // 3 * 2^62 fits in 64 unsigned bits and the trailing 0 makes the entry 0 bytes, so an unsigned
  // product accepts it; tformer's shape (and every view of it) could not count it.
  const auto p = write_file("zero_extent_overflow",
                            R"({"w":{"dtype":"F32","shape":[3,4611686018427387904,0],"data_offsets":[0,0]}})", {});
  expect_rejected(p, {"'w'", "byte 8", "[3, 4611686018427387904, 0]", "overflows"});
  // 2^61 F32 elements fit, their 2^63 bytes do not.
  expect_rejected(write_file("zero_extent_bytes",
                             R"({"w":{"dtype":"F32","shape":[2305843009213693952,0],"data_offsets":[0,0]}})", {}),
                  {"'w'", "byte 8", "[2305843009213693952, 0]", "F32", "bytes"});
  // At the limit: INT64_MAX one-byte elements (nonzero product), none stored, is a valid entry.
  safetensors_file ok(write_file("zero_extent_limit",
                                 R"({"w":{"dtype":"U8","shape":[0,9223372036854775807],"data_offsets":[0,0]}})", {}));
  CHECK(ok.at("w").shape.size() == 2);
}
