#pragma once
// filter_vmap: the vectorising map of a function on pytrees (eqx.filter_vmap).
//
// The function is traced once on one example's types (each mapped leaf with
// its mapped axis removed); the graph is then evaluated on the whole batch
// with every primitive's batching rule (eqx/ad/batching.hpp), in the
// caller's context: eagerly, or inside an enclosing jit or grad. Array
// leaves are mapped along axis 0 unless `in_axes` says otherwise; every
// other leaf is passed to each example as it is.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/ad/batching.hpp"
#include "eqx/ad/named_axes.hpp"
#include "eqx/core/config.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

/// The axis spec "not mapped" (JAX's None): the leaf is the same for every example.
struct NoneAxis {};
inline constexpr NoneAxis none{};

/// The mapped axis of one leaf: an index (negative counts from the end) or `eqx::none`.
class Axis {
 public:
  constexpr Axis(int axis) : index_(axis) {}  // NOLINT: an axis is written as a plain int
  constexpr Axis(std::int64_t axis) : index_(axis) {}
  constexpr Axis(NoneAxis) : mapped_(false) {}
  constexpr bool mapped() const { return mapped_; }
  constexpr std::int64_t index() const { return index_; }

 private:
  std::int64_t index_ = 0;
  bool mapped_ = true;
};

/// How the Array leaves of one argument (or of the output) are mapped: one
/// Axis for every leaf, or a function of each leaf's path within the
/// argument and the leaf (Equinox's pytree-prefix specs).
/// Usage: `eqx::AxisSpec s = [](const eqx::TreePath& p, const eqx::Array&) -> eqx::Axis { return p.str() == ".bias" ? eqx::Axis(eqx::none) : 0; };`
class AxisSpec {
 public:
  AxisSpec(int axis) : axis_(axis) {}  // NOLINT
  AxisSpec(std::int64_t axis) : axis_(axis) {}
  AxisSpec(NoneAxis) : axis_(none) {}
  AxisSpec(Axis axis) : axis_(axis) {}
  template <class F>
    requires std::is_invocable_r_v<Axis, const F&, const TreePath&, const Array&>
  AxisSpec(F f) : axis_(0), per_leaf_(std::move(f)) {}

  Axis at(const TreePath& path, const Array& leaf) const { return per_leaf_ ? per_leaf_(path, leaf) : axis_; }

 private:
  Axis axis_;
  std::function<Axis(const TreePath&, const Array&)> per_leaf_;
};

/// One AxisSpec per argument. Usage: `eqx::in_axes(0, eqx::none)`
struct PerArgument {
  std::vector<AxisSpec> specs;
};
template <class... Specs>
PerArgument in_axes(Specs... specs) {
  return {{AxisSpec(std::move(specs))...}};
}

/// One AxisSpec per element of a tuple or pair result. Usage: `eqx::out_axes(0, eqx::none)`
struct PerOutput {
  std::vector<AxisSpec> specs;
};
template <class... Specs>
PerOutput out_axes(Specs... specs) {
  return {{AxisSpec(std::move(specs))...}};
}

/// filter_vmap's out_axes: one AxisSpec for every output leaf, or
/// `eqx::out_axes(...)` with one per element of a tuple or pair result.
class OutAxes {
 public:
  template <class S>
    requires std::is_constructible_v<AxisSpec, S>
  OutAxes(S spec) : all_(AxisSpec(std::move(spec))) {}  // NOLINT
  OutAxes(PerOutput per) : all_(0), per_(std::move(per.specs)), per_element_(true) {}  // NOLINT

  bool per_element() const { return per_element_; }
  const AxisSpec& all() const { return all_; }
  const AxisSpec& element(std::size_t i, std::size_t count) const {
    if (per_.size() != count)
      throw ValueError("eqx::filter_vmap: out_axes gives " + std::to_string(per_.size()) +
                       " specs but the function returns " + std::to_string(count) +
                       " elements; give eqx::out_axes(...) one spec per element of the returned tuple or pair");
    return per_[i];
  }

 private:
  AxisSpec all_;
  std::vector<AxisSpec> per_;
  bool per_element_ = false;
};

/// filter_vmap's in_axes: one AxisSpec for every argument, or `eqx::in_axes(...)`.
class InAxes {
 public:
  template <class S>
    requires std::is_constructible_v<AxisSpec, S>
  InAxes(S spec) : all_(AxisSpec(std::move(spec))) {}  // NOLINT
  InAxes(PerArgument per) : all_(0), per_(std::move(per.specs)), per_argument_(true) {}  // NOLINT

  const AxisSpec& argument(std::size_t i, std::size_t count) const;

