#pragma once
// tree_equal: same structure, same static leaves and the same Arrays
// (shape, dtype and every value); tree_check: a tree must not contain the
// same Array storage twice ("PyTrees, not DAGs").

#include <cstring>
#include <map>
#include <string>

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
/// TreeDef equality (structure and static leaves) plus bit-identical Arrays.
struct TreeEqual : StructureComparer {
  bool array(const TreePath&, const Array& x, const Array& y) { return arrays_identical(x, y); }
};

/// Remembers where each Array storage was seen; throws on the second sight.
struct AliasCheck : ArrayLeafVisitor {
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

/// True if the trees have the same structure, equal static leaves and
/// bit-identical Arrays (shape, dtype and values).
/// Usage: `REQUIRE(eqx::tree_equal(loaded, model));`
template <class T>
bool tree_equal(const T& a, const T& b) {
  detail::TreeEqual e;
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
