#pragma once
// TreePath: where a leaf sits in a pytree, printed as Python would index it:
// `.layers[1].weight`, `[0]` for a tuple element, `['key']` for a map entry.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eqx/core/config.hpp"

namespace eqx {

/// One step from a node to a child.
struct PathEntry {
  enum class Kind : std::uint8_t { field, index, key };
  Kind kind;
  std::string_view name;  // field name (static storage) or, for keys, a view of `key`
  std::int64_t index = 0;
  std::string key;  // map keys are copied: paths may outlive the tree

  std::string str() const;
  friend bool operator==(const PathEntry& a, const PathEntry& b) {
    return a.kind == b.kind && a.index == b.index && (a.kind == Kind::key ? a.key == b.key : a.name == b.name);
  }
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::string PathEntry::str() const {
  switch (kind) {
    case Kind::field: return "." + std::string(name);
    case Kind::index: return "[" + std::to_string(index) + "]";
    case Kind::key: return "['" + key + "']";
  }
  return "";
}
#endif  // EQX_KERNELS_HERE(GRAPH)

/// Path from the root of a pytree to one of its nodes.
/// Usage: `for (auto& [path, leaf] : eqx::tree_leaves_with_path(model)) fmt::print("{}\n", path.str());`
class TreePath {
 public:
  /// A path that records nothing, for walks that never say where they are
  /// (the jit cache-hit walk, unflatten): a push costs one branch instead
  /// of building an entry, which was 8% of a small jitted training step.
  static TreePath untracked() {
    TreePath p;
    p.tracking_ = false;
    return p;
  }
  bool tracking() const { return tracking_; }

  void push_field(std::string_view name) {
    if (tracking_) entries_.push_back({PathEntry::Kind::field, name, 0, {}});
  }
  void push_index(std::int64_t i) {
    if (tracking_) entries_.push_back({PathEntry::Kind::index, {}, i, {}});
  }
  void push_key(std::string_view key) {
    if (tracking_) entries_.push_back({PathEntry::Kind::key, {}, 0, std::string(key)});
  }
  void pop() {
    if (tracking_) entries_.pop_back();
  }
  /// Back to the root, keeping capacity (hot paths reuse one TreePath).
  void clear() { entries_.clear(); }

  const std::vector<PathEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  /// ".layers[1].weight"; the root prints as "" (use `display()` for messages).
  std::string str() const;
  /// str(), or "(root)" for the root itself, for error messages.
  std::string display() const;

  /// True if this path starts with `prefix` (e.g. ".layers[0]").
  bool starts_with(std::string_view prefix) const;

  friend bool operator==(const TreePath& a, const TreePath& b) { return a.entries_ == b.entries_; }

 private:
  std::vector<PathEntry> entries_;
  bool tracking_ = true;
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::string TreePath::str() const {
  std::string s;
  for (const auto& e : entries_) s += e.str();
  return s;
}

EQX_KERNEL_INLINE std::string TreePath::display() const { return entries_.empty() ? std::string("(root)") : str(); }

EQX_KERNEL_INLINE bool TreePath::starts_with(std::string_view prefix) const {
  return std::string_view(str()).starts_with(prefix);
}
#endif  // EQX_KERNELS_HERE(GRAPH)

}  // namespace eqx
