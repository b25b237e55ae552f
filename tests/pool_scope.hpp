#pragma once
// PoolScope: runs a test with eqx's buffer pool on (it is off under
// AddressSanitizer), emptied before and after, and its limit restored.
//   eqx_test::PoolScope scope(std::size_t{64} << 20);

#include <cstddef>

#include "eqx/core/buffer_pool.hpp"

namespace eqx_test {

struct PoolScope {
  eqx::detail::BufferPool& pool = eqx::detail::BufferPool::instance();
  std::size_t saved = pool.limit();
  explicit PoolScope(std::size_t limit) {
    pool.clear();
    pool.set_limit(limit);
  }
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;
  ~PoolScope() {
    pool.clear();
    pool.set_limit(saved);
  }
};

}  // namespace eqx_test
