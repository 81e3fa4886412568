// The thread-safety contract: a loaded model is shared read-only by any number of threads, each
// with its own state (generate::run makes one per call). Four threads decoding with one GPT-2 and
// one T5 at once give exactly the single-thread results. CI also runs this program under
// ThreadSanitizer (.ci/run), which is what found Eigen's thread count being written from every
// product; tformer's loops run on its own pool, which ThreadSanitizer sees whole.
#include <tformer/generate/search.hpp>

#include <thread>
#include <vector>

#include "catch.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
std::vector<std::vector<std::int32_t>> prompts(int seed) {
  std::vector<std::vector<std::int32_t>> p;
  for (int i = 0; i < 3; ++i) {
    p.emplace_back();
    for (int t = 0; t < 2 + i + seed % 3; ++t) p.back().push_back(static_cast<std::int32_t>((seed * 31 + i * 7 + t * 5) % 90 + 1));
  }
  return p;
}

template <class Model>
void shared_by_threads(const Model& model, const generate::options& o) {
  constexpr int users = 4;
  std::vector<std::vector<std::vector<generate::hypothesis>>> alone(users), together(users);
  // the threads first: the first products of the process run concurrently (where a lazily set
  // global, like Eigen's thread count, would race)
  std::vector<std::thread> threads;
  for (int u = 0; u < users; ++u)
    threads.emplace_back([&, u] { together[static_cast<std::size_t>(u)] = generate::run(model, prompts(u), o); });
  for (auto& t : threads) t.join();
  for (int u = 0; u < users; ++u) alone[static_cast<std::size_t>(u)] = generate::run(model, prompts(u), o);
  for (std::size_t u = 0; u < users; ++u)
    for (std::size_t i = 0; i < alone[u].size(); ++i)
      for (std::size_t h = 0; h < alone[u][i].size(); ++h) {
        REQUIRE(together[u][i][h].tokens == alone[u][i][h].tokens);
        REQUIRE(together[u][i][h].score == alone[u][i][h].score);
      }
}

void run_all() {
  const auto gpt2 = test::load_gpt2();
  const auto t5 = test::load_t5();
  generate::options o;
  o.max_new_tokens = 6;
  shared_by_threads(gpt2, o);
  shared_by_threads(t5, o);
  o.num_beams = 3;
  o.num_return_sequences = 2;
  shared_by_threads(gpt2, o);
  shared_by_threads(t5, o);
}
}  // namespace

TEST_CASE("four threads sharing one model get the single-thread results", "[models][threads]") {
  test::thread_guard guard;
  set_num_threads(1);  // user threads only
  run_all();
  set_num_threads(2);  // and the user threads' loops on the pool's workers
  run_all();
}
