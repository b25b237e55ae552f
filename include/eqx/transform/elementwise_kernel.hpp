#pragma once
// elementwise_kernel: one elementwise function, written once, run as one
// loop whose intermediates stay in registers.
//
// Compiled plans already fuse chains of elementwise operations, but the
// fused loop still runs them one after another over a tile in memory: each
// operation loads its operands and stores its result. For a long chain over
// big arrays (an optimiser's update: a dozen operations per parameter) that
// traffic, not the arithmetic, sets the speed. A kernel written with
// `elementwise_kernel` is generic code that runs in two ways:
//   - on Arrays, once per call, to trace it: the traced body gives the
//     shapes and every transformation (jvp, grad and vmap see ordinary
//     operations, so they need no rules of their own);
//   - on `eqx::Lanes<T>`, a SIMD register of float32 or float64 values (the
//     widest the build's flags allow), to run it: the C++ compiler turns the
//     whole function into one vector loop.
// Inside a compiled plan the kernel also joins the elementwise operations
// around it in one fused region.
//
// The function must be captureless (its code is a type: one kernel per
// lambda), take Arrays and return one Array, or a std::tuple or std::array
// of them, and use only what Lanes supports: + - * / (with each other and
// with numbers), unary -, sqrt, rsqrt, exp, log, abs, square, maximum and
// minimum, all found by argument-dependent lookup (or written eqx::sqrt).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "eqx/ad/autodiff.hpp"
#include "eqx/ad/rule_ops.hpp"
#include "eqx/core/array.hpp"
#include "eqx/core/threads.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/ir/trace.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/prim/exact_sqrt.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/prim/unary.hpp"

namespace eqx {
// Everything here compiles to the including code's ISA, so it sits in the
// ISA's namespace (core/config.hpp): eqx::kernels' copy is not the program's.
inline namespace EQX_KERNELS_ABI {

/// One SIMD register of T (float or double): what an elementwise_kernel's
/// function computes with when the kernel runs.
template <class T>
struct Lanes {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "eqx::Lanes: float or double");
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr int size = Eigen::internal::unpacket_traits<Packet>::size;
  Packet v;

  static Lanes load(const T* p) { return {Eigen::internal::ploadu<Packet>(p)}; }
  static Lanes fill(T x) { return {Eigen::internal::pset1<Packet>(x)}; }
  void store(T* p) const { Eigen::internal::pstoreu(p, v); }

  friend Lanes operator+(Lanes a, Lanes b) { return {Eigen::internal::padd(a.v, b.v)}; }
  friend Lanes operator-(Lanes a, Lanes b) { return {Eigen::internal::psub(a.v, b.v)}; }
  friend Lanes operator*(Lanes a, Lanes b) { return {Eigen::internal::pmul(a.v, b.v)}; }
  friend Lanes operator/(Lanes a, Lanes b) { return {Eigen::internal::pdiv(a.v, b.v)}; }
  friend Lanes operator-(Lanes a) { return {Eigen::internal::pnegate(a.v)}; }
  // A number converts to T first, as a Python scalar does in jnp.
  template <Scalar S> friend Lanes operator+(Lanes a, S b) { return a + fill(static_cast<T>(b)); }
  template <Scalar S> friend Lanes operator+(S a, Lanes b) { return fill(static_cast<T>(a)) + b; }
  template <Scalar S> friend Lanes operator-(Lanes a, S b) { return a - fill(static_cast<T>(b)); }
  template <Scalar S> friend Lanes operator-(S a, Lanes b) { return fill(static_cast<T>(a)) - b; }
  template <Scalar S> friend Lanes operator*(Lanes a, S b) { return a * fill(static_cast<T>(b)); }
  template <Scalar S> friend Lanes operator*(S a, Lanes b) { return fill(static_cast<T>(a)) * b; }
  template <Scalar S> friend Lanes operator/(Lanes a, S b) { return a / fill(static_cast<T>(b)); }
  template <Scalar S> friend Lanes operator/(S a, Lanes b) { return fill(static_cast<T>(a)) / b; }
};

// The functions Lanes supports, with the Array functions' names and NaN
// behaviour (maximum and minimum propagate NaN).
template <class T> Lanes<T> sqrt(Lanes<T> x) { return {detail::exact_psqrt(x.v)}; }
template <class T> Lanes<T> rsqrt(Lanes<T> x) { return T(1) / sqrt(x); }
template <class T> Lanes<T> exp(Lanes<T> x) { return {Eigen::internal::pexp(x.v)}; }
template <class T> Lanes<T> log(Lanes<T> x) { return {Eigen::internal::plog(x.v)}; }
template <class T> Lanes<T> abs(Lanes<T> x) { return {Eigen::internal::pabs(x.v)}; }
template <class T> Lanes<T> square(Lanes<T> x) { return x * x; }
template <class T> Lanes<T> maximum(Lanes<T> a, Lanes<T> b) {
  return {Eigen::internal::pmax<Eigen::PropagateNaN>(a.v, b.v)};
}
template <class T> Lanes<T> minimum(Lanes<T> a, Lanes<T> b) {
  return {Eigen::internal::pmin<Eigen::PropagateNaN>(a.v, b.v)};
}

}  // inline namespace EQX_KERNELS_ABI

