#pragma once
// debug::backward_nan: find where a NaN enters the backward pass.
//
// backward_nan(x, name) is the identity on a pytree x, with a custom VJP
// that, in the backward pass, prints each floating leaf of x and the
// cotangent arriving at it, and stops with an error if a cotangent holds a
// NaN. Placed between layers, it shows which one first sends a NaN
// gradient back: the forward values it prints are the ones that produced it.

#include <string>
#include <tuple>
#include <utility>

#include "eqx/core/array.hpp"
#include "eqx/debug.hpp"
#include "eqx/errors.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/transform/custom_rules.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx::debug {

namespace detail {

/// `text` with fmt's braces escaped, to be used inside a format string.
inline std::string escape_braces(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '{' || c == '}') out += c;
  }
  return out;
}

/// Prints each floating primal leaf with its cotangent; collects whether a
/// cotangent is NaN anywhere (a bool scalar, None if there is no cotangent).
struct CotangentReport {
  std::string label;
  Array any_nan;
  bool array(const TreePath& path, const Array& primal, const Array& ct) {
    if (!primal.has_value() || !is_floating(primal.dtype())) return true;
    const std::string where = escape_braces(label + path.str());
    if (!ct.has_value()) {
      print(where + ": primal {} cotangent None (zero)", primal);
      return true;
    }
    print(where + ": primal {} cotangent {}", primal, ct);
    Array nan = eqx::any(eqx::isnan(ct));
    any_nan = any_nan.has_value() ? eqx::logical_or(any_nan, nan) : nan;
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath&, const X&, const X&) {
    return true;
  }
  bool mismatch(const TreePath& path, const std::string& what) { eqx::detail::throw_mismatch(path, what); }
};

}  // namespace detail

/// `x` unchanged. In the backward pass, prints (with debug::print, so also
/// from compiled code) every floating leaf of x with the cotangent reaching
/// it, labelled `name` and the leaf's path; with `terminate`, a NaN in a
/// cotangent then throws eqx::RuntimeError naming `name`.
/// Usage: `h = eqx::debug::backward_nan(layer1(x), "after layer1"); y = layer2(h);`
template <class T>
T backward_nan(const T& x, std::string name = "backward_nan", bool terminate = true) {
  auto identity =
      eqx::filter_custom_vjp([](const T& v) { return v; })
          .def_fwd([](const T& v) { return std::pair{v, std::tuple<>{}}; })
          .def_bwd([name = std::move(name), terminate](std::tuple<>, const T& ct, const T& primal) -> T {
            detail::CotangentReport report{name};
            TreePath path;
            eqx::detail::visit_tree(report, path, primal, ct);
            if (!terminate || !report.any_nan.has_value()) return ct;
            return eqx::error_if(ct, report.any_nan,
                                 "eqx::debug::backward_nan: a NaN cotangent reached '" + name +
                                     "' in the backward pass; the values printed just before are its primal and "
                                     "cotangent (the NaN came from the operations after it in the forward pass)");
          });
  return identity(x);
}

}  // namespace eqx::debug
