// Tests for the pool of large array buffers (core/buffer_pool.hpp).
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>

#include "eqx/core/array.hpp"
#include "eqx/core/buffer_pool.hpp"
#include "eqx/ops/creation.hpp"

namespace {

using eqx::detail::BufferPool;

/// Runs a test with the pool on (it is off under AddressSanitizer), emptied
/// before and after, and its limit restored.
struct PoolScope {
  BufferPool& pool = BufferPool::instance();
  std::size_t saved = pool.limit();
  explicit PoolScope(std::size_t limit) {
    pool.clear();
    pool.set_limit(limit);
  }
  ~PoolScope() {
    pool.clear();
    pool.set_limit(saved);
  }
};

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