namespace detail {
inline namespace EQX_KERNELS_ABI {

/// F's result as a tuple (a single value is a tuple of one).
template <class R>
auto result_tuple(R&& r) {
  using D = std::remove_cvref_t<R>;
  if constexpr (std::is_same_v<D, Array> || std::is_same_v<D, Lanes<float>> || std::is_same_v<D, Lanes<double>>)
    return std::tuple<D>{std::forward<R>(r)};
  else if constexpr (requires { std::tuple_size<D>::value; })
    return std::apply([](auto&&... x) { return std::tuple{x...}; }, std::forward<R>(r));
  else
    static_assert(sizeof(D) == 0, "eqx::elementwise_kernel: the function must return an Array, or a std::tuple or std::array of them");
}

// A struct, not an alias: clang drops an alias that ignores its index from
// the pack expansion.
template <class X, std::size_t>
struct repeat {
  using type = X;
};
template <class F, class X, std::size_t... I>
auto kernel_call(std::index_sequence<I...>) -> std::invoke_result_t<F, typename repeat<X, I>::type...>;
/// What F returns when called with N values of type X.
template <class F, std::size_t N, class X>
using kernel_call_t = std::remove_cvref_t<decltype(kernel_call<F, X>(std::make_index_sequence<N>{}))>;
/// The same, as a tuple.
template <class F, std::size_t N, class X>
using kernel_result_t = decltype(result_tuple(std::declval<kernel_call_t<F, N, X>>()));

/// The number of arguments up to the last Array: the ones after it are numbers.
template <class... A>
constexpr std::size_t leading_operands() {
  constexpr bool is_array[] = {std::is_same_v<A, Array>..., false};
  std::size_t s = 0;
  for (std::size_t k = 0; k < sizeof...(A); ++k)
    if (is_array[k]) s = k + 1;
  return s;
}

/// The kernel on `n` contiguous elements of every operand (T typed).
/// Operands from S on are numbers: one value each, put in a register once.
template <class F, std::size_t N, std::size_t S, class T>
void lanes_tile(const void* const* in, void* const* out, std::int64_t n) {
  using L = Lanes<T>;
  constexpr std::int64_t W = L::size;
  constexpr std::size_t M = std::tuple_size_v<kernel_result_t<F, N, L>>;
  const T* src[N];
  T* dst[M];
  for (std::size_t k = 0; k < N; ++k) src[k] = static_cast<const T*>(in[k]);
  for (std::size_t k = 0; k < M; ++k) dst[k] = static_cast<T*>(out[k]);
  L number[N - S + 1];  // (+1: never empty)
  for (std::size_t k = S; k < N; ++k) number[k - S] = L::fill(src[k][0]);
  auto apply = [&](const T* const* from, T* const* to, std::int64_t i) {
    auto operand = [&]<std::size_t I>(std::integral_constant<std::size_t, I>) {
      if constexpr (I < S) return L::load(from[I] + i);
      else return number[I - S];
    };
    auto r = result_tuple([&]<std::size_t... I>(std::index_sequence<I...>) {
      return F{}(operand(std::integral_constant<std::size_t, I>{})...);
    }(std::make_index_sequence<N>{}));
    [&]<std::size_t... J>(std::index_sequence<J...>) { (std::get<J>(r).store(to[J] + i), ...); }(std::make_index_sequence<M>{});
  };
  std::int64_t i = 0;
  for (; i + W <= n; i += W) apply(src, dst, i);
  if (i == n) return;
  // The tail through one register's worth of buffer; spare lanes compute on ones.
  T tail_in[S + 1][W], tail_out[M][W];
  const T* tsrc[S + 1];
  T* tdst[M];
  for (std::size_t k = 0; k < S; ++k) {
    for (std::int64_t j = 0; j < W; ++j) tail_in[k][j] = i + j < n ? src[k][i + j] : T(1);
    tsrc[k] = tail_in[k];
  }
  for (std::size_t k = 0; k < M; ++k) tdst[k] = tail_out[k];
  apply(tsrc, tdst, 0);
  for (std::size_t k = 0; k < M; ++k)
    for (std::int64_t j = 0; i + j < n; ++j) dst[k][i + j] = tail_out[k][j];
}

template <class F, std::size_t N, std::size_t S>
auto call_elementwise_kernel(std::span<const Array> args) -> std::vector<Array>;

/// The primitive of one kernel function F with N operands, of which those
/// from S on are numbers (scalars). Operands share one dtype (float32 or
/// float64); each is a scalar or has the result's shape; every output has
/// that shape and dtype. "jaxpr" is F traced on the operands' types: the
/// shape rule, and every transformation's source.
template <class F, std::size_t N, std::size_t S>
struct ElementwiseKernelPrim final : Primitive {
  static const Graph& body(const Params& p) { return *p.get<GraphRef>("jaxpr"); }
  std::string_view name() const override { return "elementwise_kernel"; }
  bool elementwise() const override { return true; }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Graph& g = body(p);
    for (std::size_t i = 0; i < in.size(); ++i)
      if (i >= g.inputs.size() || in[i] != g.types[g.inputs[i]])
        throw ValueError("eqx::elementwise_kernel: internal error: operand " + std::to_string(i) + " is " +
                        in[i].str() + ", not the type the kernel was traced with");
    return g.output_types();
  }
  MultiTileKernel multi_tile_kernel(std::span<const AbstractArray> in, const Params&) const override {
    return tile_for(in[0].dtype);
  }
  // A function type may bring its own compiled tile kernel (eqx::optim's
  // Adam has one in eqx::kernels, built for the kernels' ISA).
  static MultiTileKernel tile_for(DType dtype) {
    if constexpr (requires { F::compiled_tile(dtype); }) {
      static_assert(F::operands == N && F::arrays == S,
                    "eqx::elementwise_kernel: compiled_tile is for another argument list");
      return F::compiled_tile(dtype);
    } else {
      return dtype == DType::float64 ? &lanes_tile<F, N, S, double> : &lanes_tile<F, N, S, float>;
    }
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params&) const override {
    if (in[0].dtype == DType::float64) run<double>(in, out);
    else run<float>(in, out);
  }
  std::vector<Array> jvp(const RuleOps&, std::span<const Array> x, std::span<const Array> t, std::span<const Array>,
                         const Params& p) const override {
    return jvp_graph(body(p), x, t).second;
  }
  std::vector<Array> vjp(const RuleOps&, std::span<const Array> x, std::span<const Array>, std::span<const Array> ct,
                         const Params& p) const override {
    return vjp_graph(body(p), x, ct).second;
  }
  // The same kernel on operands with the batch axis first (unmapped ones
  // broadcast to it, except scalars, which stay scalars).
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params&) const override {
    const std::int64_t n = batch_size(x, d);
    std::vector<Array> moved;
    for (std::size_t i = 0; i < x.size(); ++i)
      moved.push_back(d[i] == not_mapped && x[i].ndim() == 0 ? x[i] : o.batch_first(x[i], d[i], n));
    std::vector<Array> out = call_elementwise_kernel<F, N, S>(moved);
    std::vector<std::int64_t> dims(out.size(), 0);
    return {std::move(out), std::move(dims)};
  }

