#pragma once
// Threads: eqx::set_num_threads and the small pool that large kernels use.
//
// Small operations stay on the calling thread: handing a 16-float add to
// another thread costs more than the add (WORKLOADS.md measured Eigen's
// threaded GEMM turning a 14 us step into 48 us). Kernels call
// detail::parallel_for with the size of their work and it decides.
//
// Waking a sleeping thread goes through the kernel: 40-55 us per 2-thread
// parallel_for on a 2-vCPU cloud machine, more than most kernels of a
// training step take. So, as OpenMP runtimes do, a worker that finishes a
// task spins for a while (kSpinMicroseconds) watching for the next one
// before it sleeps, and the caller spins while it waits for the workers.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"

#if defined(EQX_HAVE_OPENBLAS)
extern "C" void openblas_set_num_threads(int);
#endif

namespace eqx {

namespace detail {

/// How long a worker watches for its next task, and the caller for the
/// workers to finish, before blocking: longer than the gap between two
/// parallel kernels of a step, short enough that an idle program sleeps.
inline constexpr int kSpinMicroseconds = 100;

/// A hint to the CPU inside a spin-wait loop.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Spins until ready() or kSpinMicroseconds have passed; returns ready().
/// After the first few hundred pauses it yields between checks, so that a
/// runnable thread on the same core (OpenBLAS's own workers during a
/// threaded GEMM) gets the core rather than waiting for the spin to end.
template <class Ready>
bool spin_until(Ready&& ready) {
  for (int i = 0; i < 256; ++i) {
    if (ready()) return true;
    cpu_relax();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicroseconds);
  for (;;) {
    if (ready()) return true;
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

/// Persistent workers; `run(n, task)` calls task(0..n-1), task(0) on the caller.
class ThreadPool {
 public:
  static ThreadPool& instance();

  // Read by every kernel call: atomic, not behind the mutex.
  int num_threads() const { return num_threads_.load(std::memory_order_relaxed); }

  void set_num_threads(int n);

  /// Runs task(i) for i in [0, n), blocking until all are done. Nested calls
  /// and calls while another thread uses the pool run inline. An exception
  /// from any task(i) is rethrown here once every task has finished (the
  /// caller's own first).
  void run(int n, const std::function<void(int)>& task);

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

 private:
  // EQX_NUM_THREADS, if set to a positive number, overrides the core count
  // (the test suite runs its [threads] cases once with EQX_NUM_THREADS=1).
  ThreadPool();

  static bool& in_worker() {
    thread_local bool flag = false;
    return flag;
  }

  void stop_workers();

  void worker_loop(int index, std::uint64_t seen);

  mutable std::mutex m_;
  std::mutex run_mutex_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  std::exception_ptr worker_error_;  // a worker's task threw (under m_)
  std::atomic<int> num_threads_;
  int run_size_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<std::uint64_t> generation_{0};  // written under m_, read by spinning workers without it
  bool stopping_ = false;
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

EQX_KERNEL_INLINE void ThreadPool::set_num_threads(int n) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  stop_workers();
  std::lock_guard<std::mutex> lk(m_);
  num_threads_ = n;
}

EQX_KERNEL_INLINE void ThreadPool::run(int n, const std::function<void(int)>& task) {
  std::unique_lock<std::mutex> run_lock(run_mutex_, std::defer_lock);
  if (n <= 1 || in_worker() || !run_lock.try_lock()) {
    for (int i = 0; i < n; ++i) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(m_);
    while (static_cast<int>(workers_.size()) < n - 1) {
      int index = static_cast<int>(workers_.size()) + 1;
      const std::uint64_t seen = generation_.load(std::memory_order_relaxed);
      workers_.emplace_back([this, index, seen] { worker_loop(index, seen); });
    }
    task_ = &task;
    run_size_ = n;
    pending_.store(n - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();  // no system call when every worker is spinning
  std::exception_ptr error;
  try {
    task(0);
  } catch (...) {
    error = std::current_exception();  // the workers still use `task`: wait for them first
  }
  spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lk(m_);
  done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  task_ = nullptr;
  if (!error) error = worker_error_;
  worker_error_ = nullptr;
  lk.unlock();
  if (error) std::rethrow_exception(error);
}

EQX_KERNEL_INLINE ThreadPool::~ThreadPool() { stop_workers(); }

EQX_KERNEL_INLINE ThreadPool::ThreadPool()
    : num_threads_(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {
  if (const char* env = std::getenv("EQX_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) {
      num_threads_ = n;
#if defined(EQX_HAVE_OPENBLAS)
      openblas_set_num_threads(n);
#endif
    }
  }
}

EQX_KERNEL_INLINE void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stopping_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
  std::lock_guard<std::mutex> lk(m_);
  workers_.clear();
  stopping_ = false;
}

EQX_KERNEL_INLINE void ThreadPool::worker_loop(int index, std::uint64_t seen) {
  in_worker() = true;
  for (;;) {
    spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
    const std::function<void(int)>* task = nullptr;
    {
      std::unique_lock<std::mutex> lk(m_);
      cv_.wait(lk, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
      seen = generation_.load(std::memory_order_relaxed);
      if (stopping_) return;
      if (task_ == nullptr || index >= run_size_) continue;
      task = task_;
    }
    try {
      (*task)(index);
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!worker_error_) worker_error_ = std::current_exception();
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(m_);  // the caller may be about to sleep on done_cv_
      done_cv_.notify_one();
    }
  }
}
#endif  // EQX_KERNELS_HERE(GRAPH)

/// Elements below which an elementwise kernel stays on one thread.
inline constexpr std::int64_t kParallelGrain = 1 << 15;

/// A range body without its type: `call(body, begin, end)`.
struct ErasedRangeBody {
  void (*call)(void* body, std::int64_t begin, std::int64_t end);
  void* body;
};

/// parallel_for's threaded half, the same code for every body (the bodies
/// are type-erased so that each kernel instantiates a function pointer,
/// not a std::function of its own: hundreds of kernels call parallel_for).
EQX_KERNEL_INLINE void parallel_for_erased(std::int64_t n, int threads, ErasedRangeBody body);

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE void parallel_for_erased(std::int64_t n, int threads, ErasedRangeBody body) {
  struct Split {
    std::int64_t n;
    int threads;
    ErasedRangeBody body;
  } split{n, threads, body};
  // The task captures one pointer, so std::function stores it inline (its
  // buffer holds 16 bytes): a parallel kernel in a compiled plan allocates
  // nothing.
  const std::function<void(int)> task = [s = &split](int i) {
    std::int64_t begin = s->n * i / s->threads, end = s->n * (i + 1) / s->threads;
    if (begin < end) s->body.call(s->body.body, begin, end);
  };
  ThreadPool::instance().run(threads, task);
}
#endif  // EQX_KERNELS_HERE(GRAPH)

// One copy of a kernel's loop body, called on one thread and from the
// pool alike (inlined into both, it would be compiled twice).
template <class B>
EQX_NOINLINE void call_range_body(void* body, std::int64_t begin, std::int64_t end) {
  (*static_cast<B*>(body))(begin, end);
}

/// Calls body(begin, end) over [0, n) split into contiguous chunks, on up to
/// num_threads() threads when `n * cost_per_item` is at least kParallelGrain.
/// Usage: `parallel_for(n, 1, [&](std::int64_t b, std::int64_t e) { ... });`
template <class Body>
void parallel_for(std::int64_t n, std::int64_t cost_per_item, Body&& body) {
  std::int64_t work = n * std::max<std::int64_t>(cost_per_item, 1);
  int threads = static_cast<int>(std::min<std::int64_t>(ThreadPool::instance().num_threads(), work / kParallelGrain));
  threads = static_cast<int>(std::min<std::int64_t>(threads, n));
  void* erased = const_cast<void*>(static_cast<const void*>(std::addressof(body)));
  using B = std::remove_reference_t<Body>;
  if (threads <= 1) {
    if (n > 0) call_range_body<B>(erased, 0, n);
    return;
  }
  parallel_for_erased(n, threads, {&call_range_body<B>, erased});
}

}  // namespace detail

/// Number of threads eqx kernels may use (default: the machine's cores).
inline int num_threads() { return detail::ThreadPool::instance().num_threads(); }

/// Sets the threads used by GEMM (OpenBLAS when linked) and by large
/// elementwise and reduction kernels. Small operations always run on the
/// calling thread. Usage: `eqx::set_num_threads(1);`
inline void set_num_threads(int n) {
  if (n < 1) throw ValueError("eqx::set_num_threads: need at least 1 thread, got " + std::to_string(n));
  detail::ThreadPool::instance().set_num_threads(n);
#if defined(EQX_HAVE_OPENBLAS)
  openblas_set_num_threads(n);
#endif
}

}  // namespace eqx
