#pragma once
// filter_jit: compile a function once per kind of input, then run the plan.
//
// Every call flattens the arguments (and the function, when it is a pytree
// such as a callable module). Array leaves are dynamic; every other leaf is
// static. The cache key is the argument types, their structure, the static
// leaves by value and the Array leaves' shapes and dtypes:
//   - on a miss the call is traced into a Graph, optimised (eqx::optimize)
//     and compiled to a Plan;
//   - on a hit the Plan runs on the Array leaves. Nothing is traced and
//     nothing is allocated except the outputs. A call like the last one (a
//     training loop) is matched against that entry in one walk that also
//     collects the leaves into an on-stack buffer; any other call hashes
//     its key while collecting them, then compares in place.
// Outputs are rebuilt into the function's return type; non-Array outputs
// come from the trace, as in Equinox. Called inside another trace, a jitted
// function is inlined into it.
//
// Donation (`{.donate = eqx::Donate::all}`): the Array leaves of donated
// arguments are handed to the call. A donated leaf whose buffer no other
// Array shares (the caller's handle and the call's own copy are the only
// references) is consumed: the plan may write an output of the same shape
// and dtype into it (ir/plan.hpp picks which), and the caller's handle, and
// any copy made from it later, can no longer be read (Array::is_donated).
// A shared buffer is left alone, silently, as JAX does with a buffer it
// cannot donate: other Arrays may still read it.
//
// eqx::clear_caches() drops every live jitted function's compiled entries
// (they register in a process-wide list of weak references), the compiled
// control-flow bodies, the GEMM backend choices and the buffer pool's free
// blocks. A call in flight on another thread keeps the entry it is running:
// each thread marks itself as inside a call (JitCallGuard, a plain store
// per call), and clear_caches drops the entries, waits for the calls that
// were running, then frees them.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "eqx/core/config.hpp"
#if EQX_KERNELS_HERE(GRAPH)
#include <deque>
#include <thread>
#include <unordered_set>
#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#include "eqx/ir/optimize.hpp"
#include "eqx/ir/plan.hpp"
#include "eqx/prim/gemm_policy.hpp"
#include "eqx/transform/subgraph.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

/// Which arguments' Array buffers a jitted function may reuse for its
/// outputs (Equinox's `donate`): none (the default), all (the function's
/// own Arrays when it is a module, and every argument), or all but the first
/// argument (pass what must survive the call, e.g. a batch, first).
enum class Donate { none, all, all_except_first };

/// Options of eqx::filter_jit. Usage: `eqx::filter_jit(step, {.donate = eqx::Donate::all})`
struct JitOptions {
  Donate donate = Donate::none;
};

namespace detail {

/// The Array leaves of one call, held by value (a custom node's flatten may
/// return temporaries) and as pointers for Plan::run. No heap use up to 64
/// leaves; copying an Array only bumps a reference count.
class LeafRefs {
 public:
  LeafRefs() = default;
  LeafRefs(const LeafRefs&) = delete;
  LeafRefs& operator=(const LeafRefs&) = delete;
  ~LeafRefs() {
    for (std::size_t i = 0; i < std::min(n_, kInline); ++i) slot(i)->~Array();
  }
  void push(const Array& a) {
    if (n_ < kInline) ptrs_[n_] = new (slot(n_)) Array(a);  // constructed only when used
    else heap_.push_back(a);
    ++n_;
  }
  void clear() {
    for (std::size_t i = 0; i < std::min(n_, kInline); ++i) slot(i)->~Array();
    heap_.clear();
    heap_ptrs_.clear();
    n_ = 0;
  }
  std::size_t size() const { return n_; }
  std::span<const Array* const> span() {
    if (n_ <= kInline) return {ptrs_.data(), n_};
    heap_ptrs_.assign(ptrs_.begin(), ptrs_.end());
    for (const Array& a : heap_) heap_ptrs_.push_back(&a);
    return heap_ptrs_;
  }

