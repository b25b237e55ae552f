#pragma once
// Printing Arrays, Shapes and DTypes with fmt, numpy-style:
//
//   fmt::format("{}", x)  ->  "f32[2,3]\n[[1. , 2.5, 3. ],\n [4. , 5. , 6. ]]"
//
// A header with dtype and shape, then the values in nested brackets, padded
// to a common width; arrays over 1000 elements show 3 items at each edge of
// every axis with "..." between, as numpy does.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"

namespace eqx {

namespace detail {

inline constexpr std::int64_t kPrintThreshold = 1000;
inline constexpr std::int64_t kEdgeItems = 3;

template <class T>
std::string format_element(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "True" : "False";
  } else if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    std::string s = fmt::format("{}", v);
    if (s.find_first_of(".e") == std::string::npos) s += ".";  // numpy's "1." for whole floats
    return s;
  } else {
    return fmt::format("{}", v);
  }
}

/// Lays out the values of an array as numpy's repr body does.
class ArrayPrinter {
 public:
  ArrayPrinter(const Array& a) : shape_(a.shape()), summarize_(a.size() > kPrintThreshold) {
    visit_dtype(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      auto data = a.data<T>();
      strides_ = contiguous_strides(shape_);
      collect<T>(data.data(), 0, 0);
    });
    if (is_floating(a.dtype())) align_decimal_points();
    for (const auto& s : items_) width_ = std::max(width_, s.size());
  }

  std::string body() {
    next_ = 0;
    std::string out;
    emit(0, out);
    return out;
  }

 private:
  /// numpy pads floats so the decimal points line up: "1. ", "2.5".
  void align_decimal_points() {
    std::size_t frac = 0;
    for (const auto& s : items_) {
      if (s.find('e') != std::string::npos || s.find('n') != std::string::npos) return;  // scientific, inf, nan
      frac = std::max(frac, s.size() - s.find('.') - 1);
    }
    for (auto& s : items_) s += std::string(frac - (s.size() - s.find('.') - 1), ' ');
  }

  std::vector<std::int64_t> shown(std::size_t axis) const {
    std::vector<std::int64_t> idx;
    std::int64_t n = shape_[axis];
    if (summarize_ && n > 2 * kEdgeItems) {
      for (std::int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);  // "..."
      for (std::int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    } else {
      for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  template <class T>
  void collect(const T* data, std::size_t axis, std::int64_t offset) {
    if (axis == shape_.size()) {
      items_.push_back(format_element(data[offset]));
      return;
    }
    for (auto i : shown(axis))
      if (i >= 0) collect(data, axis + 1, offset + i * strides_[axis]);
  }

  void emit(std::size_t axis, std::string& out) {
    if (axis == shape_.size()) {
      const std::string& s = items_[next_++];
      out += std::string(width_ - s.size(), ' ') + s;
      return;
    }
    out += '[';
    const std::size_t depth = shape_.size() - axis;  // axes still to open, this one included
    std::string indent(axis + 1, ' ');
    bool first = true;
    for (auto i : shown(axis)) {
      if (!first) {
        out += ',';
        if (depth == 1) out += ' ';
        else out += std::string(depth - 1, '\n') + indent;
      }
      first = false;
      if (i < 0) out += "...";
      else emit(axis + 1, out);
    }
    out += ']';
  }

  Shape shape_, strides_;
  bool summarize_;
  std::vector<std::string> items_;
  std::size_t width_ = 0, next_ = 0;
};

}  // namespace detail

/// "f32[2,3]": dtype and shape, as JAX prints abstract values.
inline std::string type_string(const Array& a) {
  if (!a.has_value()) return "None";
  return std::string(short_name(a.dtype())) + a.shape().str();
}

/// Header and values of `a`, numpy-style; "None" for the empty Array.
inline std::string to_string(const Array& a) {
  if (!a.has_value()) return "None";
  std::string body = detail::ArrayPrinter(a).body();
  return type_string(a) + (body.find('\n') == std::string::npos ? " " : "\n") + body;
}

}  // namespace eqx

template <>
struct fmt::formatter<eqx::Array> : fmt::formatter<std::string_view> {
  auto format(const eqx::Array& a, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(eqx::to_string(a), ctx);
  }
};

template <>
struct fmt::formatter<eqx::Shape> : fmt::formatter<std::string_view> {
  auto format(const eqx::Shape& s, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(s.str(), ctx);
  }
};

template <>
struct fmt::formatter<eqx::DType> : fmt::formatter<std::string_view> {
  auto format(eqx::DType d, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(eqx::dtype_name(d), ctx);
  }
};
