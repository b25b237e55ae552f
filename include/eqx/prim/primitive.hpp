#pragma once
// Primitive and bind: the one path every Array operation goes through.
//
// A primitive is a type that keeps everything about one operation together:
// its name, its shape/dtype rule, its kernel on raw buffers, and its JVP,
// VJP and batching rules. Public operations call
// `bind(primitive, inputs, params)`; bind runs the primitive in the current
// interpreter: the innermost active trace of this thread's interpreter stack
// (eqx/ir/trace.hpp) records it as an equation, and with no trace active the
// eager interpreter runs it now: check, allocate the outputs from the shape
// rule, run the kernel.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/shape.hpp"

namespace eqx {

struct Graph;  // eqx/ir/graph.hpp: a parameter of control-flow and fused primitives
struct RuleOps;  // below: what differentiation and batching rules are written with

/// The batch axis of a value that is not batched: the same for every example.
inline constexpr std::int64_t not_mapped = -1;

/// What a batching rule returns: the outputs, and the axis each is batched
/// along (`not_mapped` if it is the same for every example).
struct Batched {
  std::vector<Array> values;
  std::vector<std::int64_t> dims;
};

/// The type of an Array without its values: what shape rules compute.
struct AbstractArray {
  Shape shape;
  DType dtype = DType::float32;
  friend bool operator==(const AbstractArray&, const AbstractArray&) = default;
  /// "f32[2,3]"
  std::string str() const;
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::string AbstractArray::str() const { return std::string(short_name(dtype)) + shape.str(); }
#endif  // EQX_KERNELS_HERE(GRAPH)

/// A graph held by an equation (a fused region's body, a loop body). Shared
/// and immutable; compared by identity.
using GraphRef = std::shared_ptr<const Graph>;

/// A host object an equation holds (filter_pure_callback's function):
/// opaque to passes, shared and immutable; compared by identity.
struct OpaqueParam {
  virtual ~OpaqueParam() = default;
  /// How graphs print it.
  virtual std::string str() const = 0;
};
using OpaqueRef = std::shared_ptr<const OpaqueParam>;

/// One parameter value of an equation (an axis list, a dtype, a flag, ...).
using ParamValue =
    std::variant<std::int64_t, double, bool, DType, std::vector<std::int64_t>, std::string, GraphRef, std::vector<GraphRef>,
                 std::vector<std::string>, OpaqueRef>;

/// Every parameter name eqx's primitives use, one place. Params are a bag
/// of (name, value) rather than a typed struct per primitive because every
/// pass treats them alike: printing a graph, hashing and comparing
/// equations for CSE and the jit cache, rewriting axes for vmap. A name
/// outside this list does not compile (ParamName), so a misspelling is
/// caught where it is written. Its run-time cost is in eager calls only (a
/// compiled Plan keeps each equation's Params): building and reading an
/// axis list took 33 ns of a 166 ns eager reduction of 16 floats
/// (benchmarks/dispatch_bench.cpp, BM_ParamsOfReduceSum vs
/// BM_EagerReduceSum), mostly its two allocations, one of which (the axis
/// vector) a typed struct would make too.
inline constexpr std::string_view kParamNames[] = {
    "axes", "axis", "axis_name", "axis_size", "body_jaxpr", "body_nconsts", "branches", "broadcast_dimensions",
    "bwd_jaxpr", "callback", "cond_jaxpr", "cond_nconsts", "dimension", "dimensions", "dtype",
    "feature_group_count", "format", "fwd_jaxpr", "graph", "high", "index_dtype", "interior", "jaxpr",
    "jvp_jaxpr", "length", "lhs_batch_dimensions", "lhs_contracting_dimensions", "lhs_dilation", "limit_indices",
    "low", "msgs", "new_dtype", "new_sizes", "num_carry", "num_consts", "num_vjp_leaves", "padding",
    "permutation", "reverse", "rhs_batch_dimensions", "rhs_contracting_dimensions", "rhs_dilation", "shape",
    "start_indices", "strides", "window_dilation", "window_dimensions", "window_strides"};

/// A parameter's name: a string literal from kParamNames, checked when the
/// program compiles. A primitive of a program's own can use other names
/// with ParamName::unchecked("name").
class ParamName {
 public:
  consteval ParamName(const char* name) : name_(name) {  // NOLINT: implicit, from a literal
    bool known = false;
    for (std::string_view n : kParamNames) known = known || n == name_;
    if (!known) throw "eqx: unknown parameter name; use one of kParamNames (eqx/prim/primitive.hpp)";
  }
  /// A name outside kParamNames (a program's own primitive); it must outlive the Params.
  static ParamName unchecked(std::string_view name) { return ParamName(name, 0); }
  constexpr operator std::string_view() const { return name_; }  // NOLINT: implicit by design

