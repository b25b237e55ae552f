#pragma once
// tree_flatten / TreeDef::unflatten, tree_leaves, tree_leaves_with_path and
// tree_structure: a pytree split into its Array leaves and everything else.
//
// A TreeDef<T> keeps a "skeleton" of the tree: a copy in which every Array is
// empty (None) but which still records which Array slots were empty, all
// container sizes and all static leaf values. Two TreeDefs are equal iff
// their skeletons have the same structure, the same empty slots and equal
// static leaves; the hash is computed from the same data once.

#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

namespace detail {

inline std::size_t hash_combine(std::size_t seed, std::size_t v) {
  return seed ^ (v + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
}

/// Copies a tree with every Array replaced by None, remembering which were set.
struct SkeletonBuilder {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::vector<bool> present;
  std::vector<std::string>* leaf_paths = nullptr;  // when set, gets the path of each leaf with a value
  Array array(const TreePath& path, const Array& a) {
    present.push_back(a.has_value());
    if (leaf_paths && a.has_value()) leaf_paths->push_back(path.str());
    return Array{};
  }
};

/// Hash of structure + static leaves (those with std::hash; others add only
/// their position, equality still compares them).
struct StructureHasher {
  std::size_t h = 0;
  const std::vector<bool>* present;
  std::size_t slot = 0;
  bool array(const TreePath&, const Array&) {
    h = hash_combine(h, (*present)[slot++] ? 0xA11 : 0xB0B);
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath&, const X& x) {
    if constexpr (requires { std::hash<X>{}(x); }) h = hash_combine(h, std::hash<X>{}(x));
    else if constexpr (requires { std::hash<std::remove_cvref_t<decltype(x.value)>>{}(x.value); })
      h = hash_combine(h, std::hash<std::remove_cvref_t<decltype(x.value)>>{}(x.value));
    else h = hash_combine(h, 0x5747);
    return true;
  }
  void size(std::size_t n) { h = hash_combine(h, n); }
  void key(const std::string& k) { h = hash_combine(h, std::hash<std::string>{}(k)); }
  bool mismatch(const TreePath&, const std::string&) { return false; }
};

/// Lockstep comparison of two skeletons' static leaves (structure is checked
/// by the walk itself).
struct StructureComparer {
  bool array(const TreePath&, const Array&, const Array&) { return true; }
  template <class X>
  bool static_leaf(const TreePath&, const X& a, const X& b) {
    if constexpr (std::equality_comparable<X>) return a == b;
    else return true;  // stateless
  }
  bool mismatch(const TreePath&, const std::string&) { return false; }
};

/// Puts leaves back into the non-empty Array slots of a skeleton, in order.
/// Every jitted call rebuilds its outputs with it, so it keeps the typed
/// walk (a static_leaf of its own), whose leaf calls inline.
struct LeafFiller {
  const std::vector<bool>& present;
  const std::vector<Array>& leaves;
  std::size_t slot = 0, next = 0;
  Array array(const TreePath&, const Array&) { return present[slot++] ? leaves[next++] : Array{}; }
  template <class X>
  X static_leaf(const TreePath&, const X& x) {
    return x;
  }
};

/// Collects the non-empty Array leaves, with their paths if asked.
template <bool kWithPath>
struct LeafCollector : ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::vector<Array> leaves;
  std::vector<std::pair<TreePath, Array>> with_path;
  bool array(const TreePath& p, const Array& a) {
    if (!a.has_value()) return true;
    if constexpr (kWithPath) with_path.emplace_back(p, a);
    else leaves.push_back(a);
    return true;
  }
};

}  // namespace detail

/// The structure of a pytree of type T without its Array leaves.
/// Usage: `auto [leaves, def] = eqx::tree_flatten(model); Model m2 = def.unflatten(leaves);`
template <class T>
class TreeDef {
 public:
  explicit TreeDef(const T& tree) : skeleton_(make_skeleton(tree, present_)) {
    for (bool p : present_) num_leaves_ += p;
    detail::StructureHasher h{0, &present_};
    TreePath path;
    detail::visit_tree(h, path, skeleton_);
    hash_ = h.h;
  }

  /// Number of (non-empty) Array leaves.
  std::size_t num_leaves() const { return num_leaves_; }
  std::size_t hash() const { return hash_; }

  /// Rebuilds a T with these leaves, in tree_leaves order.
  T unflatten(const std::vector<Array>& leaves) const {
    if (leaves.size() != num_leaves_)
      throw ValueError("eqx::TreeDef::unflatten: the tree has " + std::to_string(num_leaves_) +
                       " Array leaves but " + std::to_string(leaves.size()) +
                       " were given; pass exactly the leaves tree_flatten returned (or as many)");
    detail::LeafFiller filler{present_, leaves};
    TreePath path = TreePath::untracked();  // one tree: no mismatch to report
    return detail::rebuild_tree(filler, path, skeleton_);
  }

  /// The tree with every Array leaf empty (None).
  const T& skeleton() const { return skeleton_; }

  friend bool operator==(const TreeDef& a, const TreeDef& b) {
    if (a.hash_ != b.hash_ || a.present_ != b.present_) return false;
    detail::StructureComparer c;
    TreePath path;
    return detail::visit_tree(c, path, a.skeleton_, b.skeleton_);
  }

 private:
  static T make_skeleton(const T& tree, std::vector<bool>& present) {
    detail::SkeletonBuilder b;
    TreePath path;
    T skeleton = detail::rebuild_tree(b, path, tree);
    present = std::move(b.present);
    return skeleton;
  }

  std::vector<bool> present_;  // declared first: make_skeleton fills it
  T skeleton_;
  std::size_t num_leaves_ = 0;
  std::size_t hash_ = 0;
};

/// The Array leaves of `tree` (empty Arrays are not leaves), depth-first.
/// Usage: `for (const eqx::Array& w : eqx::tree_leaves(model)) ...`
template <class T>
std::vector<Array> tree_leaves(const T& tree) {
  detail::LeafCollector<false> c;
  TreePath path;
  detail::visit_tree(c, path, tree);
  return std::move(c.leaves);
}

/// The Array leaves with their paths, e.g. (".layers[1].weight", f32[64,64]).
template <class T>
std::vector<std::pair<TreePath, Array>> tree_leaves_with_path(const T& tree) {
  detail::LeafCollector<true> c;
  TreePath path;
  detail::visit_tree(c, path, tree);
  return std::move(c.with_path);
}

/// The TreeDef of `tree`.
template <class T>
TreeDef<T> tree_structure(const T& tree) {
  return TreeDef<T>(tree);
}

/// Splits `tree` into its Array leaves and its TreeDef.
/// Usage: `auto [leaves, treedef] = eqx::tree_flatten(model);`
template <class T>
std::pair<std::vector<Array>, TreeDef<T>> tree_flatten(const T& tree) {
  return {tree_leaves(tree), TreeDef<T>(tree)};
}

}  // namespace eqx

template <class T>
struct std::hash<eqx::TreeDef<T>> {
  std::size_t operator()(const eqx::TreeDef<T>& d) const { return d.hash(); }
};
