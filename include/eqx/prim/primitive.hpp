#pragma once
// Primitive and bind: the one path every Array operation goes through.
//
// A primitive is a type that keeps everything about one operation together:
// its name, its shape/dtype rule and its kernel on raw buffers (later issues
// add its JVP, VJP and batching rules beside them). Public operations call
// `bind(primitive, inputs, params)`; bind runs the primitive in the current
// interpreter: the innermost active trace of this thread's interpreter stack
// (eqx/ir/trace.hpp) records it as an equation, and with no trace active the
// eager interpreter runs it now: check, allocate the outputs from the shape
// rule, run the kernel.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/shape.hpp"

namespace eqx {

struct Graph;  // eqx/ir/graph.hpp: a parameter of control-flow and fused primitives

/// The type of an Array without its values: what shape rules compute.
struct AbstractArray {
  Shape shape;
  DType dtype = DType::float32;
  friend bool operator==(const AbstractArray&, const AbstractArray&) = default;
  /// "f32[2,3]"
  std::string str() const { return std::string(short_name(dtype)) + shape.str(); }
};

/// A graph held by an equation (a fused region's body, a loop body). Shared
/// and immutable; compared by identity.
using GraphRef = std::shared_ptr<const Graph>;

/// One parameter value of an equation (an axis list, a dtype, a flag, ...).
using ParamValue = std::variant<std::int64_t, double, bool, DType, std::vector<std::int64_t>, std::string, GraphRef>;

/// Named parameters of a primitive application, in the order they were set.
/// Names are string literals owned by the primitive's code.
/// Usage: `Params{}.set("axes", std::vector<std::int64_t>{0, 1})`
class Params {
 public:
  Params& set(std::string_view name, ParamValue value) {
    items_.emplace_back(name, std::move(value));
    return *this;
  }
  template <class T>
  const T& get(std::string_view name) const {
    for (const auto& [n, v] : items_)
      if (n == name) return std::get<T>(v);
    throw ValueError("eqx: internal error: missing parameter '" + std::string(name) + "'");
  }
  const std::vector<std::pair<std::string_view, ParamValue>>& items() const { return items_; }
  friend bool operator==(const Params&, const Params&) = default;

 private:
  std::vector<std::pair<std::string_view, ParamValue>> items_;
};

namespace detail {

/// A typed window on a buffer, given to kernels: data pointer, shape, dtype.
struct View {
  void* data;
  const Shape* shape;
  DType dtype;

  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  std::int64_t numel() const { return shape->numel(); }
};

}  // namespace detail

/// An elementwise kernel on `n` contiguous elements of every operand (no
/// broadcasting, no threads): what fused regions call on each tile.
using TileKernel = void (*)(const void* const* in, void* out, std::int64_t n);

/// Base of every primitive. Each primitive is one struct deriving from this
/// that holds all of its rules; it is stateless and used through a single
/// `inline const` instance.
class Primitive {
 public:
  virtual ~Primitive() = default;
  /// Name printed in graphs and error messages, e.g. "add".
  virtual std::string_view name() const = 0;
  /// Output shapes and dtypes for these inputs; throws on invalid inputs.
  virtual std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& params) const = 0;
  /// Computes the outputs into preallocated, contiguous row-major buffers
  /// whose shapes are what shape_rule returned.
  virtual void kernel(std::span<const detail::View> in, std::span<const detail::View> out,
                      const Params& params) const = 0;
  /// True for elementwise primitives (one output; each output element
  /// depends only on the input elements at the same, broadcast, position).
  /// The fusion pass merges chains of them into one tiled loop.
  virtual bool elementwise() const { return false; }
  /// For elementwise primitives: the tile kernel for these input types, or
  /// nullptr (then fused regions call `kernel` on each tile instead).
  virtual TileKernel tile_kernel(std::span<const AbstractArray> in, const Params& params) const {
    (void)in;
    (void)params;
    return nullptr;
  }
};

namespace detail {

/// Where bind sends a primitive application while a trace is active.
class Interpreter {
 public:
  virtual ~Interpreter() = default;
  virtual std::vector<Array> process(const Primitive& prim, std::span<const Array> inputs, const Params& params) = 0;
};

/// This thread's interpreter stack, innermost last. Empty means eager.
inline std::vector<Interpreter*>& interpreter_stack() {
  thread_local std::vector<Interpreter*> stack;
  return stack;
}

[[noreturn]] inline void throw_leaked_tracer(const Primitive& prim, std::size_t input) {
  throw TraceError("eqx::" + std::string(prim.name()) + ": input " + std::to_string(input) +
                   " is an abstract Array from a trace that has already finished (a leaked tracer). An Array "
                   "created inside eqx::filter_jit or another transformation must not be kept after it returns "
                   "(in a global, a captured reference or a static field); return it as an output instead");
}

inline std::string input_error_prefix(const Primitive& p) { return "eqx::" + std::string(p.name()) + ": "; }

/// Eager interpreter: shape rule, allocate, kernel.
inline std::vector<Array> eval_eager(const Primitive& prim, std::span<const Array> inputs, const Params& params) {
  std::vector<AbstractArray> in_avals;
  in_avals.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].has_value())
      throw ValueError(input_error_prefix(prim) + "input " + std::to_string(i) +
                       " is an empty Array (None); a filtered-out leaf cannot be used in an operation");
    if (inputs[i].is_abstract()) throw_leaked_tracer(prim, i);
    in_avals.push_back({inputs[i].shape(), inputs[i].dtype()});
  }
  std::vector<AbstractArray> out_avals = prim.shape_rule(in_avals, params);
  std::vector<Array> outputs;
  outputs.reserve(out_avals.size());
  for (auto& aval : out_avals) outputs.push_back(ArrayAccess::allocate(std::move(aval.shape), aval.dtype));

  std::vector<View> in_views, out_views;
  in_views.reserve(inputs.size());
  out_views.reserve(outputs.size());
  for (const Array& a : inputs)
    in_views.push_back({const_cast<void*>(a.raw_data()), &a.shape(), a.dtype()});
  for (const Array& a : outputs) out_views.push_back({ArrayAccess::mutable_data(a), &a.shape(), a.dtype()});
  prim.kernel(in_views, out_views, params);
  return outputs;
}

}  // namespace detail

/// Applies a primitive to inputs in the current interpreter and returns its
/// outputs. Every Array operation is a call to bind.
/// Usage: `std::vector<eqx::Array> in{x, y}; auto outs = eqx::bind(eqx::prim::add, in);`
inline std::vector<Array> bind(const Primitive& prim, std::span<const Array> inputs, const Params& params = {}) {
  auto& stack = detail::interpreter_stack();
  if (!stack.empty()) return stack.back()->process(prim, inputs, params);
  return detail::eval_eager(prim, inputs, params);
}

/// bind for single-output primitives. Usage: `eqx::Array z = eqx::bind1(eqx::prim::add, {x, y});`
inline Array bind1(const Primitive& prim, std::initializer_list<Array> inputs, const Params& params = {}) {
  return std::move(bind(prim, std::span<const Array>(inputs.begin(), inputs.size()), params)[0]);
}

}  // namespace eqx