 private:
  constexpr ParamName(std::string_view name, int) : name_(name) {}
  std::string_view name_;
};

/// Named parameters of a primitive application, in the order they were set.
/// Usage: `Params{}.set("axes", std::vector<std::int64_t>{0, 1})`
class Params {
 public:
  /// Sets a parameter (replacing its value, in place, if it is already set).
  Params& set(ParamName name, ParamValue value) {
    const std::string_view key = name;
    for (auto& [n, v] : items_)
      if (n == key) {
        v = std::move(value);
        return *this;
      }
    items_.emplace_back(key, std::move(value));
    return *this;
  }
  template <class T>
  const T& get(ParamName name) const {
    const std::string_view key = name;
    for (const auto& [n, v] : items_)
      if (n == key) return std::get<T>(v);
    throw ValueError("eqx: internal error: missing parameter '" + std::string(key) + "'");
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
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * itemsize(dtype); }
};

/// memcpy that accepts empty buffers (whose pointers may be null, which
/// memcpy itself does not allow). Usage: `copy_bytes(out[0].data, in[0].data, in[0].bytes());`
inline void copy_bytes(void* to, const void* from, std::size_t n) {
  if (n) std::memcpy(to, from, n);
}

}  // namespace detail

/// An elementwise kernel on `n` contiguous elements of every operand (no
/// broadcasting, no threads): what fused regions call on each tile.
using TileKernel = void (*)(const void* const* in, void* out, std::int64_t n);
/// The same for an elementwise primitive with several outputs.
using MultiTileKernel = void (*)(const void* const* in, void* const* out, std::int64_t n);

/// A primitive's kernel for one equation, its params fixed: what a Plan runs
/// instead of Primitive::kernel for primitives that gain from work done once
/// per equation, when the Plan is built (a fused region's tile program, a
/// loop's compiled body). Each call gets `scratch_bytes()` of 64-byte
/// aligned memory of its own (from the Plan's per-call state), so calls
/// from several threads at once never share it.
class PreparedKernel {
 public:
  virtual ~PreparedKernel() = default;
  virtual std::size_t scratch_bytes() const { return 0; }
  virtual void run(std::span<const detail::View> in, std::span<const detail::View> out, void* scratch) const = 0;
};

class Primitive;

namespace detail {

/// The primitive objects alive, in construction order. Every Primitive
/// registers itself: the eqx::prim instances before main, a program's
/// elementwise kernels when first used. The coverage tests walk it (see
/// registered_primitives), so a new primitive that no rule table covers
/// fails them instead of being skipped.
struct PrimitiveRegistry {
  std::mutex mutex;
  std::vector<const Primitive*> alive;
};
inline PrimitiveRegistry& primitive_registry() {
  static PrimitiveRegistry registry;  // built by the first Primitive, so destroyed after the last
  return registry;
}

/// Every primitive object alive now. Usage:
/// `for (const Primitive* p : eqx::detail::registered_primitives()) names.insert(p->name());`
inline std::vector<const Primitive*> registered_primitives() {
  PrimitiveRegistry& r = primitive_registry();
  std::lock_guard lock(r.mutex);
  return r.alive;
}

}  // namespace detail

/// Base of every primitive. Each primitive is one struct deriving from this
/// that holds all of its rules; it is stateless and used through a single
/// `inline const` instance.
class Primitive {
 public:
  Primitive();
  Primitive(const Primitive&) = delete;
  Primitive& operator=(const Primitive&) = delete;
  virtual ~Primitive();
  /// Name printed in graphs and error messages, e.g. "add".
  virtual std::string_view name() const = 0;
  /// Output shapes and dtypes for these inputs; throws on invalid inputs.
  virtual std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& params) const = 0;
  /// For primitives that always have one output: shape_rule's one result,
  /// without its vector (an eager call on small arrays pays for each heap
  /// allocation); std::nullopt, the default, means "use shape_rule". A
  /// primitive that overrides it defines shape_rule as `{*output_type(in, params)}`.
  virtual std::optional<AbstractArray> output_type(std::span<const AbstractArray> in, const Params& params) const {
    (void)in;
    (void)params;
    return std::nullopt;
  }
  /// Computes the outputs into preallocated, contiguous row-major buffers
  /// whose shapes are what shape_rule returned.
  virtual void kernel(std::span<const detail::View> in, std::span<const detail::View> out,
                      const Params& params) const = 0;
  /// True for elementwise primitives (each output element depends only on
  /// the input elements at the same, broadcast, position). The fusion pass
  /// merges chains of them into one tiled loop; one with several outputs
  /// joins only if it has a multi_tile_kernel.
  virtual bool elementwise() const { return false; }
  /// For elementwise primitives: the tile kernel for these input types, or
  /// nullptr (then fused regions call `kernel` on each tile instead).
  virtual TileKernel tile_kernel(std::span<const AbstractArray> in, const Params& params) const {
    (void)in;
    (void)params;
    return nullptr;
  }
  /// The kernel prepared for these params (see PreparedKernel), or nullptr
  /// (the default): then a Plan calls kernel() on every run.
  virtual std::unique_ptr<PreparedKernel> prepare(const Params& params) const {
    (void)params;
    return nullptr;
  }
  /// For elementwise primitives with several outputs (eqx::elementwise_kernel):
  /// their tile kernel, or nullptr if they cannot run in a fused region.
  virtual MultiTileKernel multi_tile_kernel(std::span<const AbstractArray> in, const Params& params) const {
    (void)in;
    (void)params;
    return nullptr;
  }

