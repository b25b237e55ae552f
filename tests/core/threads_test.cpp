// Tests for the thread pool and parallel_for (core/threads.hpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <eqx/core/threads.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace core_threads_test {

using eqx_test::message_of;

namespace {

/// Runs the test body with `n` threads and restores the previous count.
struct ThreadsScope {
  int saved = eqx::num_threads();
  explicit ThreadsScope(int n) { eqx::set_num_threads(n); }
  ~ThreadsScope() { eqx::set_num_threads(saved); }
};

/// A parallel_for over [0, n) large enough to use every thread.
template <class Body>
void run_parallel(std::int64_t n, Body&& body) {
  eqx::detail::parallel_for(n, eqx::detail::kParallelGrain, body);
}

}  // namespace

TEST_CASE("parallel_for: every index once, in contiguous chunks, on 2 threads, many times over", "[threads]") {
  ThreadsScope threads(2);
  std::vector<int> hits(1000, 0);
  for (int round = 0; round < 200; ++round)  // the workers go back to spinning, or to sleep, between rounds
    run_parallel(static_cast<std::int64_t>(hits.size()), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
    });
  CHECK(hits == std::vector<int>(1000, 200));
}

TEST_CASE("parallel_for: an exception from any chunk reaches the caller after every chunk ran", "[threads]") {
  ThreadsScope threads(2);
  std::vector<int> ran(2, 0);
  // Chunk 0 runs on the calling thread, chunk 1 on a worker.
  auto throwing_in = [&](std::int64_t chunk) {
    ran = {0, 0};
    run_parallel(2, [&, chunk](std::int64_t b, std::int64_t) {
      ran[static_cast<std::size_t>(b)] = 1;
      if (b == chunk) throw std::runtime_error("chunk " + std::to_string(b) + " failed");
    });
  };
  CHECK(message_of<std::runtime_error>([&] { throwing_in(0); }) == "chunk 0 failed");
  CHECK(ran == std::vector<int>{1, 1});
  CHECK(message_of<std::runtime_error>([&] { throwing_in(1); }) == "chunk 1 failed");
  CHECK(ran == std::vector<int>{1, 1});
  // The pool works afterwards, with no error left over from the failed runs.
  std::vector<int> hits(64, 0);
  run_parallel(64, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)] = 1;
  });
  CHECK(hits == std::vector<int>(64, 1));
}

}  // namespace core_threads_test