 private:
  // Blocks of up to kBlock elements; a scalar operand is a block of copies.
  static constexpr std::int64_t kBlock = 1024;
  template <class T>
  static void run(std::span<const View> in, std::span<const View> out) {
    const std::int64_t n = out[0].numel();
    const MultiTileKernel tile = tile_for(dtype_of<T>());
    parallel_for(n, static_cast<std::int64_t>(8 * N), [&](std::int64_t b, std::int64_t e) {
      thread_local std::vector<T> copies;
      copies.resize(N * kBlock);
      const void* src[N];
      void* dst[kMaxOutputs];
      bool scalar[N];
      for (std::size_t k = 0; k < N; ++k)
        if ((scalar[k] = in[k].numel() == 1 && n != 1))
          std::fill_n(copies.data() + k * kBlock, kBlock, *in[k].as<const T>());
      for (std::int64_t s = b; s < e; s += kBlock) {
        for (std::size_t k = 0; k < N; ++k)
          src[k] = scalar[k] ? copies.data() + k * kBlock : in[k].as<const T>() + s;
        for (std::size_t k = 0; k < out.size(); ++k) dst[k] = out[k].as<T>() + s;
        tile(src, dst, std::min(kBlock, e - s));
      }
    });
  }

 public:
  static constexpr std::size_t kMaxOutputs = 16;
};