  /// True for primitives run for a side effect (debug::print): passes keep
  /// every such equation, in order, even when nothing uses its outputs.
  virtual bool effectful() const { return false; }
  /// False for primitives that constant folding must leave to run with the
  /// plan: effectful ones, and those whose result depends on more than their
  /// inputs (error_if reads EQX_ON_ERROR's mode when it runs; a host
  /// callback runs each time the plan does).
  virtual bool foldable() const { return !effectful(); }

  /// For call-like primitives that hold a sub-graph (filter_checkpoint):
  /// the body that compiled code runs in place of the equation, or nullptr.
  virtual const Graph* inlined_body(const Params& params) const {
    (void)params;
    return nullptr;
  }

  /// Forward mode: the tangents of the outputs, given the inputs
  /// (`primals`), their tangents and the outputs. An empty Array is a
  /// symbolic zero tangent. Written with `ops`, so the rule itself traces.
  virtual std::vector<Array> jvp(const RuleOps& ops, std::span<const Array> primals, std::span<const Array> tangents,
                                 std::span<const Array> outputs, const Params& params) const;
  /// Reverse mode: the cotangents of the inputs (empty: zero), given the
  /// cotangents of the outputs (empty: zero).
  virtual std::vector<Array> vjp(const RuleOps& ops, std::span<const Array> primals, std::span<const Array> outputs,
                                 std::span<const Array> cotangents, const Params& params) const;
  /// Reverse mode in two halves, for primitives that can keep what their
  /// backward pass needs while computing their outputs (a loop stores its
  /// per-step values instead of running twice): when `split_vjp()`, the
  /// tape calls `vjp_fwd` in place of binding the primitive, keeps its
  /// `saved` values, and later calls `vjp_bwd` in place of `vjp`.
  virtual bool split_vjp() const { return false; }
  /// True when the derivative is zero whatever the inputs (stop_gradient):
  /// reverse mode then treats the outputs as constants, so nothing computed
  /// from them is transposed, as JAX's symbolic zeros do.
  virtual bool derivative_is_zero() const { return false; }
  struct ForwardWithResiduals {
    std::vector<Array> outputs, saved;
  };
  virtual ForwardWithResiduals vjp_fwd(const RuleOps& ops, std::span<const Array> primals, const Params& params) const;
  virtual std::vector<Array> vjp_bwd(const RuleOps& ops, std::span<const Array> primals, std::span<const Array> saved,
                                     std::span<const Array> cotangents, const Params& params) const;
  /// Batching (vmap): the outputs for inputs that each carry a batch axis
  /// `dims[i]` (`not_mapped`: shared by every example; at least one input
  /// is mapped), and the batch axis of each output. Written with `ops`.
  virtual Batched batch(const RuleOps& ops, std::span<const Array> args, std::span<const std::int64_t> dims,
                        const Params& params) const;
  /// True if `batch` must run even when no input is batched: a collective
  /// over the axis being batched (psum of a shared value is n times it).
  virtual bool batch_unmapped(const Params& params) const {
    (void)params;
    return false;
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

// The eager interpreter: check the inputs, compute the output types,
// allocate the outputs, run the kernel. Declared here and defined below in
// family GRAPH, so that with eqx::kernels every program and every kernel
// family calls the library's one copy instead of compiling its own.

/// Thrown for an abstract Array from a trace that has finished.
[[noreturn]] EQX_KERNEL_INLINE void throw_leaked_tracer(const Primitive& prim, std::size_t input);

/// Thrown for a shape-only Array (eqx::shape_dtype_struct) given to an operation.
[[noreturn]] EQX_KERNEL_INLINE void throw_shape_only_input(const Primitive& prim, std::size_t input, const Array& a);

/// Thrown for an abstract Array that no active trace owns.
[[noreturn]] EQX_KERNEL_INLINE void throw_unowned_abstract(const Primitive& prim, std::size_t input, const Array& a);

/// "eqx::<name>: ", how an operation's input errors begin.
EQX_KERNEL_INLINE std::string input_error_prefix(const Primitive& p);

/// The output types of `prim` on `inputs`, checked.
EQX_KERNEL_INLINE std::vector<AbstractArray> eager_output_types(const Primitive& prim, std::span<const Array> inputs,
                                                                const Params& params);

/// Runs the kernel on `inputs` into `outputs`, fresh Arrays of the types
/// the shape rule returned.
EQX_KERNEL_INLINE void run_eager_kernel(const Primitive& prim, std::span<const Array> inputs, std::span<const Array> outputs,
                                        const Params& params);

/// Eager interpreter, given the output types: allocate, run the kernel.
EQX_KERNEL_INLINE std::vector<Array> eval_eager(const Primitive& prim, std::span<const Array> inputs, const Params& params,
                                                std::vector<AbstractArray> out_avals);

/// Eager interpreter: shape rule, allocate, kernel.
EQX_KERNEL_INLINE std::vector<Array> eval_eager(const Primitive& prim, std::span<const Array> inputs, const Params& params);

/// Thrown when bind1 is given a primitive with no outputs (call bind instead).
[[noreturn]] EQX_KERNEL_INLINE void throw_bind1_without_outputs(const Primitive& prim);

/// eval_eager of a primitive bound for its first output (bind1): a
/// single-output primitive's result needs no vector of outputs.
EQX_KERNEL_INLINE Array eval_eager1(const Primitive& prim, std::span<const Array> inputs, const Params& params);

#if EQX_KERNELS_HERE(GRAPH)
// Operand lists of up to kInlineOperands live on the stack: an eager op on
// small arrays costs about as much as its bookkeeping, so each heap
// allocation shows.
inline constexpr std::size_t kInlineOperands = 4;

/// Checks `inputs` and calls `rule` with their types (a shape rule).
template <class Rule>
decltype(auto) with_input_types(const Primitive& prim, std::span<const Array> inputs, Rule&& rule) {
  const bool inline_in = inputs.size() <= kInlineOperands;
  AbstractArray in_inline[kInlineOperands];
  std::vector<AbstractArray> in_heap(inline_in ? 0 : inputs.size());
  AbstractArray* in_avals = inline_in ? in_inline : in_heap.data();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].has_value())
      throw ValueError(input_error_prefix(prim) + "input " + std::to_string(i) +
                       " is an empty Array (None); a filtered-out leaf cannot be used in an operation");
    if (inputs[i].is_abstract()) throw_unowned_abstract(prim, i, inputs[i]);
    in_avals[i] = {inputs[i].shape(), inputs[i].dtype()};
  }
  return rule(std::span<const AbstractArray>(in_avals, inputs.size()));
}

