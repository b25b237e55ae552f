#pragma once
// The GEMM backend choice without the GEMM code: the EQX_GEMM policy, the
// per-shape decisions of the automatic policy (GemmChoices) and the
// arguments of one product (GemmArgs). prim/gemm.hpp, which compiles
// Eigen's kernel, is included only where products are computed (the DOT and
// CONV kernels); the jit's cache statistics and eqx::build_info() need only
// this, so a file with compiled kernels does not parse Eigen for them.
//
//   eqx::detail::GemmChoices::instance().size()  // shapes timed so far

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eqx/core/error.hpp"

namespace eqx::detail {

enum class GemmBackend : std::uint8_t { eigen, blas };
enum class GemmPolicy : std::uint8_t { automatic, eigen, blas };

inline constexpr bool kHaveBlas =
#if defined(EQX_HAVE_OPENBLAS)
    true;
#else
    false;
#endif

inline const char* gemm_backend_name(GemmBackend b) { return b == GemmBackend::blas ? "blas" : "eigen"; }

/// Parses an EQX_GEMM value. Usage: `parse_gemm_policy("auto")`.
inline GemmPolicy parse_gemm_policy(std::string_view value) {
  if (value == "auto") return GemmPolicy::automatic;
  if (value == "eigen") return GemmPolicy::eigen;
  if (value == "blas") {
    if (!kHaveBlas)
      throw ValueError(
          "EQX_GEMM=blas, but this build of eqx has no BLAS (OpenBLAS was not found when it was configured); "
          "use EQX_GEMM=eigen or auto, or install libopenblas-dev and reconfigure");
    return GemmPolicy::blas;
  }
  throw ValueError("EQX_GEMM must be 'eigen', 'blas' or 'auto', got '" + std::string(value) +
                   "'; unset it to choose per shape by timing");
}

/// The process's policy: EQX_GEMM when set, else automatic.
inline GemmPolicy& gemm_policy_slot() {
  static GemmPolicy policy = [] {
    const char* env = std::getenv("EQX_GEMM");
    return env != nullptr && *env != '\0' ? parse_gemm_policy(env) : GemmPolicy::automatic;
  }();
  return policy;
}

/// One GEMM shape as the backend choice sees it.
struct GemmKey {
  std::int64_t m, n, k;
  std::uint8_t flags;  // bit 0: A transposed, bit 1: B transposed, bit 2: double
  std::int32_t threads;
  bool operator==(const GemmKey&) const = default;
};

struct GemmKeyHash {
  std::size_t operator()(const GemmKey& key) const noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (std::uint64_t v : {std::uint64_t(key.m), std::uint64_t(key.n), std::uint64_t(key.k),
                            std::uint64_t(key.flags), std::uint64_t(key.threads)})
      h = (h ^ v) * 1099511628211ull;
    return static_cast<std::size_t>(h);
  }
};

/// One decision of the automatic policy, with the times it was made from.
struct GemmDecision {
  GemmKey key;
  GemmBackend backend;
  double eigen_seconds, blas_seconds;
};

/// The decisions made so far in this process, per shape.
class GemmChoices {
 public:
  static GemmChoices& instance() {
    static GemmChoices choices;
    return choices;
  }
  bool find(const GemmKey& key, GemmBackend& out) const {
    // Each thread remembers recent answers (a training step asks about the
    // same few shapes every time) and checks them before the lock and map.
    struct Memo {
      GemmKey key;
      GemmBackend backend;
      std::uint64_t generation;  // 0: empty
    };
    thread_local std::array<Memo, 32> memo{};
    Memo& m = memo[GemmKeyHash{}(key) % memo.size()];
    const std::uint64_t generation = generation_.load(std::memory_order_acquire);
    if (m.generation == generation && m.key == key) {
      out = m.backend;
      return true;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    out = it->second.backend;
    m = {key, out, generation};
    return true;
  }
  void record(const GemmDecision& d) {
    std::lock_guard<std::mutex> lock(mutex_);
    map_.emplace(d.key, d);
  }
  std::vector<GemmDecision> all() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<GemmDecision> out;
    for (const auto& [key, d] : map_) out.push_back(d);
    return out;
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return map_.size();
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    map_.clear();
    generation_.fetch_add(1, std::memory_order_release);  // forgets every thread's memo
  }

 private:
  std::atomic<std::uint64_t> generation_{1};
  mutable std::mutex mutex_;
  std::unordered_map<GemmKey, GemmDecision, GemmKeyHash> map_;
};

/// C[m, n] (row-major, leading dimension ldc) = op(A) op(B), where op(A) is
/// [m, k] and op(B) is [k, n]; A and B are row-major with leading dimensions
/// lda and ldb, and `trans_a` / `trans_b` say they are stored transposed.
template <class T>
struct GemmArgs {
  const T* a;
  std::int64_t lda;
  bool trans_a;
  const T* b;
  std::int64_t ldb;
  bool trans_b;
  T* c;
  std::int64_t ldc;
  std::int64_t m, n, k;
};

}  // namespace eqx::detail