template <class F, std::size_t N, std::size_t S>
inline const ElementwiseKernelPrim<F, N, S> elementwise_kernel_prim;

/// Binds F's kernel on `args` (Arrays of one float dtype, each a scalar or
/// of the result's shape); returns its outputs.
template <class F, std::size_t N, std::size_t S>
auto call_elementwise_kernel(std::span<const Array> args) -> std::vector<Array> {
  TraceScope scope;
  std::vector<Array> inputs;
  for (const Array& a : args) inputs.push_back(scope.input({a.shape(), a.dtype()}));
  auto outs = result_tuple([&]<std::size_t... I>(std::index_sequence<I...>) {
    return F{}(inputs[I]...);
  }(std::make_index_sequence<N>{}));
  static_assert(std::tuple_size_v<decltype(outs)> <= ElementwiseKernelPrim<F, N, S>::kMaxOutputs,
                "eqx::elementwise_kernel: at most 16 outputs");
  std::vector<Array> leaves = std::apply([](const auto&... o) { return std::vector<Array>{o...}; }, outs);
  auto body = std::make_shared<Graph>(scope.finish(leaves));
  for (const Array& c : body->consts)
    if (c.is_abstract())
      throw ValueError("eqx::elementwise_kernel: the function reads a traced value it did not get as an argument; "
                       "pass every Array it uses as an argument");
  Shape shape;
  for (const Array& a : args) shape = broadcast_shapes(shape, a.shape(), "elementwise_kernel");
  const AbstractArray want{shape, args[0].dtype()};
  for (std::size_t i = 0; i < body->outputs.size(); ++i) {
    const AbstractArray& got = body->types[body->outputs[i]];
    if (got != want)
      throw ShapeError("eqx::elementwise_kernel: output " + std::to_string(i) + " is " + got.str() +
                      ", but every output must have the operands' broadcast shape and dtype, " + want.str() +
                      " (an output that does not depend on every operand can be broadcast with eqx::broadcast_to)");
  }
  return eqx::bind(elementwise_kernel_prim<F, N, S>, args, Params{}.set("jaxpr", GraphRef(std::move(body))));
}

}  // inline namespace EQX_KERNELS_ABI