 private:
  static constexpr std::size_t kInline = 64;
  Array* slot(std::size_t i) { return std::launder(reinterpret_cast<Array*>(storage_ + i * sizeof(Array))); }
  alignas(Array) std::byte storage_[kInline * sizeof(Array)];
  std::array<const Array*, kInline> ptrs_;
  std::vector<Array> heap_;
  std::vector<const Array*> heap_ptrs_;
  std::size_t n_ = 0;
};

template <class X>
inline constexpr bool is_view_leaf =
    std::is_same_v<X, std::string_view> || std::is_same_v<X, const char*> || std::is_same_v<X, char*>;

/// Hashes the cache key of one call while collecting its Array leaves.
struct KeyHasher : StructureHasher {
  LeafRefs* leaves;
  bool leaked = false;  // an abstract leaf was met on an untracked path
  bool array(const TreePath& path, const Array& a) {
    if (!a.has_value()) {
      h = hash_combine(h, 0xB0B);
      return true;
    }
    if (a.is_abstract()) {  // no trace is active here: jit inside a trace is inlined
      if (!path.tracking()) {  // the fast walk stops; the caller walks again to name the leaf
        leaked = true;
        return false;
      }
      throw_abstract_argument(path, a);
    }
    leaves->push(a);
    h = hash_combine(h, static_cast<std::size_t>(a.dtype()) + 0xA11);
    for (std::int64_t d : a.shape()) h = hash_combine(h, static_cast<std::size_t>(d));
    h = hash_combine(h, a.ndim());
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath& path, const X& x) {
    static_assert(!is_view_leaf<X>,
                  "eqx::filter_jit: a std::string_view or char pointer argument would be cached as a pointer "
                  "to memory the caller may reuse; pass a std::string");
    return StructureHasher::static_leaf(path, x);
  }
  bool mismatch(const TreePath&, const std::string&) { return true; }
  /// The error for an abstract argument leaf met on a tracked walk.
  [[noreturn]] static void throw_abstract_argument(const TreePath& path, const Array& a);
};

#if EQX_KERNELS_HERE(GRAPH)
[[noreturn]] EQX_KERNEL_INLINE void KeyHasher::throw_abstract_argument(const TreePath& path, const Array& a) {
  if (ArrayAccess::shape_only(a))
    throw TraceError("eqx::filter_jit: argument leaf " + path.display() + " is a shape-only Array " +
                     AbstractArray{a.shape(), a.dtype()}.str() +
                     " (eqx::shape_dtype_struct / filter_eval_shape), which has no values to run on; pass a real "
                     "Array, or use eqx::filter_eval_shape to get only the output's shapes");
  throw TraceError("eqx::filter_jit: argument leaf " + path.display() +
                   " is an abstract Array from a trace that has already finished (a leaked tracer); pass "
                   "concrete Arrays, or return the value from the transformed function instead");
}
#endif  // EQX_KERNELS_HERE(GRAPH)

/// Compares a live argument with a cached skeleton: the same empty Array
/// slots and equal static leaves (structure is checked by the walk).
struct KeyComparer {
  const std::vector<bool>* present;
  std::size_t slot = 0;
  bool array(const TreePath&, const Array& live, const Array&) { return live.has_value() == (*present)[slot++]; }
  template <class X>
  bool static_leaf(const TreePath&, const X& a, const X& b) {
    return StructureComparer{}.static_leaf(TreePath{}, a, b);
  }
  bool mismatch(const TreePath&, const std::string&) { return false; }
};

/// KeyComparer that also collects the call's Array leaves and checks them
/// against the leaf types the entry's plan was compiled for: a whole match
/// in one walk. Any difference (a leaked tracer too) is a miss, after which
/// the caller hashes the key.
struct KeyMatcher : KeyComparer {
  LeafRefs* leaves;
  const std::vector<AbstractArray>* types;
  bool array(const TreePath& path, const Array& live, const Array& skeleton) {
    if (slot >= present->size() || !KeyComparer::array(path, live, skeleton)) return false;
    if (!live.has_value()) return true;
    const std::size_t i = leaves->size();
    if (live.is_abstract() || i >= types->size() || live.dtype() != (*types)[i].dtype ||
        live.shape() != (*types)[i].shape)
      return false;
    leaves->push(live);
    return true;
  }
};

/// One distinct address per type (not const: identical constants may be merged).
template <class T>
inline char type_tag = 0;

/// One compiled specialisation of a jitted function.
struct JitEntryBase {
  virtual ~JitEntryBase() = default;
  const void* tag = nullptr;
  std::size_t hash = 0;
  std::vector<AbstractArray> leaf_types;
  std::vector<bool> present;
  std::unique_ptr<Plan> plan;
  // Per leaf: what a donated leaf was donated to (for the message when it is
  // read later), null when not donated; empty when nothing is donated.
  std::vector<const char*> donation_sites;
};

/// Per Array leaf with a value (the function's own, then each argument's),
/// what it is donated to, or null: "argument 1 (leaf [1].moments["m"]) of
/// eqx::filter_jit(Step) with donate = all". `paths` are the leaves' paths
/// within their root, `root_ends` where each root's leaves end; the first
/// root is the function when `has_self`. The strings live for the process:
/// a donated buffer's record of where it went outlives the jit entry.
std::vector<const char*> donation_sites(std::string_view function, Donate donate, bool has_self,
                                        std::span<const std::string> paths, std::span<const std::size_t> root_ends);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::vector<const char*> donation_sites(std::string_view function, Donate donate, bool has_self,
                                                          std::span<const std::string> paths,
                                                          std::span<const std::size_t> root_ends) {
  static std::mutex mutex;
  static std::unordered_set<std::string> interned;
  const std::string fn = "eqx::filter_jit(" + std::string(function) +
                         ") with donate = " + (donate == Donate::all ? "all" : "all_except_first");
  std::vector<const char*> sites;
  std::lock_guard lock(mutex);
  std::size_t leaf = 0;
  for (std::size_t root = 0; root < root_ends.size(); ++root) {
    const std::size_t arg = has_self ? root - 1 : root;  // unused for the function's own leaves
    const bool donated = (has_self && root == 0) || donate == Donate::all || arg > 0;
    for (; leaf < root_ends[root]; ++leaf) {
      if (!donated) {
        sites.push_back(nullptr);
        continue;
      }
      std::string site = has_self && root == 0
                             ? "the function's own leaf " + (paths[leaf].empty() ? "(root)" : paths[leaf]) + " in " + fn
                             : "argument " + std::to_string(arg) + " (leaf [" + std::to_string(arg) + "]" +
                                   paths[leaf] + ") of " + fn;
      sites.push_back(interned.insert(std::move(site)).first->c_str());
    }
  }
  return sites;
}
#endif

template <class Self, class R, class... Args>
struct JitEntry final : JitEntryBase {
  JitEntry(TreeDef<R> out, Self self, std::tuple<Args...> args)
      : out_def(std::move(out)), self_skeleton(std::move(self)), arg_skeletons(std::move(args)) {}
  TreeDef<R> out_def;
  Self self_skeleton;  // std::monostate when the function is not a pytree
  std::tuple<Args...> arg_skeletons;
};

/// One thread's record of its jitted calls, read by clear_caches. `calls`
/// counts the outermost calls begun and ended (odd while one runs); only
/// the owning thread writes it, with plain stores (see JitCallGuard).
struct JitThreadSlot {
  std::atomic<std::uint64_t> calls{0};
  int depth = 0;              // jitted calls this thread is inside, nested
  bool fenced_calls = false;  // no membarrier here: each call pays a full fence
  bool in_use = false;        // a live thread owns it (JitThreads::mutex)
};

/// Gives this thread a slot (reusing one a finished thread left) and sets
/// `owner` to it; the thread's exit hands it back and clears `owner`.
JitThreadSlot& register_jit_thread(JitThreadSlot*& owner);

/// This thread's slot. The pointer is constant-initialised, so reading it
/// costs no thread_local guard on the call path.
inline JitThreadSlot& jit_thread_slot() {
  thread_local JitThreadSlot* slot = nullptr;
  if (!slot) [[unlikely]] return register_jit_thread(slot);
  return *slot;
}

/// How deeply this thread is inside jitted calls (clear_caches refuses to
/// wait for a call on its own thread).
inline int jit_call_depth() { return jit_thread_slot().depth; }

/// Waits until every call that was running on another thread when this was
/// called has ended (calls that begin later cannot see what the caller
/// dropped before calling this).
void wait_for_running_jit_calls();

struct JitCache {
  std::mutex mutex;
  std::vector<std::unique_ptr<JitEntryBase>> entries;
  std::atomic<std::size_t> traces{0};
  // The entry the last call used, checked first without the lock: a
  // training loop calls one specialisation over and over (clear_caches
  // frees entries only once no call that could hold this pointer runs).
  std::atomic<const JitEntryBase*> last{nullptr};

