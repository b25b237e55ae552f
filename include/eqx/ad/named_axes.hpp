#pragma once
// Named batch axes: what collectives (eqx::psum, pmean, pmax, all_gather,
// axis_index) refer to, as `axis_name` in JAX's vmap.
//
// filter_vmap(f, ..., axis_name) pushes its axis while it traces f, so a
// collective knows at trace time that its name is bound and how many
// examples the axis has; it then sets the axis as the one being batched
// while it evaluates the traced graph with batching rules, so a
// collective's rule knows whether to reduce over this batch axis (its own
// name) or to leave the equation for an enclosing vmap (another name).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eqx::detail {

/// A vmapped axis: its name (empty when the vmap has none) and its size.
struct NamedAxis {
  std::string name;
  std::int64_t size = 0;
};

/// This thread's vmaps whose function is being traced, innermost last.
inline std::vector<NamedAxis>& traced_axes() {
  thread_local std::vector<NamedAxis> axes;
  return axes;
}

/// The axis whose batching rules are running on this thread (nullptr: none).
inline const NamedAxis*& batching_axis() {
  thread_local const NamedAxis* axis = nullptr;
  return axis;
}

/// The innermost traced axis called `name`, or nullptr.
inline const NamedAxis* find_traced_axis(std::string_view name) {
  auto& axes = traced_axes();
  for (auto it = axes.rbegin(); it != axes.rend(); ++it)
    if (!name.empty() && it->name == name) return &*it;
  return nullptr;
}

/// Pushes a vmap's axis for the duration of tracing its function.
class TracedAxisScope {
 public:
  explicit TracedAxisScope(NamedAxis axis) { traced_axes().push_back(std::move(axis)); }
  ~TracedAxisScope() { traced_axes().pop_back(); }
  TracedAxisScope(const TracedAxisScope&) = delete;
  TracedAxisScope& operator=(const TracedAxisScope&) = delete;
};

/// Makes `axis` the one being batched for the duration of a batch_graph.
class BatchingAxisScope {
 public:
  explicit BatchingAxisScope(const NamedAxis* axis) : saved_(batching_axis()) { batching_axis() = axis; }
  ~BatchingAxisScope() { batching_axis() = saved_; }
  BatchingAxisScope(const BatchingAxisScope&) = delete;
  BatchingAxisScope& operator=(const BatchingAxisScope&) = delete;

 private:
  const NamedAxis* saved_;
};

}  // namespace eqx::detail