[[noreturn]] EQX_KERNEL_INLINE void throw_leaked_tracer(const Primitive& prim, std::size_t input) {
  throw TraceError("eqx::" + std::string(prim.name()) + ": input " + std::to_string(input) +
                   " is an abstract Array from a trace that has already finished (a leaked tracer). An Array "
                   "created inside eqx::filter_jit or another transformation must not be kept after it returns "
                   "(in a global, a captured reference or a static field); return it as an output instead");
}

[[noreturn]] EQX_KERNEL_INLINE void throw_shape_only_input(const Primitive& prim, std::size_t input, const Array& a) {
  throw TraceError("eqx::" + std::string(prim.name()) + ": input " + std::to_string(input) + " is a shape-only Array " +
                   std::string(short_name(a.dtype())) + a.shape().str() +
                   " (from eqx::filter_eval_shape, eqx::filter_make_jaxpr or eqx::shape_dtype_struct), which has "
                   "no values to compute with; pass it as an argument of eqx::filter_eval_shape (which traces it), "
                   "or use a real Array");
}

[[noreturn]] EQX_KERNEL_INLINE void throw_unowned_abstract(const Primitive& prim, std::size_t input, const Array& a) {
  if (ArrayAccess::shape_only(a)) throw_shape_only_input(prim, input, a);
  throw_leaked_tracer(prim, input);
}