  std::size_t size() {
    std::lock_guard lock(mutex);
    return entries.size();
  }
  /// Moves every entry into `dropped`; the caller frees them once the calls
  /// that may be using one have ended (wait_for_running_jit_calls).
  void drop_entries(std::vector<std::unique_ptr<JitEntryBase>>& dropped) {
    std::lock_guard lock(mutex);
    last.store(nullptr);
    for (auto& e : entries) dropped.push_back(std::move(e));
    entries.clear();
  }
  /// Bytes the entries' plans hold: constants, plus one arena and scratch each.
  std::size_t bytes() {
    std::lock_guard lock(mutex);
    std::size_t total = 0;
    for (const auto& e : entries) {
      const MemoryStats m = e->plan->memory_stats();
      total += m.constant_bytes + m.arena_bytes + m.scratch_bytes;
    }
    return total;
  }
};

/// Marks this thread as inside a jitted call for as long as it lives.
/// The outermost call makes its thread's count odd with a plain store and
/// only a compiler fence; clear_caches pays for the ordering instead, with
/// membarrier(2), which runs a full fence on every thread of the process
/// before it reads the counts (an asymmetric fence, as in userspace RCU).
/// Where membarrier is unavailable each call fences itself.
class JitCallGuard {
 public:
  JitCallGuard() : slot_(jit_thread_slot()) {
    if (slot_.depth++ != 0) return;
    slot_.calls.store(slot_.calls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    // The store must be visible before this call reads a cache entry.
    if (slot_.fenced_calls) [[unlikely]] std::atomic_thread_fence(std::memory_order_seq_cst);
    else std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  JitCallGuard(const JitCallGuard&) = delete;
  JitCallGuard& operator=(const JitCallGuard&) = delete;
  ~JitCallGuard() {
    if (--slot_.depth == 0)  // release: this call's reads of its entry happen before a clear frees it
      slot_.calls.store(slot_.calls.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

 private:
  JitThreadSlot& slot_;
};

#if EQX_KERNELS_HERE(GRAPH)
/// Every slot ever given out (stable addresses, never freed), and whether
/// membarrier's private expedited command is registered for this process.
struct JitThreads {
  std::mutex mutex;
  std::deque<JitThreadSlot> slots;
  bool asymmetric = false;

  static JitThreads& instance() {
    static JitThreads* threads = new JitThreads;  // never destroyed: threads may end after static destruction
    return *threads;
  }
  JitThreads() {
#if defined(__linux__) && defined(SYS_membarrier)
    asymmetric = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
  }
};

/// Hands a thread's slot back when the thread ends.
struct JitThreadSlotRelease {
  JitThreadSlot** owner = nullptr;
  ~JitThreadSlotRelease() {
    if (!owner || !*owner) return;
    std::lock_guard lock(JitThreads::instance().mutex);
    (*owner)->in_use = false;
    *owner = nullptr;
  }
};

EQX_KERNEL_INLINE JitThreadSlot& register_jit_thread(JitThreadSlot*& owner) {
  thread_local JitThreadSlotRelease release;
  JitThreads& threads = JitThreads::instance();
  std::lock_guard lock(threads.mutex);
  JitThreadSlot* slot = nullptr;
  for (JitThreadSlot& s : threads.slots)
    if (!s.in_use) {
      slot = &s;
      break;
    }
  if (!slot) slot = &threads.slots.emplace_back();
  slot->in_use = true;
  slot->depth = 0;
  slot->fenced_calls = !threads.asymmetric;
  release.owner = &owner;
  owner = slot;
  return *slot;
}

EQX_KERNEL_INLINE void wait_for_running_jit_calls() {
  JitThreads& threads = JitThreads::instance();
  bool fenced = false;
#if defined(__linux__) && defined(SYS_membarrier)
  fenced = threads.asymmetric && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
  if (!fenced) std::atomic_thread_fence(std::memory_order_seq_cst);
  const JitThreadSlot* self = &jit_thread_slot();
  std::vector<std::pair<const JitThreadSlot*, std::uint64_t>> running;
  {
    std::lock_guard lock(threads.mutex);
    for (const JitThreadSlot& s : threads.slots) {
      const std::uint64_t calls = s.calls.load(std::memory_order_acquire);
      if (&s != self && s.in_use && calls % 2 == 1) running.emplace_back(&s, calls);
    }
  }
  for (const auto& [slot, calls] : running)
    while (slot->calls.load(std::memory_order_acquire) == calls) std::this_thread::yield();
}
#endif

/// Every jitted function's cache, by weak reference (a cache goes with the
/// last copy of its function).
struct JitRegistry {
  std::mutex mutex;
  std::vector<std::weak_ptr<JitCache>> caches;
  std::size_t prune_at = 64;

  static JitRegistry& instance();
  void add(const std::shared_ptr<JitCache>& cache);
  std::vector<std::shared_ptr<JitCache>> live();
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE JitRegistry& JitRegistry::instance() {
  static JitRegistry* registry = new JitRegistry;  // never destroyed: jitted functions in statics register late
  return *registry;
}

EQX_KERNEL_INLINE void JitRegistry::add(const std::shared_ptr<JitCache>& cache) {
  std::lock_guard lock(mutex);
  if (caches.size() >= prune_at) {
    std::erase_if(caches, [](const std::weak_ptr<JitCache>& c) { return c.expired(); });
    prune_at = std::max<std::size_t>(64, 2 * caches.size());
  }
  caches.push_back(cache);
}

EQX_KERNEL_INLINE std::vector<std::shared_ptr<JitCache>> JitRegistry::live() {
  std::lock_guard lock(mutex);
  std::vector<std::shared_ptr<JitCache>> out;
  for (const auto& c : caches)
    if (auto p = c.lock()) out.push_back(std::move(p));
  return out;
}
#endif  // EQX_KERNELS_HERE(GRAPH)

}  // namespace detail

/// A function compiled by eqx::filter_jit. Copies share one cache.
template <class F>
class Jitted {
 public:
  explicit Jitted(F f, JitOptions options = {})
      : f_(std::move(f)), options_(options), cache_(std::make_shared<detail::JitCache>()) {
    detail::JitRegistry::instance().add(cache_);
  }

  /// Calls the function: runs the cached plan for this kind of input, or
  /// traces and compiles one first.
  template <class... Args>
  auto operator()(const Args&... args) const {
    static_assert(!std::is_void_v<detail::call_result_t<F, std::decay_t<Args>...>>,
                  "eqx: a transformed function must return a value (an Array or a pytree)");
    return call<std::decay_t<Args>...>(args...);  // decay: a function argument is a function pointer leaf
  }

  /// The compiled plan for these arguments (compiling it if needed): for
  /// inspecting the optimised graph and memory use. eqx::clear_caches()
  /// frees it: do not keep the reference across one.
  /// Usage: `fmt::print("{}\n", jitted.plan(x).graph()); jitted.plan(x).memory_stats().arena_bytes`
  template <class... Args>
  const Plan& plan(const Args&... args) const {
    return plan_for<std::decay_t<Args>...>(args...);
  }

  /// How many times the function has been traced (cache misses; not reset
  /// by eqx::clear_caches).
  std::size_t num_traces() const { return cache_->traces.load(); }

  /// How many compiled specialisations the cache holds now.
  /// Usage: `step(model, x); step.cache_size() == 1; eqx::clear_caches(); step.cache_size() == 0`
  std::size_t cache_size() const { return cache_->size(); }

  /// The options it was made with. Usage: `step.options().donate == eqx::Donate::all`
  const JitOptions& options() const { return options_; }

  const F& function() const { return f_; }

 private:
  template <class... Args>
  detail::call_result_t<F, Args...> call(const std::type_identity_t<Args>&... args) const {
    if (!detail::interpreter_stack().empty()) return std::invoke(f_, args...);  // inside a trace: inline
    detail::JitCallGuard guard;
    detail::LeafRefs leaves;
    const Entry<Args...>* entry = match_last(leaves, args...);
    if (!entry) {
      leaves.clear();
      const std::size_t hash = key_hash(leaves, args...);
      entry = static_cast<const Entry<Args...>*>(find(leaves, hash, args...));
      if (!entry) entry = compile(hash, args...);
    }
    std::span<const Array* const> refs = leaves.span();
    if (entry->donation_sites.empty()) return entry->out_def.unflatten(entry->plan->run(refs));
    return entry->out_def.unflatten(run_donating(*entry, refs));
  }

  // Consumed leaves: donated, and their buffer referenced only by the
  // caller's argument and `refs` (two references). The site list is on the
  // stack up to 64 leaves, like the leaves themselves.
  std::vector<Array> run_donating(const detail::JitEntryBase& entry, std::span<const Array* const> refs) const {
    constexpr std::size_t kInline = 64;
    std::array<const char*, kInline> inline_sites;
    std::vector<const char*> heap_sites(refs.size() > kInline ? refs.size() : 0);
    const char** consumed = refs.size() > kInline ? heap_sites.data() : inline_sites.data();
    for (std::size_t i = 0; i < refs.size(); ++i) {
      const char* site = entry.donation_sites[i];
      consumed[i] = site && detail::ArrayAccess::storage_use_count(*refs[i]) == 2 ? site : nullptr;
    }
    return entry.plan->run(refs, std::span<const char* const>(consumed, refs.size()));
  }

  template <class... Args>
  const Plan& plan_for(const std::type_identity_t<Args>&... args) const {
    detail::JitCallGuard guard;  // not freed by a clear while compiling
    detail::LeafRefs leaves;
    const std::size_t hash = key_hash(leaves, args...);
    auto* entry = find(leaves, hash, args...);
    return *(entry ? entry : compile(hash, args...))->plan;
  }

  using SelfSkeleton = std::conditional_t<detail::tree_callable<F>, F, std::monostate>;
  template <class... Args>
  using Entry = detail::JitEntry<SelfSkeleton, detail::call_result_t<F, Args...>, Args...>;

  template <class... Args>
  std::size_t key_hash(detail::LeafRefs& leaves, const Args&... args) const {
    auto walk = [&](TreePath path, detail::LeafRefs& into) {
      detail::KeyHasher hasher;
      hasher.h = reinterpret_cast<std::size_t>(&detail::type_tag<std::tuple<F, Args...>>);
      hasher.leaves = &into;
      // Leaf paths as trace_call names them: "self...", then "[i]..." per argument.
      auto visit = [&](auto push, const auto& tree) {
        push();
        const bool r = detail::visit_tree(hasher, path, tree);
        path.pop();
        return r;
      };
      bool ok = true;
      if constexpr (detail::tree_callable<F>) ok = visit([&] { path.push_field("self"); }, f_);
      std::int64_t i = 0;
      ok = ok && (visit([&] { path.push_index(i++); }, args) && ...);
      return std::pair{hasher.h, hasher.leaked};
    };
    // Paths only name a bad leaf: walk without them, and again with them
    // (which throws) when there is one.
    const auto [hash, leaked] = walk(TreePath::untracked(), leaves);
    if (leaked) {
      detail::LeafRefs again;
      walk(TreePath{}, again);
    }
    return hash;
  }

  // The entry the last call used, if this call matches it (one walk).
  template <class... Args>
  const Entry<Args...>* match_last(detail::LeafRefs& leaves, const Args&... args) const {
    const detail::JitEntryBase* last = cache_->last.load(std::memory_order_acquire);
    if (!last || last->tag != &detail::type_tag<std::tuple<F, Args...>>) return nullptr;
    const auto& e = static_cast<const Entry<Args...>&>(*last);
    TreePath path = TreePath::untracked();
    detail::KeyMatcher matcher{{&e.present}, &leaves, &e.leaf_types};
    if constexpr (detail::tree_callable<F>)
      if (!detail::visit_tree(matcher, path, f_, e.self_skeleton)) return nullptr;
    const bool same = std::apply(
        [&](const auto&... skel) { return (detail::visit_tree(matcher, path, args, skel) && ...); }, e.arg_skeletons);
    return same && leaves.size() == e.leaf_types.size() ? &e : nullptr;
  }

  template <class... Args>
  const detail::JitEntryBase* find(detail::LeafRefs& leaves, std::size_t hash, const Args&... args) const {
    const void* tag = &detail::type_tag<std::tuple<F, Args...>>;
    auto hit = [&](const detail::JitEntryBase& e) {
      return e.tag == tag && e.hash == hash && matches(static_cast<const Entry<Args...>&>(e), leaves, args...);
    };
    if (const detail::JitEntryBase* last = cache_->last.load(std::memory_order_acquire); last && hit(*last)) return last;
    std::lock_guard<std::mutex> lock(cache_->mutex);
    for (const auto& e : cache_->entries)
      if (hit(*e)) {
        cache_->last.store(e.get(), std::memory_order_release);
        return e.get();
      }
    return nullptr;
  }

  template <class... Args>
  bool matches(const Entry<Args...>& e, detail::LeafRefs& leaves, const Args&... args) const {
    auto refs = leaves.span();
    if (refs.size() != e.leaf_types.size()) return false;
    for (std::size_t i = 0; i < refs.size(); ++i)
      if (refs[i]->dtype() != e.leaf_types[i].dtype || refs[i]->shape() != e.leaf_types[i].shape) return false;
    TreePath path = TreePath::untracked();  // a mismatch is a miss, never reported
    detail::KeyComparer cmp{&e.present};
    if constexpr (detail::tree_callable<F>)
      if (!detail::visit_tree(cmp, path, f_, e.self_skeleton)) return false;
    return std::apply([&](const auto&... skel) { return (detail::visit_tree(cmp, path, args, skel) && ...); },
                      e.arg_skeletons);
  }

  template <class... Args>
  const Entry<Args...>* compile(std::size_t hash, const Args&... args) const {
    using R = detail::call_result_t<F, Args...>;
    auto traced = detail::trace_call(f_, args...);
    cache_->traces.fetch_add(1);
    detail::SkeletonBuilder skel;
    std::vector<std::string> leaf_paths;  // for donation messages only
    std::vector<std::size_t> root_ends;
    if (options_.donate != Donate::none) skel.leaf_paths = &leaf_paths;
    TreePath path;
    auto rebuild = [&](const auto& tree) {
      auto skeleton = detail::rebuild_tree(skel, path, tree);
      root_ends.push_back(leaf_paths.size());
      return skeleton;
    };
    SelfSkeleton self = [&] {  // built in place: a custom node (eqx::Partial) need not be default-constructible
      if constexpr (detail::tree_callable<F>) return rebuild(f_);
      else return std::monostate{};
    }();
    std::tuple<Args...> arg_skeletons{rebuild(args)...};  // braced: in order
    auto entry = std::make_unique<Entry<Args...>>(TreeDef<R>(traced.output), std::move(self), std::move(arg_skeletons));
    entry->tag = &detail::type_tag<std::tuple<F, Args...>>;
    entry->hash = hash;
    entry->present = std::move(skel.present);
    entry->leaf_types = traced.graph.input_types();
    entry->plan = std::make_unique<Plan>(optimize(std::move(traced.graph)));
    if (options_.donate != Donate::none)
      entry->donation_sites = detail::donation_sites(detail::type_name<F>(), options_.donate,
                                                     detail::tree_callable<F>, leaf_paths, root_ends);
    const Entry<Args...>* result = entry.get();
    std::lock_guard<std::mutex> lock(cache_->mutex);
    cache_->entries.push_back(std::move(entry));
    return result;
  }

  F f_;
  JitOptions options_;
  std::shared_ptr<detail::JitCache> cache_;
};

/// Compiles f: Array leaves of the arguments are traced, every other leaf is
/// static (part of the cache key). Works for functions, lambdas (generic
/// ones too) and callable modules, returning any pytree. With `donate`, the
/// donated arguments' Arrays may hold the outputs after the call and must
/// not be read again (see eqx::Donate).
/// Usage: `auto step = eqx::filter_jit([](const Model& m, const eqx::Array& x) { return m(x); }); step(model, x);`
/// Usage: `auto step = eqx::filter_jit(train_step, {.donate = eqx::Donate::all_except_first});`
/// then `model = step(batch, model);`
template <class F>
Jitted<std::decay_t<F>> filter_jit(F&& f, JitOptions options = {}) {
  return Jitted<std::decay_t<F>>(std::forward<F>(f), options);
}

/// What eqx's caches hold now (eqx::cache_stats()).
struct CacheStats {
  std::size_t jit_functions = 0;    ///< live jitted functions (copies share one)
  std::size_t jit_entries = 0;      ///< their compiled specialisations
  std::size_t jit_bytes = 0;        ///< held by those plans: constants, one arena and scratch each
  std::size_t compiled_bodies = 0;  ///< compiled scan / cond / while_loop bodies cached for reuse
  std::size_t pool_bytes = 0;       ///< freed buffers the buffer pool keeps (large ones, and this thread's small ones)
  std::size_t gemm_choices = 0;     ///< GEMM shapes with a timed backend choice
};

/// Counts what eqx::clear_caches() would free.
/// Usage: `eqx::CacheStats s = eqx::cache_stats(); s.jit_entries, s.pool_bytes`
inline CacheStats cache_stats() {
  CacheStats s;
  for (const auto& cache : detail::JitRegistry::instance().live()) {
    ++s.jit_functions;
    s.jit_entries += cache->size();
    s.jit_bytes += cache->bytes();
  }
  s.compiled_bodies = detail::CompiledBodies::instance().size();
  s.pool_bytes = detail::BufferPool::instance().cached_bytes() + detail::BufferPool::instance().small_cached_bytes();
  s.gemm_choices = detail::GemmChoices::instance().size();
  return s;
}

/// Empties eqx's caches (Equinox's eqx.clear_caches): every live jitted
/// function's compiled entries (the next call traces again), compiled
/// control-flow bodies, GEMM backend choices (timed again on next use) and
/// the buffer pool's free blocks (every thread's: another thread drops its
/// small ones at its next allocation). Safe while other threads run jitted
/// calls: a running call finishes on the entry it found, and clear_caches
/// waits for it before freeing that entry. Throws eqx::ValueError when
/// called from inside a jitted call (while it traces or runs), which it
/// would otherwise wait for forever.
/// Usage: `eqx::clear_caches(); eqx::cache_stats().jit_entries == 0`
inline void clear_caches() {
  if (detail::jit_call_depth() > 0)
    throw ValueError("eqx::clear_caches: called from inside a jitted call (while the function was traced or ran, "
                     "e.g. from a debug::print sink); it would wait for that call to finish. Call it between calls");
  std::vector<std::unique_ptr<detail::JitEntryBase>> dropped;
  for (const auto& cache : detail::JitRegistry::instance().live()) cache->drop_entries(dropped);
  detail::wait_for_running_jit_calls();
  dropped.clear();
  detail::CompiledBodies::instance().clear();
  detail::GemmChoices::instance().clear();
  detail::BufferPool::instance().clear();
}

}  // namespace eqx
