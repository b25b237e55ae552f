#pragma once
// Debugging aids for transformations: assert_max_traces / get_num_traces,
// debug::print, which prints values while compiled code runs, and
// store_dce / inspect_dce, which show what compilation removed as dead code.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string_view>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/args.h>
#include <fmt/format.h>

#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/format.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/callback.hpp"
#include "eqx/transform/eval_shape.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/pformat.hpp"
#include "eqx/tree/reflect.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

template <class F>
class Jitted;

namespace debug {

namespace detail {

/// "what each leaf was" for one trace: path -> "f32[3]", "None" or a static value.
using Signature = std::vector<std::pair<std::string, std::string>>;

template <class X>
std::string describe_static(const X& x) {
  if constexpr (std::is_enum_v<X>) return fmt::format("{}", static_cast<std::underlying_type_t<X>>(x));
  else if constexpr (std::is_pointer_v<X> || std::is_member_pointer_v<X>)
    return fmt::format("{}", fmt::ptr(reinterpret_cast<const void*>(x)));
  else if constexpr (fmt::is_formattable<X>::value) return fmt::format("{}", x);
  else return "a " + std::string(eqx::detail::type_name<X>()) + " value";
}

struct SignatureRecorder : eqx::detail::ArrayLeafVisitor {
  Signature sig;
  bool array(const TreePath& p, const Array& a) {
    sig.emplace_back(p.display(), a.has_value() ? std::string(short_name(a.dtype())) + a.shape().str() : "None");
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath& p, const X& x) {
    sig.emplace_back(p.display(), describe_static(x));
    return true;
  }
};

/// What changed between two signatures, e.g. "[0].weight: f32[3] -> f32[4]".
inline std::string diff(const Signature& before, const Signature& after) {
  std::vector<std::string> changes;
  for (const auto& [path, now] : after) {
    const std::string* was = nullptr;
    for (const auto& [p, d] : before)
      if (p == path) was = &d;
    if (!was) changes.push_back(path + ": new leaf " + now);
    else if (*was != now) changes.push_back(path + ": " + *was + " -> " + now);
  }
  for (const auto& [path, was] : before) {
    bool kept = false;
    for (const auto& [p, d] : after) kept = kept || p == path;
    if (!kept) changes.push_back(path + ": leaf " + was + " removed");
  }
  if (changes.empty()) return "nothing in the arguments changed (the function object, or a copy of the jitted callable with its own cache, was traced again)";
  std::string out;
  for (const auto& c : changes) out += (out.empty() ? "" : "; ") + c;
  return out;
}

struct TraceCounter {
  std::mutex mutex;
  std::size_t traces = 0;
  Signature last;
};

}  // namespace detail

/// The wrapper returned by assert_max_traces: calls f, counting the calls
/// made while tracing. Copies share the count.
template <class F>
class MaxTraces {
 public:
  MaxTraces(F f, std::size_t max_traces, std::string name)
      : f_(std::move(f)), max_(max_traces), name_(std::move(name)), counter_(std::make_shared<detail::TraceCounter>()) {}

  template <class... Args>
  decltype(auto) operator()(const Args&... args) const {
    if (!eqx::detail::interpreter_stack().empty()) record(args...);
    return std::invoke(f_, args...);
  }

  std::size_t num_traces() const {
    std::lock_guard<std::mutex> lock(counter_->mutex);
    return counter_->traces;
  }

 private:
  template <class... Args>
  void record(const Args&... args) const {
    detail::SignatureRecorder rec;
    TreePath path;
    std::int64_t i = 0;
    ((path.push_index(i++), eqx::detail::visit_tree(rec, path, args), path.pop()), ...);
    std::lock_guard<std::mutex> lock(counter_->mutex);
    if (++counter_->traces > max_) {
      std::string changed = detail::diff(counter_->last, rec.sig);
      counter_->last = std::move(rec.sig);
      throw TraceError("eqx::debug::assert_max_traces: '" + name_ + "' was traced " +
                       std::to_string(counter_->traces) + " times, more than the " + std::to_string(max_) +
                       " allowed. Changed since the previous trace: " + changed +
                       ". Each new shape, dtype or static value compiles the function again; pass values that change "
                       "as Arrays, or keep shapes fixed");
    }
    counter_->last = std::move(rec.sig);
  }