EQX_KERNEL_INLINE std::string input_error_prefix(const Primitive& p) { return "eqx::" + std::string(p.name()) + ": "; }

EQX_KERNEL_INLINE std::vector<AbstractArray> eager_output_types(const Primitive& prim, std::span<const Array> inputs,
                                                                const Params& params) {
  return with_input_types(prim, inputs, [&](std::span<const AbstractArray> in) { return prim.shape_rule(in, params); });
}

EQX_KERNEL_INLINE void run_eager_kernel(const Primitive& prim, std::span<const Array> inputs, std::span<const Array> outputs,
                                        const Params& params) {
  const std::size_t nviews = inputs.size() + outputs.size();
  View views_inline[2 * kInlineOperands];
  std::vector<View> views_heap(nviews <= 2 * kInlineOperands ? 0 : nviews);
  View* views = nviews <= 2 * kInlineOperands ? views_inline : views_heap.data();
  for (std::size_t i = 0; i < inputs.size(); ++i)
    views[i] = {const_cast<void*>(inputs[i].raw_data()), &inputs[i].shape(), inputs[i].dtype()};
  for (std::size_t i = 0; i < outputs.size(); ++i)
    views[inputs.size() + i] = {ArrayAccess::mutable_data(outputs[i]), &outputs[i].shape(), outputs[i].dtype()};
  prim.kernel(std::span<const View>(views, inputs.size()), std::span<const View>(views + inputs.size(), outputs.size()),
              params);
}

EQX_KERNEL_INLINE std::vector<Array> eval_eager(const Primitive& prim, std::span<const Array> inputs, const Params& params,
                                                std::vector<AbstractArray> out_avals) {
  std::vector<Array> outputs;
  outputs.reserve(out_avals.size());
  for (auto& aval : out_avals) outputs.push_back(ArrayAccess::allocate(std::move(aval.shape), aval.dtype));
  run_eager_kernel(prim, inputs, outputs, params);
  return outputs;
}

EQX_KERNEL_INLINE std::vector<Array> eval_eager(const Primitive& prim, std::span<const Array> inputs, const Params& params) {
  return eval_eager(prim, inputs, params, eager_output_types(prim, inputs, params));
}