 private:
  AxisSpec all_;
  std::vector<AxisSpec> per_;
  bool per_argument_ = false;
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE const AxisSpec& InAxes::argument(std::size_t i, std::size_t count) const {
  if (!per_argument_) return all_;
  if (per_.size() != count)
    throw ValueError("eqx::filter_vmap: in_axes gives " + std::to_string(per_.size()) +
                     " specs but the function is called with " + std::to_string(count) +
                     " arguments; give eqx::in_axes(...) one spec per argument");
  return per_[i];
}
#endif  // EQX_KERNELS_HERE(GRAPH)

namespace detail {

/// "[1].weight": a leaf's path within argument `arg`, for messages.
EQX_KERNEL_INLINE std::string argument_path(std::size_t arg, const TreePath& path);

/// `axis` resolved against `rank` (negative counts from the end), or a
/// message naming `where` and the valid range.
EQX_KERNEL_INLINE std::int64_t resolve_axis(std::int64_t axis, std::size_t rank, const char* spec,
                                            const std::string& where, const std::string& type);

/// Collects the Array leaves of one argument with their mapped axes and
/// per-example types, and checks every mapped axis has the batch size.
struct MappedLeafCollector : ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const AxisSpec* spec;
  std::size_t arg;
  std::vector<Array>* leaves;
  std::vector<std::int64_t>* dims;
  std::vector<AbstractArray>* types;
  std::optional<std::int64_t>* size;
  std::string* size_source;

  bool array(const TreePath& path, const Array& a);
};


/// Moves each output leaf's batch axis to where out_axes asks (broadcasting
/// outputs that do not depend on the example), in output leaf order.
struct OutputAxisMover : ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const AxisSpec* spec;
  Batched* batched;
  std::int64_t size;
  std::size_t next = 0;

  bool array(const TreePath& path, const Array& example);
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::string argument_path(std::size_t arg, const TreePath& path) {
  return "[" + std::to_string(arg) + "]" + path.str();
}

EQX_KERNEL_INLINE std::int64_t resolve_axis(std::int64_t axis, std::size_t rank, const char* spec,
                                            const std::string& where, const std::string& type) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r)
    throw ValueError("eqx::filter_vmap: " + std::string(spec) + " gives axis " + std::to_string(axis) + " for " +
                     where + ", " + type + ", which has " + std::to_string(rank) + " axes to map over; give an axis in [" +
                     std::to_string(-r) + ", " + std::to_string(r) + ") or eqx::none");
  return axis < 0 ? axis + r : axis;
}

EQX_KERNEL_INLINE bool MappedLeafCollector::array(const TreePath& path, const Array& a) {
  if (!a.has_value()) return true;
  leaves->push_back(a);
  const Axis axis = spec->at(path, a);
  AbstractArray t{a.shape(), a.dtype()};
  if (!axis.mapped()) {
    dims->push_back(not_mapped);
    types->push_back(std::move(t));
    return true;
  }
  const std::string where = "the Array at " + argument_path(arg, path);
  const std::int64_t d = resolve_axis(axis.index(), a.ndim(), "in_axes", where, t.str());
  const std::int64_t n = a.shape()[static_cast<std::size_t>(d)];
  if (!size->has_value()) {
    *size = n;
    *size_source = argument_path(arg, path) + " has " + std::to_string(n) + " along axis " + std::to_string(d);
  } else if (**size != n) {
    throw ShapeError("eqx::filter_vmap: mapped axes have different sizes: " + *size_source + " but " +
                     argument_path(arg, path) + " " + t.str() + " has " + std::to_string(n) + " along axis " +
                     std::to_string(d) + "; every mapped axis must have the batch size (or map that leaf with eqx::none)");
  }
  dims->push_back(d);
  t.shape.erase(static_cast<std::size_t>(d));
  types->push_back(std::move(t));
  return true;
}

EQX_KERNEL_INLINE bool OutputAxisMover::array(const TreePath& path, const Array& example) {
  if (!example.has_value()) return true;
  Array& value = batched->values[next];
  const std::int64_t dim = batched->dims[next++];
  const Axis axis = spec->at(path, example);
  const std::string where = "the output at " + path.display();
  if (!axis.mapped()) {
    if (dim != not_mapped)
      throw ValueError("eqx::filter_vmap: out_axes is eqx::none for " + where +
                       " but it differs between examples; map it (an out_axes index) or compute it outside the "
                       "vmapped function");
    return true;
  }
  const std::int64_t to = resolve_axis(axis.index(), example.ndim() + 1, "out_axes", where,
                                       AbstractArray{example.shape(), example.dtype()}.str() + " per example");
  value = rule_ops().moveaxis(rule_ops().batch_first(value, dim, size), 0, to);
  return true;
}
#endif  // EQX_KERNELS_HERE(GRAPH)