  F f_;
  std::size_t max_;
  std::string name_;
  std::shared_ptr<detail::TraceCounter> counter_;
};

/// Wraps f so that tracing it more than `max_traces` times throws
/// eqx::TraceError naming what changed in the arguments (Equinox's
/// eqx.debug.assert_max_traces). Eager calls are not traces and not counted.
/// Usage: `auto step = eqx::filter_jit(eqx::debug::assert_max_traces(loss, 1, "loss"));`
template <class F>
MaxTraces<std::decay_t<F>> assert_max_traces(F&& f, std::size_t max_traces, std::string name = {}) {
  if (name.empty()) name = std::string(eqx::detail::type_name<std::decay_t<F>>());
  return MaxTraces<std::decay_t<F>>(std::forward<F>(f), max_traces, std::move(name));
}

/// How many times f (wrapped by assert_max_traces, or jitted) has been traced.
template <class F>
std::size_t get_num_traces(const MaxTraces<F>& f) {
  return f.num_traces();
}
template <class F>
std::size_t get_num_traces(const Jitted<F>& f) {
  return f.num_traces();
}

}  // namespace debug
namespace debug {

/// Where debug::print writes each message (with a newline): stdout unless
/// set, e.g. to capture output in a test.
/// Usage: `eqx::debug::print_sink() = [&](std::string_view s) { log += s; };`
inline std::function<void(std::string_view)>& print_sink() {
  static std::function<void(std::string_view)> sink = [](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  };
  return sink;
}

namespace detail {

/// debug_print[format](x...): formats the values with fmt and writes them
/// to print_sink(). No outputs; effectful, so passes keep it.
struct DebugPrintPrim final : Primitive {
  std::string_view name() const override { return "debug_print"; }
  bool effectful() const override { return true; }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray>, const Params&) const override { return {}; }
  void kernel(std::span<const eqx::detail::View> in, std::span<const eqx::detail::View>,
              const Params& p) const override;
  std::vector<Array> jvp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params&) const override {
    return {};
  }
  std::vector<Array> vjp(const RuleOps&, std::span<const Array> x, std::span<const Array>, std::span<const Array>,
                         const Params&) const override {
    return std::vector<Array>(x.size());
  }
  // Inside filter_vmap the whole batch is printed at once (as JAX does).
  Batched batch(const RuleOps&, std::span<const Array> x, eqx::detail::BatchDims, const Params& p) const override {
    return {eqx::bind(*this, x, p), {}};
  }
};

inline const DebugPrintPrim debug_print;

#if EQX_KERNELS_HERE(CONTROL_FLOW)
EQX_KERNEL_INLINE void DebugPrintPrim::kernel(std::span<const eqx::detail::View> in, std::span<const eqx::detail::View>,
                                              const Params& p) const {
  fmt::dynamic_format_arg_store<fmt::format_context> args;
  for (const eqx::detail::View& v : in) {
    Array a = eqx::detail::ArrayAccess::allocate(*v.shape, v.dtype);
    eqx::detail::copy_bytes(eqx::detail::ArrayAccess::mutable_data(a), v.data, v.bytes());
    args.push_back(std::move(a));
  }
  const std::string& format = p.get<std::string>("format");
  std::string text;
  try {
    text = fmt::vformat(format, args);
  } catch (const fmt::format_error& e) {
    throw ValueError("eqx::debug::print: the format string \"" + format + "\" does not fit its " +
                     std::to_string(in.size()) + " Arrays: " + e.what());
  }
  print_sink()(text + "\n");
}
#endif

}  // namespace detail

/// Prints `format` (fmt syntax, one {} per Array) with the values of
/// `arrays` when the computation runs: eagerly at once, and from inside
/// filter_jit, scan or cond each time the compiled code runs (not when it
/// is traced). Output goes to print_sink(), stdout by default.
/// Usage: `eqx::debug::print("step loss {} grad norm {}", loss, norm);`
template <class... Arrays>
void print(std::string format, const Arrays&... arrays) {
  static_assert((std::is_same_v<Arrays, Array> && ...), "eqx::debug::print: pass Arrays after the format string");
  std::vector<Array> in{arrays...};
  eqx::bind(detail::debug_print, in, Params{}.set("format", std::move(format)));
}

