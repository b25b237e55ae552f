#pragma once
// Debugging aids for transformations: assert_max_traces / get_num_traces.

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/error.hpp"
#include "eqx/prim/primitive.hpp"
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
}  // namespace eqx
