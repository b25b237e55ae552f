#pragma once
// tree_equal: same structure, same static leaves and the same Arrays
// (shape, dtype and every value), bit for bit or, given tolerances, close
// as NumPy's allclose; tree_check: a tree must not contain the same Array
// storage twice ("PyTrees, not DAGs").
//
// tree_equal answers with a C++ bool, so it needs values: on a traced
// (abstract) Array leaf it throws eqx::ConcretizationError, where Equinox
// would return a traced bool. Structure, static leaves, shapes and dtypes
// are known under a trace, so a difference there is still a plain false.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

namespace detail {
/// Same dtype, shape and bytes (so NaN equals NaN: bit-exact equality).
inline bool arrays_identical(const Array& a, const Array& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a.has_value()) return true;
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  std::size_t n = static_cast<std::size_t>(a.size()) * itemsize(a.dtype());
  return n == 0 || std::memcmp(a.raw_data(), b.raw_data(), n) == 0;
}
/// True if every element of `a` is within `atol + rtol * |b|` of `b`'s (NumPy's
/// isclose: NaN is close to nothing, an infinity only to itself). Same
/// dtype and shape, both concrete; computed in double.
inline bool arrays_close(const Array& a, const Array& b, double rtol, double atol) {
  return visit_dtype(a.dtype(), [&]<class T>(T) {
    const T* x = static_cast<const T*>(a.raw_data());
    const T* y = static_cast<const T*>(b.raw_data());
    for (std::int64_t i = 0; i < a.size(); ++i) {
      const double xi = static_cast<double>(x[i]), yi = static_cast<double>(y[i]);
      if (xi == yi) continue;
      if (!std::isfinite(xi) || !std::isfinite(yi) || !(std::abs(xi - yi) <= atol + rtol * std::abs(yi))) return false;
    }
    return true;
  });
}

/// TreeDef equality (structure and static leaves) plus equal Arrays: bit
/// for bit, or, with tolerances, close where the dtype is floating.
struct TreeEqual : StructureComparer {
  bool tolerant = false;
  double rtol = 0, atol = 0;
  bool array(const TreePath& path, const Array& x, const Array& y) {
    if (x.has_value() != y.has_value()) return false;
    if (!x.has_value()) return true;
    if (x.dtype() != y.dtype() || x.shape() != y.shape()) return false;
    if (x.is_abstract() || y.is_abstract())
      throw ConcretizationError("eqx::tree_equal: the Array leaf at " + path.display() + " is traced (" +
                                std::string(short_name(x.dtype())) + x.shape().str() +
                                "), so its values are not known yet and tree_equal cannot answer with a bool; "
                                "compare outside the jitted function (return the trees from it), or compare "
                                "inside it with Array operations (eqx::all(eqx::abs(a - b) <= tol))");
    if (tolerant && is_floating(x.dtype())) return arrays_close(x, y, rtol, atol);
    return arrays_identical(x, y);
  }
};

/// Remembers where each Array storage was seen; throws on the second sight.
struct AliasCheck : ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::map<const void*, std::string> seen;
  bool array(const TreePath& path, const Array& a) {
    if (!a.has_value() || a.size() == 0) return true;
    auto [it, fresh] = seen.emplace(a.raw_data(), path.display());
    if (!fresh)
      throw ValueError("eqx::tree_check: the same Array storage appears at " + it->second + " and at " +
                       path.display() +
                       "; PyTrees, not DAGs: a model must not hold one Array twice (it would be updated and "
                       "serialised twice). Store it once and read it from there, or copy it");
    return true;
  }
};

}  // namespace detail

/// Tolerances of tree_equal (Equinox's `rtol` / `atol` arguments).
struct TreeEqualOptions {
  double rtol = 0.0;  ///< relative tolerance, times |b|
  double atol = 0.0;  ///< absolute tolerance
};

/// True if the trees have the same structure, equal static leaves and
/// bit-identical Arrays (shape, dtype and values; so a NaN equals a NaN
/// with the same bits, and -0.0 differs from 0.0). Throws
/// eqx::ConcretizationError on a traced Array leaf.
/// Usage: `REQUIRE(eqx::tree_equal(loaded, model));`
template <class T>
bool tree_equal(const T& a, const T& b) {
  detail::TreeEqual e;
  TreePath path;
  return detail::visit_tree(e, path, a, b);
}

/// tree_equal with tolerances: float Arrays must be close as NumPy's
/// `allclose(a, b, rtol, atol)` says, elementwise |a - b| <= atol + rtol * |b|
/// (asymmetric: `b` is the reference). As allclose's default
/// equal_nan=False, a NaN is close to nothing, not even a NaN; an infinity
/// only to itself. Integer and bool Arrays must be equal; structure,
/// static leaves, shapes and dtypes must match exactly. Negative (or NaN)
/// tolerances throw eqx::ValueError.
/// Usage: `CHECK(eqx::tree_equal(grads, expected, {.rtol = 1e-5, .atol = 1e-8}));`
template <class T>
bool tree_equal(const T& a, const T& b, const TreeEqualOptions& tolerance) {
  for (auto [name, value] : {std::pair{"rtol", tolerance.rtol}, std::pair{"atol", tolerance.atol}})
    if (!(value >= 0.0))
      throw ValueError("eqx::tree_equal: " + std::string(name) + " must be >= 0, got " + fmt::format("{}", value) +
                       "; tolerances are magnitudes (|a - b| <= atol + rtol * |b|)");
  detail::TreeEqual e;
  e.tolerant = true;
  e.rtol = tolerance.rtol;
  e.atol = tolerance.atol;
  TreePath path;
  return detail::visit_tree(e, path, a, b);
}

/// Throws eqx::ValueError if one Array storage appears at two leaves of the
/// tree. Equinox models are trees, not DAGs: a shared leaf would be updated
/// twice by an optimiser and saved twice.
template <class T>
void tree_check(const T& tree) {
  detail::AliasCheck c;
  TreePath path;
  detail::visit_tree(c, path, tree);
}

}  // namespace eqx