/// One operand: an Array, or a number made a scalar of the kernel's dtype.
template <class A>
Array kernel_operand(const A& a, DType dtype) {
  if constexpr (std::is_same_v<A, Array>) return a;
  else return Operand(a).as(dtype);
}

}  // namespace detail

/// `f` as one fused elementwise kernel (see the file comment): called with
/// Arrays of one dtype, float32 or float64, and numbers, which broadcast
/// together as in numpy; returns what f returns on Arrays. Numbers after
/// the last Array argument stay in registers for the whole loop, so put
/// per-element Arrays first.
/// Usage:
///   auto axpy = eqx::elementwise_kernel([](auto a, auto x, auto y) { return a * x + y; });
///   eqx::Array z = axpy(2.0, x, y);
template <class F>
auto elementwise_kernel(F) {
  static_assert(std::is_empty_v<F> && std::is_default_constructible_v<F>,
                "eqx::elementwise_kernel: the function must be a lambda without captures (its code is compiled "
                "once per lambda type); pass every value it needs as an argument");
  return []<class... A>(const A&... args) {
    static_assert(sizeof...(A) > 0, "eqx::elementwise_kernel: the kernel needs at least one Array argument");
    static_assert(((std::is_same_v<A, Array> || Scalar<A>) && ...),
                  "eqx::elementwise_kernel: every argument must be an Array or a number");
    // The dtype and shape of the result, from the Array arguments.
    const Array* first = nullptr;
    std::size_t position = 0, first_position = 0;
    Shape shape;
    auto check = [&](const auto& a) {
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(a)>, Array>) {
        if (!a.has_value())
          throw ValueError("eqx::elementwise_kernel: argument " + std::to_string(position) + " is an empty Array (None)");
        if (a.dtype() != DType::float32 && a.dtype() != DType::float64)
          throw DTypeError("eqx::elementwise_kernel: argument " + std::to_string(position) + " is " +
                          AbstractArray{a.shape(), a.dtype()}.str() +
                          "; kernels run on float32 or float64 (convert with eqx::astype)");
        if (first && a.dtype() != first->dtype())
          throw DTypeError("eqx::elementwise_kernel: argument " + std::to_string(position) + " is " +
                          AbstractArray{a.shape(), a.dtype()}.str() + " but argument " + std::to_string(first_position) +
                          " is " + AbstractArray{first->shape(), first->dtype()}.str() +
                          "; every Array argument must have one dtype (convert with eqx::astype)");
        if (!first) {
          first = &a;
          first_position = position;
        }
        shape = detail::broadcast_shapes(shape, a.shape(), "elementwise_kernel");
      }
      ++position;
    };
    (check(args), ...);
    if (!first) throw ValueError("eqx::elementwise_kernel: at least one argument must be an Array (the dtype comes from it)");
    const DType dtype = first->dtype();
    // Scalars stay scalars (filled once per block); other operands take the result's shape.
    auto operand = [&](const auto& a) {
      Array x = detail::kernel_operand(a, dtype);
      return x.ndim() == 0 || x.shape() == shape ? x : broadcast_to(x, shape);
    };
    const std::array<Array, sizeof...(A)> operands{operand(args)...};
    // Numbers after the last Array are kept in registers by the kernel.
    constexpr std::size_t S = detail::leading_operands<A...>();
    std::vector<Array> outs = detail::call_elementwise_kernel<F, sizeof...(A), S>(operands);
    using R = detail::kernel_call_t<F, sizeof...(A), const Array&>;
    if constexpr (std::is_same_v<R, Array>) {
      return outs[0];
    } else {
      return [&]<std::size_t... J>(std::index_sequence<J...>) { return R{outs[J]...}; }(
          std::make_index_sequence<std::tuple_size_v<R>>{});
    }
  };
}

}  // namespace eqx
