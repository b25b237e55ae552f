#pragma once
// BufferPool: large array buffers, kept for reuse instead of returned to
// the system allocator.
//
// A training loop allocates the same buffers every step: a jitted step
// returns new parameters and optimiser state of the same shapes as the ones
// it replaces, which die a moment later. glibc serves blocks above its mmap
// threshold with mmap and returns them with munmap, so each step paid a
// system call pair and a page fault per 4 KiB touched (raising the
// threshold alone sped the CNN step up 7-10%). Freed blocks of at least
// kMinBytes are kept here, keyed by their exact size, and handed to the next
// allocation of that size; the pool holds at most `limit()` bytes (default
// 1 GiB, EQX_BUFFER_POOL_MB overrides, 0 turns it off) and frees the rest.
// Under AddressSanitizer it is off, so use-after-free stays detectable.
//
//   eqx::detail::BufferPool::instance().cached_bytes();  // what it holds now

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace eqx::detail {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

class BufferPool {
 public:
  static constexpr std::size_t kAlign = 64;
  static constexpr std::size_t kMinBytes = std::size_t{64} << 10;

  /// The process's pool. Never destroyed: Arrays in static objects may be
  /// freed after every other static, and still find it.
  static BufferPool& instance() {
    static BufferPool* pool = new BufferPool;
    return *pool;
  }

  /// A block of exactly `nbytes` (64-byte aligned), reused when one is cached.
  void* allocate(std::size_t nbytes) {
    if (nbytes >= kMinBytes && limit_ > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(nbytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= nbytes;
        ++reused_;
        return p;
      }
    }
    return ::operator new(nbytes, std::align_val_t{kAlign});
  }

  /// Gives back a block from allocate(): cached if there is room, else freed.
  void release(void* p, std::size_t nbytes) {
    if (nbytes >= kMinBytes && limit_ > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + nbytes <= limit_) {
        free_[nbytes].push_back(p);
        cached_ += nbytes;
        return;
      }
    }
    ::operator delete(p, std::align_val_t{kAlign});
  }

  /// Frees every cached block (eqx's caches can be dropped the same way).
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [nbytes, blocks] : free_)
      for (void* p : blocks) ::operator delete(p, std::align_val_t{kAlign});
    free_.clear();
    cached_ = 0;
  }

  std::size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  /// Allocations served from the cache so far.
  std::size_t reused() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reused_;
  }
  std::size_t limit() const { return limit_; }
  void set_limit(std::size_t bytes) {
    limit_ = bytes;
    if (bytes == 0) clear();
  }

 private:
  BufferPool() : limit_(default_limit()) {}

  static std::size_t default_limit() {
    if (kUnderAddressSanitizer) return 0;
    if (const char* env = std::getenv("EQX_BUFFER_POOL_MB")) return std::size_t(std::strtoull(env, nullptr, 10)) << 20;
    return std::size_t{1} << 30;
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_ = 0, reused_ = 0;
  std::atomic<std::size_t> limit_;
};

}  // namespace eqx::detail
