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
// Small blocks (up to kSmallMax bytes: an eager op's output, a jitted
// call's small results, every Array's handle) are kept too, per thread, a
// few per 64-byte size class: glibc serves 64-byte aligned requests through
// its slow memalign path, which cost about as much as the 16-float op it
// allocated for, and an eager op on small arrays pays for every malloc.
//
//   eqx::detail::BufferPool::instance().cached_bytes();  // what it holds now

#include <atomic>
#include <cstddef>
#include <cstdint>
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

  static constexpr std::size_t kSmallMax = 4096;

  /// A block of at least `nbytes` (64-byte aligned), reused when one is cached.
  void* allocate(std::size_t nbytes) {
    if (nbytes <= kSmallMax) {
      // Always the class size, so a block can be cached whatever the limit
      // was when it was allocated.
      if (limit_ > 0)
        if (SmallCache* c = small_cache()) return c->allocate(nbytes);
      return ::operator new((nbytes + kAlign - 1) / kAlign * kAlign, std::align_val_t{kAlign});
    }
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
    if (nbytes <= kSmallMax && limit_ > 0) {
      if (SmallCache* c = small_cache()) return c->release(p, nbytes);
    } else if (nbytes >= kMinBytes && limit_ > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + nbytes <= limit_) {
        free_[nbytes].push_back(p);
        cached_ += nbytes;
        return;
      }
    }
    ::operator delete(p, std::align_val_t{kAlign});
  }

  /// Frees every cached block: the large ones and the calling thread's
  /// small ones now, other threads' small ones at their next allocation or
  /// release while the pool is on (with the limit at 0 they are not looked
  /// at again, so they stay until that thread exits).
  void clear() {
    small_epoch_.fetch_add(1, std::memory_order_relaxed);
    if (SmallCache* c = small_cache()) c->clear();
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
  /// Bytes of the calling thread's cached small blocks.
  std::size_t small_cached_bytes() const {
    SmallCache* c = small_cache();
    return c ? c->bytes() : 0;
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

  /// One thread's small blocks: a short stack per 64-byte size class, a
  /// longer one for the first class, which also serves every Array's
  /// handle (its Storage and shared_ptr control block, see PooledAllocator
  /// in core/array.hpp): a training step's tens of small outputs each take
  /// one, and often a buffer of that class too. A block freed on another
  /// thread than the one that allocated it joins the freeing thread's cache
  /// (any block of its class can serve).
  struct SmallCache {
    static constexpr std::size_t kClasses = kSmallMax / kAlign, kPerClass = 8, kFirstClassSlots = 64;
    static_assert(kFirstClassSlots < 256, "counts are bytes");
    void* blocks[kFirstClassSlots + (kClasses - 1) * kPerClass];
    std::uint8_t count[kClasses] = {};

    static std::size_t class_of(std::size_t nbytes) { return (nbytes + kAlign - 1) / kAlign - 1; }
    static std::size_t capacity(std::size_t c) { return c == 0 ? kFirstClassSlots : kPerClass; }
    void** stack(std::size_t c) { return blocks + (c == 0 ? 0 : kFirstClassSlots + (c - 1) * kPerClass); }
    void* allocate(std::size_t nbytes) {
      const std::size_t c = class_of(nbytes);
      if (count[c] > 0) return stack(c)[--count[c]];
      return ::operator new((c + 1) * kAlign, std::align_val_t{kAlign});  // the class size, so it can serve any
    }
    void release(void* p, std::size_t nbytes) {
      const std::size_t c = class_of(nbytes);
      if (count[c] < capacity(c)) stack(c)[count[c]++] = p;
      else ::operator delete(p, std::align_val_t{kAlign});
    }
    void clear() {
      for (std::size_t c = 0; c < kClasses; ++c)
        while (count[c] > 0) ::operator delete(stack(c)[--count[c]], std::align_val_t{kAlign});
    }
    std::size_t bytes() const {
      std::size_t total = 0;
      for (std::size_t c = 0; c < kClasses; ++c) total += count[c] * (c + 1) * kAlign;
      return total;
    }
    std::uint64_t epoch = 0;  // BufferPool::small_epoch_ when last cleared
    ~SmallCache() {
      clear();
      small_cache_gone() = true;
    }
  };
  /// Set when this thread's cache is destroyed (trivially destructible, so
  /// still readable): Arrays freed later in thread exit go to the allocator.
  static bool& small_cache_gone() {
    thread_local bool gone = false;
    return gone;
  }
  /// This thread's small blocks, emptied first if clear() ran since.
  SmallCache* small_cache() const {
    if (small_cache_gone()) return nullptr;
    thread_local SmallCache cache;
    if (const std::uint64_t e = small_epoch_.load(std::memory_order_relaxed); cache.epoch != e) [[unlikely]] {
      cache.clear();
      cache.epoch = e;
    }
    return &cache;
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_ = 0, reused_ = 0;
  std::atomic<std::size_t> limit_;
  std::atomic<std::uint64_t> small_epoch_{0};
};

}  // namespace eqx::detail