/// Moves the batch axes of a result's leaves where `out` says: one spec for
/// the whole result, or one per element of a tuple or pair.
template <class R>
void move_output_axes(const OutAxes& out, Batched& batched, std::int64_t size, const R& example) {
  if (!out.per_element()) {
    OutputAxisMover mover{{}, &out.all(), &batched, size};
    TreePath path;
    visit_tree(mover, path, example);
    return;
  }
  if constexpr (requires { std::tuple_size<R>::value; }) {
    constexpr std::size_t count = std::tuple_size_v<R>;
    OutputAxisMover mover{{}, nullptr, &batched, size};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (
          [&] {
            mover.spec = &out.element(I, count);
            TreePath path;
            path.push_index(static_cast<std::int64_t>(I));
            visit_tree(mover, path, std::get<I>(example));
          }(),
          ...);
    }(std::make_index_sequence<count>{});
  } else {
    throw ValueError("eqx::filter_vmap: eqx::out_axes(...) gives one spec per element of a tuple or pair result, "
                     "but the function returns a single value; pass one spec (an int or eqx::none) instead");
  }
}

template <class F>
class Vmap {
 public:
  Vmap(F f, InAxes in, OutAxes out, std::optional<std::int64_t> size, std::string axis_name)
      : f_(std::move(f)), in_(std::move(in)), out_(std::move(out)), size_(size), axis_name_(std::move(axis_name)) {}

  template <class... Args>
  auto operator()(const Args&... args) const {
    std::vector<Array> leaves;
    std::vector<std::int64_t> dims;
    std::vector<AbstractArray> types;
    if constexpr (tree_callable<F>) {
      for (Array& a : tree_leaves(f_)) {  // the function's own Arrays are shared by every example
        types.push_back({a.shape(), a.dtype()});
        leaves.push_back(std::move(a));
        dims.push_back(not_mapped);
      }
    }
    std::optional<std::int64_t> size;
    std::string size_source;
    std::size_t arg = 0;
    (
        [&] {
          MappedLeafCollector collect{{}, &in_.argument(arg, sizeof...(Args)), arg, &leaves, &dims, &types, &size, &size_source};
          TreePath path;
          visit_tree(collect, path, args);
          ++arg;
        }(),
        ...);
    if (size_ && size && *size_ != *size)
      throw ShapeError("eqx::filter_vmap: axis_size is " + std::to_string(*size_) + " but " + size_source +
                       "; they must agree");
    if (!size && !size_)
      throw ValueError("eqx::filter_vmap: no Array is mapped (every in_axes entry is eqx::none), so the batch size "
                       "is unknown; pass axis_size");
    const std::int64_t n = size ? *size : *size_;

    NamedAxis axis{axis_name_, n};
    auto traced = [&] {
      TracedAxisScope named(axis);  // collectives in f may refer to this axis
      return trace_call_as<F, Args...>(types, f_, args...);
    }();
    using R = decltype(traced.output);
    Batched out = [&] {
      BatchingAxisScope batching(&axis);
      return batch_graph(traced.graph, leaves, dims);
    }();
    move_output_axes(out_, out, n, traced.output);
    return TreeDef<R>(traced.output).unflatten(out.values);
  }

 private:
  F f_;
  InAxes in_;
  OutAxes out_;
  std::optional<std::int64_t> size_;
  std::string axis_name_;
};

}  // namespace detail

/// Vectorises f over a batch: `filter_vmap(f)(xs...)` is f applied to each
/// example, with the results stacked. Array leaves of the arguments are
/// mapped along `in_axes` (default: axis 0 of every Array); other leaves,
/// and the Arrays of f itself when it is a module, are shared by every
/// example. Output Arrays get their batch axis at `out_axes` (default 0;
/// `eqx::out_axes(...)` gives one spec per element of a tuple or pair
/// result); `axis_size` gives the batch size when no input is mapped;
/// `axis_name` names the batch axis for collectives (eqx::pmean(x, name)).
/// Usage: `auto ys = eqx::filter_vmap(model)(xs);`
///        `auto g = eqx::filter_vmap(eqx::filter_grad(loss), eqx::in_axes(eqx::none, 0, 0))(model, xs, ys);`
///        `auto [ys, state2] = eqx::filter_vmap(bn, eqx::in_axes(0, eqx::none), eqx::out_axes(0, eqx::none),
///                                              std::nullopt, "batch")(xs, state);`
template <class F>
auto filter_vmap(F f, InAxes in_axes = 0, OutAxes out_axes = 0, std::optional<std::int64_t> axis_size = std::nullopt,
                 std::string axis_name = {}) {
  return detail::Vmap<F>(std::move(f), std::move(in_axes), std::move(out_axes), axis_size, std::move(axis_name));
}

}  // namespace eqx
