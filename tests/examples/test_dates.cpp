// The bundled date model (examples/data/dates): on the held-out set written by
// tools/train_dates.py, greedy and 4-beam outputs equal PyTorch's for every example; bad inputs
// and bad model files raise typed errors; try_normalize answers the good lines of a batch with bad ones.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../examples/dates_model.hpp"
#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
const std::string model_dir = std::string(TFORMER_TEST_DATA_DIR) + "/../../examples/data/dates";

struct example {
  std::string source, greedy, beam4, target;
};

std::vector<example> heldout() {
  std::ifstream in(std::string(TFORMER_TEST_DATA_DIR) + "/dates_heldout.tsv");
  REQUIRE(in);
  std::vector<example> out;
  for (std::string line; std::getline(in, line);) {
    std::stringstream ss(line);
    example e;
    std::getline(ss, e.source, '\t');
    std::getline(ss, e.greedy, '\t');
    std::getline(ss, e.beam4, '\t');
    std::getline(ss, e.target, '\t');
    out.push_back(e);
  }
  return out;
}
}  // namespace

TEST_CASE("the bundled model decodes the held-out set exactly as PyTorch does", "[examples][dates][parity]") {
  const auto model = dates::bundle::load(model_dir);
  const auto set = heldout();
  REQUIRE(set.size() >= 100);
  std::vector<std::string> sources;
  for (const auto& e : set) sources.push_back(e.source);
  auto o = model.options();
  const auto greedy = model.normalize(sources, o);
  o.num_beams = 4;
  const auto beam = model.normalize(sources, o);
  std::size_t exact = 0;
  for (std::size_t i = 0; i < set.size(); ++i) {
    INFO("example " << i << ": '" << set[i].source << "'");
    CHECK(greedy[i] == set[i].greedy);
    CHECK(beam[i] == set[i].beam4);
    exact += beam[i] == set[i].target;
  }
  WARN("beam-4 exact match on " << set.size() << " held-out examples: " << exact);
}

TEST_CASE("bad inputs to the date model raise value_error naming the line", "[examples][dates][errors]") {
  const auto model = dates::bundle::load(model_dir);
  const auto o = model.options();
  CHECK(test::thrown_message<value_error>([&] { model.normalize({"5 March 2024", ""}, o); }).find("line 2: empty") !=
        std::string::npos);
  CHECK(test::thrown_message<value_error>([&] { model.normalize({std::string(500, '1')}, o); }).find("at most") !=
        std::string::npos);
  CHECK(test::thrown_message<value_error>([&] { model.normalize({"5 März 2024"}, o); }).find("not in the vocabulary") !=
        std::string::npos);
  auto zero = o;
  zero.num_beams = 0;
  CHECK_THROWS_AS(model.normalize({"5 March 2024"}, zero), value_error);
}

TEST_CASE("try_normalize answers every good line and gives each bad line its reason", "[examples][dates][errors]") {
  const auto model = dates::bundle::load(model_dir);
  const auto o = model.options();
  const std::vector<std::string> lines = {"Tuesday, March 5th 2024", "", "5 März 2024", std::string(500, '1'),
                                          "31.12.1999"};
  const auto out = model.try_normalize(lines, o);
  REQUIRE(out.size() == lines.size());
  CHECK(out[0].ok());
  CHECK(out[0].date == "2024-03-05");
  CHECK(out[4].ok());
  CHECK(out[4].date == "1999-12-31");
  for (std::size_t i : {1, 2, 3}) {
    INFO("line " << i + 1);
    CHECK_FALSE(out[i].ok());
    CHECK(out[i].date.empty());
  }
  CHECK(out[1].error == "empty");
  CHECK(out[2].error.find("not in the vocabulary") != std::string::npos);
  CHECK(out[3].error.find("at most") != std::string::npos);
  // the good lines decode as they do in a batch of their own
  CHECK(model.normalize({lines[0], lines[4]}, o) == std::vector<std::string>{out[0].date, out[4].date});
  // only bad lines: no decoding, but bad options still throw
  const auto bad = model.try_normalize({""}, o);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].error == "empty");
  auto zero = o;
  zero.num_beams = 0;
  CHECK_THROWS_AS(model.try_normalize({""}, zero), value_error);
  CHECK(model.try_normalize({}, o).empty());
}

TEST_CASE("a missing or corrupt model file raises io_error", "[examples][dates][errors]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "tformer_test_dates_bundle";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "vocab.json", "model.safetensors"})
    fs::copy_file(fs::path(model_dir) / f, dir / f, fs::copy_options::overwrite_existing);
  CHECK_NOTHROW(dates::bundle::load(dir.string()));
  {  // truncate the weights
    const auto size = fs::file_size(dir / "model.safetensors");
    fs::resize_file(dir / "model.safetensors", size / 2);
  }
  CHECK(test::thrown_message<io_error>([&] { dates::bundle::load(dir.string()); }).find("model.safetensors") !=
        std::string::npos);
  std::ofstream(dir / "config.json") << "{ not json";
  CHECK_THROWS_AS(dates::bundle::load(dir.string()), io_error);
  fs::remove(dir / "config.json");
  CHECK_THROWS_AS(dates::bundle::load(dir.string()), io_error);
}
