#pragma once
// tree_serialise_leaves / tree_deserialise_leaves in Equinox's byte format.
//
// The file is one .npy record after another, with no header, count or
// names, in leaf order: every non-empty Array leaf, and every scalar leaf
// (Equinox writes Python scalars as 0-d records: bool as |b1, integers as
// <i8, double as <f8; a C++ float is written as <f4). Nothing is written for
// other leaves (strings, functions, enums) or for eqx::Static fields. So a
// file written by Equinox for the same model structure loads here, and a
// file written here loads in Equinox.
//
// Loading reads and checks every record against `like` (dtype and shape)
// before it builds anything, and throws naming the leaf's path.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <random>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/format.hpp"
#include "eqx/io/npy.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

namespace detail {

/// Scalar leaves Equinox writes: bool, integers and floating point.
template <class X>
inline constexpr bool is_serialised_scalar_v = std::is_arithmetic_v<X>;

template <class X>
std::string scalar_descr() {
  if constexpr (std::is_same_v<X, bool>) return "|b1";
  else if constexpr (std::is_integral_v<X>) return "<i8";
  else if constexpr (std::is_same_v<X, float>) return "<f4";
  else return "<f8";
}

struct LeafWriter : ArrayLeafVisitor {
  std::ostream& out;
  bool array(const TreePath&, const Array& a) {
    if (a.has_value()) write_npy(out, a);
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath&, const X& x) {
    if constexpr (is_serialised_scalar_v<X>) {
      if constexpr (std::is_same_v<X, bool>) {
        const unsigned char b = x ? 1 : 0;
        write_npy_record(out, "|b1", Shape{}, &b, 1);
      } else if constexpr (std::is_integral_v<X>) {
        const auto v = static_cast<std::int64_t>(x);
        write_npy_record(out, "<i8", Shape{}, &v, 8);
      } else {
        write_npy_record(out, scalar_descr<X>(), Shape{}, &x, sizeof(X));
      }
    }
    return true;
  }
};

/// Reads the value of a 0-d numeric record as X.
template <class X>
X read_scalar_record(std::istream& in, const NpyHeader& h, const TreePath& path) {
  auto fail = [&](const std::string& why) -> X {
    throw IOError("eqx::tree_deserialise_leaves: at " + path.display() + " expected a scalar " + scalar_descr<X>() +
                  " record, the file has " + h.str() + " (" + why + ")");
  };
  if (h.shape.numel() != 1 || !h.shape.empty()) return fail("not a 0-d record");
  const bool kind_ok = std::is_same_v<X, bool> ? h.kind == 'b'
                       : std::is_integral_v<X> ? (h.kind == 'i' || h.kind == 'u' || h.kind == 'b')
                                               : (h.kind == 'f' || h.kind == 'i' || h.kind == 'u');
  if (!kind_ok || (h.item_size != 1 && h.item_size != 2 && h.item_size != 4 && h.item_size != 8))
    return fail("wrong kind of number");
  unsigned char raw[8] = {};
  read_exact(in, raw, h.item_size, "a scalar record");
  if (h.byte_order == '>') std::reverse(raw, raw + h.item_size);
  auto as_int = [&]() -> std::int64_t {
    switch (h.item_size) {
      case 1: return h.kind == 'i' ? std::int64_t(std::int8_t(raw[0])) : std::int64_t(raw[0]);
      case 2: { std::uint16_t u; std::memcpy(&u, raw, 2); return h.kind == 'i' ? std::int64_t(std::int16_t(u)) : u; }
      case 4: { std::uint32_t u; std::memcpy(&u, raw, 4); return h.kind == 'i' ? std::int64_t(std::int32_t(u)) : u; }
      default: { std::int64_t v; std::memcpy(&v, raw, 8); return v; }
    }
  };
  if (h.kind == 'f') {
    double v;
    if (h.item_size == 4) { float f; std::memcpy(&f, raw, 4); v = f; }
    else if (h.item_size == 8) std::memcpy(&v, raw, 8);
    else return fail("unsupported float size");
    return convert_value<X>(v);
  }
  return convert_value<X>(as_int());
}

/// Phase 1 of loading: read and check one record per leaf of `like`.
struct LeafReader : ArrayLeafVisitor {
  std::istream& in;
  std::vector<Array> arrays;
  std::vector<std::vector<unsigned char>> scalars;  // raw bytes of each scalar leaf, as its C++ type