[[noreturn]] EQX_KERNEL_INLINE void throw_bind1_without_outputs(const Primitive& prim) {
  throw ValueError(input_error_prefix(prim) +
                   "bind1 of a primitive with no outputs; call eqx::bind, which returns its (empty) outputs");
}

EQX_KERNEL_INLINE Array eval_eager1(const Primitive& prim, std::span<const Array> inputs, const Params& params) {
  std::vector<AbstractArray> out_avals;
  std::optional<AbstractArray> out_type = with_input_types(prim, inputs, [&](std::span<const AbstractArray> in) {
    std::optional<AbstractArray> t = prim.output_type(in, params);
    if (!t) out_avals = prim.shape_rule(in, params);
    return t;
  });
  if (!out_type) {
    if (out_avals.empty()) throw_bind1_without_outputs(prim);
    if (out_avals.size() > 1) return std::move(eval_eager(prim, inputs, params, std::move(out_avals))[0]);
    out_type = std::move(out_avals[0]);
  }
  Array out = ArrayAccess::allocate(std::move(out_type->shape), out_type->dtype);
  run_eager_kernel(prim, inputs, std::span<const Array>(&out, 1), params);
  return out;
}
#endif  // EQX_KERNELS_HERE(GRAPH)

}  // namespace detail

#if EQX_KERNELS_HERE(GRAPH)
// Out of line: every TU instantiates the 82 eqx::prim instances, and their
// destructors would otherwise each carry the registry's lock and erase.
EQX_KERNEL_INLINE Primitive::Primitive() {
  detail::PrimitiveRegistry& r = detail::primitive_registry();
  std::lock_guard lock(r.mutex);
  r.alive.push_back(this);
}

EQX_KERNEL_INLINE Primitive::~Primitive() {
  detail::PrimitiveRegistry& r = detail::primitive_registry();
  std::lock_guard lock(r.mutex);
  std::erase(r.alive, this);
}
#endif

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
  const std::span<const Array> in(inputs.begin(), inputs.size());
  auto& stack = detail::interpreter_stack();
  if (stack.empty()) return detail::eval_eager1(prim, in, params);
  std::vector<Array> outputs = stack.back()->process(prim, in, params);
  if (outputs.empty()) detail::throw_bind1_without_outputs(prim);
  return std::move(outputs[0]);
}

/// The operations differentiation rules are written with. The AD layer
/// (eqx/ad/) fills in the primitives, so that primitive headers need not
/// include each other. Empty Arrays are symbolic zeros: `mul(zero, x)` is
/// zero without computing anything.
struct RuleOps {
  const Primitive *add_p, *sub_p, *mul_p, *div_p, *neg_p, *select_p, *convert_p, *broadcast_p, *reshape_p,
      *reduce_sum_p, *reduce_prod_p, *transpose_p, *dot_general_p, *eq_p, *ne_p, *gt_p, *exp_p, *log_p, *sin_p,
      *cos_p, *sqrt_p, *pow_p, *sign_p, *tanh_p, *logistic_p;