namespace detail {

/// One traced call of store_dce: which of its Array leaves ran, and how to
/// print its tree.
struct DceEntry {
  std::mutex mutex;
  std::vector<char> ran;  // by leaf
  std::function<std::string(const PformatOptions&)> pformat;
};

/// The entries of every store_dce name, in the order they were traced.
struct DceStore {
  std::mutex mutex;
  std::map<std::string, std::vector<std::shared_ptr<DceEntry>>> entries;
};
inline DceStore& dce_store() {
  static DceStore store;
  return store;
}

}  // namespace detail

/// `x` unchanged, recording, for inspect_dce, which of its Array leaves
/// survive compilation. Use it inside filter_jit: each Array leaf passes
/// through a pure callback (eqx::filter_pure_callback) that records the leaf
/// when the compiled code runs it; one that dead-code elimination removed
/// never runs, and inspect_dce shows it as <DCE'd>. So inspect after calling
/// the compiled function. Like any pure callback it is not differentiable.
/// Usage: `auto [a, b] = eqx::debug::store_dce(std::pair{x * 2, x + 1}, "pair");`
template <class T>
T store_dce(const T& x, const std::string& name = "") {
  if (eqx::detail::interpreter_stack().empty())
    throw TraceError("eqx::debug::store_dce('" + name + "'): called outside any trace; use it inside the function "
                     "given to eqx::filter_jit (only compiled code has dead code removed)");
  std::vector<Array> leaves = tree_leaves(x);
  auto entry = std::make_shared<detail::DceEntry>();
  entry->ran.assign(leaves.size(), 0);
  entry->pformat = [skeleton = filter_eval_shape([](const T& t) { return t; }, x)](const PformatOptions& o) {
    return tree_pformat(skeleton, o);
  };
  {
    detail::DceStore& store = detail::dce_store();
    std::lock_guard<std::mutex> lock(store.mutex);
    store.entries[name].push_back(entry);
  }
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    auto record = [entry, i](const Array& a) {
      std::lock_guard<std::mutex> lock(entry->mutex);
      entry->ran[i] = 1;
      return a;
    };
    leaves[i] = filter_pure_callback(CallbackVmap::vectorized, record,
                                     shape_dtype_struct(leaves[i].shape(), leaves[i].dtype()), leaves[i]);
  }
  return TreeDef<T>(x).unflatten(leaves);
}

/// What store_dce calls named `name` recorded: each traced call's tree,
/// with the shape and dtype of each Array leaf the compiled code ran and
/// `<DCE'd>` for each it removed (Equinox's format). Call it outside any
/// trace, after running the compiled function.
/// Usage: `fmt::print("{}", eqx::debug::inspect_dce("pair"));` prints
/// "Found 1 call to eqx::debug::store_dce.\nEntry 0:\n(f32[3], <DCE'd>)\n"
inline std::string inspect_dce(const std::string& name = "") {
  if (!eqx::detail::interpreter_stack().empty())
    throw TraceError("eqx::debug::inspect_dce('" + name + "'): called inside a trace; call it outside, after "
                     "running the compiled function");
  std::vector<std::shared_ptr<detail::DceEntry>> entries;
  {
    detail::DceStore& store = detail::dce_store();
    std::lock_guard<std::mutex> lock(store.mutex);
    if (auto it = store.entries.find(name); it != store.entries.end()) entries = it->second;
  }
  std::string out = fmt::format("Found {} call{} to eqx::debug::store_dce.\n", entries.size(),
                                entries.size() == 1 ? "" : "s");
  for (std::size_t e = 0; e < entries.size(); ++e) {
    std::vector<char> ran;
    {
      std::lock_guard<std::mutex> lock(entries[e]->mutex);
      ran = entries[e]->ran;
    }
    std::size_t leaf = 0;
    PformatOptions o;
    o.array_text = [&](const Array& a) -> std::string {
      if (!a.has_value()) return "None";
      return ran[leaf++] ? type_string(a) : "<DCE'd>";
    };
    out += fmt::format("Entry {}:\n{}\n", e, entries[e]->pformat(o));
  }
  return out;
}

}  // namespace debug

}  // namespace eqx
