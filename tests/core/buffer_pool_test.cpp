// Tests for the pool of large array buffers (core/buffer_pool.hpp).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "eqx/core/array.hpp"
#include "eqx/core/buffer_pool.hpp"
#include "eqx/ops/creation.hpp"
#include "pool_scope.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace core_buffer_pool_test {

namespace {

using eqx::detail::BufferPool;

using eqx_test::PoolScope;

constexpr std::size_t kBig = std::size_t{1} << 20;  // 1 MiB

}  // namespace

TEST_CASE("BufferPool hands a freed large block to the next allocation of its size", "[buffer_pool]") {
  PoolScope scope(std::size_t{64} << 20);
  BufferPool& pool = scope.pool;
  void* a = pool.allocate(kBig);
  REQUIRE(reinterpret_cast<std::uintptr_t>(a) % BufferPool::kAlign == 0);
  pool.release(a, kBig);
  CHECK(pool.cached_bytes() == kBig);
  const std::size_t reused = pool.reused();
  void* other = pool.allocate(kBig + 64);  // another size: a new block
  CHECK(other != a);
  void* b = pool.allocate(kBig);
  CHECK(b == a);
  CHECK(pool.reused() == reused + 1);
  CHECK(pool.cached_bytes() == 0);
  pool.release(b, kBig);
  pool.release(other, kBig + 64);
  CHECK(pool.cached_bytes() == 2 * kBig + 64);
}

TEST_CASE("BufferPool leaves small blocks to malloc and never holds more than its limit", "[buffer_pool]") {
  PoolScope scope(3 * kBig);
  BufferPool& pool = scope.pool;
  void* small = pool.allocate(BufferPool::kMinBytes - 64);
  pool.release(small, BufferPool::kMinBytes - 64);
  CHECK(pool.cached_bytes() == 0);
  void* blocks[4];
  for (void*& p : blocks) p = pool.allocate(kBig);
  for (void* p : blocks) pool.release(p, kBig);
  CHECK(pool.cached_bytes() == 3 * kBig);  // the fourth was freed
  pool.set_limit(0);                       // off: everything cached is freed
  CHECK(pool.cached_bytes() == 0);
  void* p = pool.allocate(kBig);
  pool.release(p, kBig);
  CHECK(pool.cached_bytes() == 0);
}

TEST_CASE("an Array's large buffer goes back to the pool and serves the next Array of its size", "[buffer_pool]") {
  PoolScope scope(std::size_t{64} << 20);
  BufferPool& pool = scope.pool;
  const std::size_t reused = pool.reused();
  {
    eqx::Array a = eqx::zeros({512, 512});  // 1 MiB of float32
    CHECK(pool.cached_bytes() == 0);
  }
  CHECK(pool.cached_bytes() == kBig);
  eqx::Array b = eqx::ones({256, 1024});  // the same bytes, another shape
  CHECK(pool.reused() == reused + 1);
  CHECK(pool.cached_bytes() == 0);
  CHECK(b.to_vector<float>()[12345] == 1.0f);  // a reused buffer is written, not assumed zero
}

TEST_CASE("small blocks are kept per thread, a few per 64-byte size class", "[buffer_pool]") {
  PoolScope scope(std::size_t{64} << 20);
  BufferPool& pool = scope.pool;
  void* a = pool.allocate(100);  // class 65..128 bytes
  REQUIRE(reinterpret_cast<std::uintptr_t>(a) % BufferPool::kAlign == 0);
  pool.release(a, 100);
  CHECK(pool.allocate(128) == a);  // any size of the class gets it back
  void* other_class = pool.allocate(64);
  CHECK(other_class != a);
  pool.release(other_class, 64);
  pool.release(a, 128);
  // At most 8 per class are kept: of 10 released blocks, the first 8 come
  // back, last released first; the other two went to the allocator.
  void* blocks[10];
  for (void*& p : blocks) p = pool.allocate(4096);
  for (void* p : blocks) pool.release(p, 4096);
  for (int i = 7; i >= 0; --i) CHECK(pool.allocate(4096) == blocks[i]);
  for (int i = 0; i < 8; ++i) pool.release(blocks[i], 4096);
  CHECK(pool.cached_bytes() == 0);  // cached_bytes counts the shared large blocks only
  CHECK(pool.small_cached_bytes() == 8 * 4096 + 128 + 64);  // this thread's small blocks
}

TEST_CASE("the first size class, which every Array's handle uses, keeps 64 blocks", "[buffer_pool]") {
  PoolScope scope(std::size_t{64} << 20);
  BufferPool& pool = scope.pool;
  // Of 66 released 64-byte blocks the first 64 come back, last released
  // first; the other two went to the allocator.
  void* blocks[66];
  for (void*& p : blocks) p = pool.allocate(48);  // a Storage and its control block
  for (void* p : blocks) pool.release(p, 48);
  CHECK(pool.small_cached_bytes() == 64 * 64);
  for (int i = 63; i >= 0; --i) CHECK(pool.allocate(64) == blocks[i]);
  CHECK(pool.small_cached_bytes() == 0);
  for (int i = 0; i < 64; ++i) pool.release(blocks[i], 64);
  // An Array's handle comes from there: one eager op on small Arrays takes
  // its output's handle and buffer (both 64-byte blocks) from the cache.
  const eqx::Array x = eqx::zeros({4});
  (void)eqx::ones({4});  // the scalar 1 it broadcasts is then kept (eqx::detail::weak_scalar)
  const std::size_t cached = pool.small_cached_bytes();
  const eqx::Array y = x;  // a copy shares the handle: nothing taken
  CHECK(pool.small_cached_bytes() == cached);
  {
    const eqx::Array z = eqx::ones({4});
    CHECK(pool.small_cached_bytes() == cached - 2 * 64);
  }
  CHECK(pool.small_cached_bytes() == cached);
}

TEST_CASE("clear() frees every thread's small blocks: another thread's at its next use", "[buffer_pool]") {
  PoolScope scope(std::size_t{64} << 20);
  BufferPool& pool = scope.pool;
  std::atomic<int> phase{0};
  std::size_t before = 0, after = 0;
  std::thread other([&] {
    pool.release(pool.allocate(200), 200);  // one 256-byte block kept by this thread
    before = pool.small_cached_bytes();
    phase = 1;
    while (phase != 2) std::this_thread::yield();
    after = pool.small_cached_bytes();  // emptied when it looks
  });
  while (phase != 1) std::this_thread::yield();
  pool.release(pool.allocate(kBig), kBig);
  pool.release(pool.allocate(100), 100);
  CHECK(pool.cached_bytes() == kBig);
  CHECK(pool.small_cached_bytes() == 128);
  pool.clear();
  CHECK(pool.cached_bytes() == 0);
  CHECK(pool.small_cached_bytes() == 0);
  phase = 2;
  other.join();
  CHECK(before == 256);
  CHECK(after == 0);
}

TEST_CASE("with the pool off, small blocks go straight back to the allocator", "[buffer_pool]") {
  PoolScope scope(0);
  BufferPool& pool = scope.pool;
  void* a = pool.allocate(64);
  void* b = pool.allocate(64);
  CHECK(a != b);
  pool.release(a, 64);
  pool.release(b, 64);
  pool.set_limit(std::size_t{64} << 20);
  void* c = pool.allocate(64);  // a block allocated with the pool off can be cached later
  pool.release(c, 64);
  CHECK(pool.allocate(64) == c);
  pool.release(c, 64);
}

}  // namespace core_buffer_pool_test