  Array add(const Array& a, const Array& b) const {
    if (!a.has_value()) return b;
    if (!b.has_value()) return a;
    return bind1(*add_p, {a, b});
  }
  Array sub(const Array& a, const Array& b) const {
    if (!b.has_value()) return a;
    if (!a.has_value()) return neg(b);
    return bind1(*sub_p, {a, b});
  }
  Array mul(const Array& a, const Array& b) const {
    if (!a.has_value() || !b.has_value()) return Array{};
    return bind1(*mul_p, {a, b});
  }
  Array div(const Array& a, const Array& b) const {
    if (!a.has_value()) return Array{};
    return bind1(*div_p, {a, b});
  }
  Array neg(const Array& a) const { return a.has_value() ? bind1(*neg_p, {a}) : Array{}; }
  /// A linear unary primitive applied to a (co)tangent: p(t), or zero for a zero t.
  Array linear(const Primitive& p, const Array& t, const Params& params) const {
    return t.has_value() ? bind1(p, {t}, params) : Array{};
  }
  Array un(const Primitive* p, const Array& a) const { return bind1(*p, {a}); }
  Array bin(const Primitive* p, const Array& a, const Array& b) const { return bind1(*p, {a, b}); }
  Array select(const Array& c, const Array& a, const Array& b) const { return bind1(*select_p, {c, a, b}); }
  /// A rank-0 constant of x's dtype.
  Array scalar(double v, DType dtype) const;
  Array convert(const Array& a, DType d) const;
  Array broadcast_to(const Array& a, const Shape& shape) const;
  Array reshape(const Array& a, const Shape& shape) const;
  Array reduce_sum(const Array& a, std::vector<std::int64_t> axes) const;
  Array reduce_prod(const Array& a, std::vector<std::int64_t> axes) const;
  Array transpose(const Array& a, std::vector<std::int64_t> perm) const;
  /// dot_general with the given contracting and batch axes.
  Array dot(const Array& a, const Array& b, std::vector<std::int64_t> ca, std::vector<std::int64_t> cb,
            std::vector<std::int64_t> ba, std::vector<std::int64_t> bb) const;
  /// Zeros of x's type (a broadcast literal), where a rule needs a concrete zero.
  Array zeros_like(const Array& x) const { return broadcast_to(scalar(0, x.dtype()), x.shape()); }
  /// A symbolic zero made concrete at `shape`/`dtype` if needed.
  Array instantiate(const Array& t, const Shape& shape, DType dtype) const {
    return t.has_value() ? broadcast_to(t, shape) : broadcast_to(scalar(0, dtype), shape);
  }
  /// x with axis `from` moved to position `to` (numpy's moveaxis).
  Array moveaxis(const Array& x, std::int64_t from, std::int64_t to) const;
  /// x with its batch axis `dim` first; an unbatched x (`not_mapped`) is
  /// broadcast to `size` copies.
  Array batch_first(const Array& x, std::int64_t dim, std::int64_t size) const;
  /// The sum of a broadcast cotangent back to `shape` (numpy broadcasting reversed).
  Array unbroadcast(const Array& ct, const Shape& shape) const;
};

namespace detail {
/// Thrown by a default differentiation rule of Primitive.
[[noreturn]] EQX_KERNEL_INLINE void throw_no_rule(const Primitive& p, const char* rule, const char* mode, const char* method);
#if EQX_KERNELS_HERE(GRAPH)
[[noreturn]] EQX_KERNEL_INLINE void throw_no_rule(const Primitive& p, const char* rule, const char* mode, const char* method) {
  throw ValueError("eqx: primitive '" + std::string(p.name()) + "' has no " + rule +
                   " rule, so it cannot be differentiated in " + mode + " mode; give it one by overriding " + method);
}
#endif
}  // namespace detail

inline Batched Primitive::batch(const RuleOps&, std::span<const Array>, std::span<const std::int64_t>,
                                 const Params&) const {
  throw ValueError("eqx: primitive '" + std::string(name()) +
                   "' has no batching rule, so it cannot be used inside eqx::filter_vmap; give it one by overriding "
                   "Primitive::batch");
}

inline Primitive::ForwardWithResiduals Primitive::vjp_fwd(const RuleOps&, std::span<const Array>, const Params&) const {
  detail::throw_no_rule(*this, "split VJP (vjp_fwd)", "reverse", "Primitive::vjp_fwd");
}
inline std::vector<Array> Primitive::vjp_bwd(const RuleOps&, std::span<const Array>, std::span<const Array>,
                                             std::span<const Array>, const Params&) const {
  detail::throw_no_rule(*this, "split VJP (vjp_bwd)", "reverse", "Primitive::vjp_bwd");
}

inline std::vector<Array> Primitive::jvp(const RuleOps&, std::span<const Array>, std::span<const Array>,
                                         std::span<const Array>, const Params&) const {
  detail::throw_no_rule(*this, "JVP", "forward", "Primitive::jvp");
}
inline std::vector<Array> Primitive::vjp(const RuleOps&, std::span<const Array>, std::span<const Array>,
                                         std::span<const Array>, const Params&) const {
  detail::throw_no_rule(*this, "VJP", "reverse", "Primitive::vjp");
}