  bool array(const TreePath& path, const Array& like) {
    if (!like.has_value()) return true;
    NpyHeader h = read_header(path, type_string(like));
    DType dt = npy_dtype(h, "tree_deserialise_leaves");
    Shape shape = h.shape;
    if (dt != like.dtype() || shape != like.shape())
      throw IOError("eqx::tree_deserialise_leaves: at " + path.display() + " expected " + type_string(like) +
                    ", the file has " + h.str() + "; the file was written for a model of another structure, or "
                    "`like` does not match it");
    arrays.push_back(read_npy_data(in, h, "tree_deserialise_leaves"));
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath& path, const X&) {
    if constexpr (is_serialised_scalar_v<X>) {
      NpyHeader h = read_header(path, "a scalar " + scalar_descr<X>());
      X v = read_scalar_record<X>(in, h, path);
      std::vector<unsigned char> bytes(sizeof(X));
      std::memcpy(bytes.data(), &v, sizeof(X));
      scalars.push_back(std::move(bytes));
    }
    return true;
  }

  NpyHeader read_header(const TreePath& path, const std::string& expected) {
    if (in.peek() == std::char_traits<char>::eof())
      throw IOError("eqx::tree_deserialise_leaves: the file ends before the leaf at " + path.display() + " (expected " +
                    expected + "); it was written for a smaller model, or is truncated");
    try {
      return read_npy_header(in);
    } catch (const IOError& e) {
      throw IOError("eqx::tree_deserialise_leaves: at " + path.display() + ": " + e.what());
    }
  }
};

/// Phase 2 of loading: rebuild `like` with what phase 1 read.
struct LeafLoader {
  const LeafReader& read;
  std::size_t next_array = 0, next_scalar = 0;
  Array array(const TreePath&, const Array& like) { return like.has_value() ? read.arrays[next_array++] : Array{}; }
  template <class X>
  X static_leaf(const TreePath&, const X& like) {
    if constexpr (is_serialised_scalar_v<X>) {
      X v;
      std::memcpy(&v, read.scalars[next_scalar++].data(), sizeof(X));
      return v;
    } else {
      return like;
    }
  }
};

/// Equinox appends ".eqx" to a path without a suffix.
inline std::filesystem::path with_default_suffix(std::filesystem::path p) {
  if (!p.has_extension()) p += ".eqx";
  return p;
}

/// Writes a file through a temporary file in the same folder, renamed at the
/// end, so a failed write never leaves a half-written or lost file.
template <class F>
void write_file_atomically(const std::filesystem::path& target, const std::string& who, F&& write) {
  std::filesystem::path tmp = target;
  tmp += ".tmp" + std::to_string(std::random_device{}());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw IOError(who + ": cannot open " + tmp.string() + " for writing");
      write(out);
      out.flush();
      if (!out) throw IOError(who + ": writing " + tmp.string() + " failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, target, ec);
    if (ec) throw IOError(who + ": cannot rename " + tmp.string() + " to " + target.string() + ": " + ec.message());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

}  // namespace detail

/// Writes the leaves of `tree` to a stream, in Equinox's format.
template <class T>
void tree_serialise_leaves(std::ostream& out, const T& tree) {
  detail::LeafWriter w{{}, out};
  TreePath path;
  detail::visit_tree(w, path, tree);
  if (!out) throw IOError("eqx::tree_serialise_leaves: writing failed (disk full or stream closed?)");
}

/// Writes the leaves of `tree` to a file (".eqx" is appended when the path
/// has no suffix, as Equinox does). The file is replaced atomically: the
/// leaves go to a temporary file in the same folder, renamed at the end, so
/// a failed write never leaves a half-written or lost model.
/// Usage: `eqx::tree_serialise_leaves("model.eqx", model);`
template <class T>
void tree_serialise_leaves(const std::filesystem::path& file, const T& tree) {
  detail::write_file_atomically(detail::with_default_suffix(file), "eqx::tree_serialise_leaves",
                                [&](std::ostream& out) { tree_serialise_leaves(out, tree); });
}

/// Reads leaves written by tree_serialise_leaves (or by Equinox) into a tree
/// shaped like `like`. Every record is checked against `like` before
/// anything is built; a mismatch, truncation or corruption throws
/// eqx::IOError naming the leaf's path.
template <class T>
T tree_deserialise_leaves(std::istream& in, const T& like) {
  detail::LeafReader r{{}, in, {}, {}};
  TreePath path;
  detail::visit_tree(r, path, like);
  detail::LeafLoader loader{r};
  return detail::rebuild_tree(loader, path, like);
}

/// tree_deserialise_leaves from a file (".eqx" appended without a suffix).
/// Usage: `Model m = eqx::tree_deserialise_leaves("model.eqx", like);`
template <class T>
T tree_deserialise_leaves(const std::filesystem::path& file, const T& like) {
  const std::filesystem::path source = detail::with_default_suffix(file);
  std::ifstream in(source, std::ios::binary);
  if (!in) throw IOError("eqx::tree_deserialise_leaves: cannot open " + source.string());
  return tree_deserialise_leaves(in, like);
}

}  // namespace eqx