// Compiled in family GRAPH (with eqx::kernels, once, in the library).
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Array RuleOps::scalar(double v, DType dtype) const {
  return visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    Array a = detail::ArrayAccess::allocate(Shape{}, dtype);
    *static_cast<T*>(detail::ArrayAccess::mutable_data(a)) = static_cast<T>(v);
    return a;
  });
}

EQX_KERNEL_INLINE Array RuleOps::broadcast_to(const Array& a, const Shape& shape) const {
  if (!a.has_value() || a.shape() == shape) return a;
  std::vector<std::int64_t> dims;
  const std::size_t extra = shape.size() - a.ndim();
  for (std::size_t i = 0; i < a.ndim(); ++i) dims.push_back(static_cast<std::int64_t>(extra + i));
  return bind1(*broadcast_p, {a},
               Params{}.set("shape", std::vector<std::int64_t>(shape.begin(), shape.end())).set("broadcast_dimensions", dims));
}

EQX_KERNEL_INLINE Array RuleOps::convert(const Array& a, DType d) const {
  if (!a.has_value() || a.dtype() == d) return a;
  return bind1(*convert_p, {a}, Params{}.set("new_dtype", d));
}

EQX_KERNEL_INLINE Array RuleOps::reshape(const Array& a, const Shape& shape) const {
  if (!a.has_value() || a.shape() == shape) return a;
  return bind1(*reshape_p, {a}, Params{}.set("new_sizes", std::vector<std::int64_t>(shape.begin(), shape.end())));
}

EQX_KERNEL_INLINE Array RuleOps::reduce_sum(const Array& a, std::vector<std::int64_t> axes) const {
  if (!a.has_value() || axes.empty()) return a;
  return bind1(*reduce_sum_p, {a}, Params{}.set("axes", std::move(axes)));
}

EQX_KERNEL_INLINE Array RuleOps::reduce_prod(const Array& a, std::vector<std::int64_t> axes) const {
  if (axes.empty()) return a;
  return bind1(*reduce_prod_p, {a}, Params{}.set("axes", std::move(axes)));
}

EQX_KERNEL_INLINE Array RuleOps::transpose(const Array& a, std::vector<std::int64_t> perm) const {
  return a.has_value() ? bind1(*transpose_p, {a}, Params{}.set("permutation", std::move(perm))) : Array{};
}

EQX_KERNEL_INLINE Array RuleOps::dot(const Array& a, const Array& b, std::vector<std::int64_t> ca,
                                     std::vector<std::int64_t> cb, std::vector<std::int64_t> ba,
                                     std::vector<std::int64_t> bb) const {
  if (!a.has_value() || !b.has_value()) return Array{};
  return bind1(*dot_general_p, {a, b},
               Params{}
                   .set("lhs_contracting_dimensions", std::move(ca))
                   .set("rhs_contracting_dimensions", std::move(cb))
                   .set("lhs_batch_dimensions", std::move(ba))
                   .set("rhs_batch_dimensions", std::move(bb)));
}

EQX_KERNEL_INLINE Array RuleOps::moveaxis(const Array& x, std::int64_t from, std::int64_t to) const {
  if (from == to) return x;
  std::vector<std::int64_t> perm;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(x.ndim()); ++i)
    if (i != from) perm.push_back(i);
  perm.insert(perm.begin() + to, from);
  return transpose(x, std::move(perm));
}

EQX_KERNEL_INLINE Array RuleOps::batch_first(const Array& x, std::int64_t dim, std::int64_t size) const {
  if (dim != not_mapped) return moveaxis(x, dim, 0);
  Shape s = x.shape();
  s.insert(0, size);
  return broadcast_to(x, s);
}

EQX_KERNEL_INLINE Array RuleOps::unbroadcast(const Array& ct, const Shape& shape) const {
  if (!ct.has_value() || ct.shape() == shape) return ct;
  const std::size_t extra = ct.ndim() - shape.size();
  std::vector<std::int64_t> axes;
  for (std::size_t i = 0; i < ct.ndim(); ++i)
    if (i < extra || (shape[i - extra] == 1 && ct.shape()[i] != 1)) axes.push_back(static_cast<std::int64_t>(i));
  return reshape(reduce_sum(ct, std::move(axes)), shape);
}
#endif

}  // namespace eqx
