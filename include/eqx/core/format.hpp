#pragma once
// Printing Arrays, Shapes and DTypes with fmt, numpy-style:
//
//   fmt::format("{}", x)  ->  "f32[2,3]\n[[1. , 2.5, 3. ],\n [4. , 5. , 6. ]]"
//
// A header with dtype and shape, then the values in nested brackets, padded
// to a common width; arrays over 1000 elements show 3 items at each edge of
// every axis with "..." between, as numpy does.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"

namespace eqx {

namespace detail {

inline constexpr std::int64_t kPrintThreshold = 1000;
inline constexpr std::int64_t kEdgeItems = 3;
inline constexpr int kFloatPrecision = 8;  // numpy's default print precision

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
      std::vector<T> values;
      collect<T>(data.data(), 0, 0, values);
      if constexpr (std::is_floating_point_v<T>) format_floats(values);
      else for (T v : values) items_.push_back(format_element(v));
    });
    for (const auto& s : items_) width_ = std::max(width_, s.size());
  }

  std::string body() {
    next_ = 0;
    std::string out;
    emit(0, out);
    return out;
  }

 private:
  /// Floats as numpy's default repr (floatmode "maxprec", precision 8):
  /// positional unless a shown non-zero finite |x| is >= 1e8 or < 1e-4 or
  /// their max/min ratio exceeds 1e3, in which case all are scientific.
  template <class T>
  void format_floats(const std::vector<T>& values) {
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (T v : values)
      if (std::isfinite(v) && v != 0) {
        lo = std::min(lo, std::abs(static_cast<double>(v)));
        hi = std::max(hi, std::abs(static_cast<double>(v)));
      }
    const bool scientific = hi > 0 && (hi >= 1e8 || lo < 1e-4 || hi / lo > 1e3);
    for (T v : values) {
      if (!std::isfinite(v)) items_.push_back(format_element(v));
      else items_.push_back(scientific ? format_scientific(v) : format_positional(v));
    }
    if (scientific) pad_scientific();
    else align_decimal_points();
  }

  /// Significant digits of the shortest representation that reads back as v.
  template <class T>
  static int shortest_digits(T v) {
    std::string s = fmt::format("{}", v), digits;
    for (char c : s.substr(0, s.find('e')))
      if (c >= '0' && c <= '9') digits += c;
    auto first = digits.find_first_not_of('0');
    if (first == std::string::npos) return 1;
    return static_cast<int>(digits.find_last_not_of('0') - first + 1);
  }

  static void strip_fraction_zeros(std::string& mantissa) {
    if (mantissa.find('.') == std::string::npos) {
      mantissa += '.';
      return;
    }
    while (mantissa.back() == '0') mantissa.pop_back();
  }

  /// "1.", "0.25", "0.33333333": shortest repr, at most 8 fractional digits.
  template <class T>
  static std::string format_positional(T v) {
    std::string s = fmt::format("{}", v);  // positional for 1e-4 <= |v| < 1e8
    auto dot = s.find('.');
    if (dot != std::string::npos && s.size() - dot - 1 > static_cast<std::size_t>(kFloatPrecision)) s = fmt::format("{:.{}f}", v, kFloatPrecision);
    strip_fraction_zeros(s);
    return s;
  }

  /// "1.e-05", "2.5e+08": shortest mantissa, at most 8 fractional digits.
  template <class T>
  static std::string format_scientific(T v) {
    int precision = std::min(shortest_digits(v) - 1, kFloatPrecision);
    std::string s = fmt::format("{:.{}e}", v, precision);
    auto e = s.find('e');
    std::string mantissa = s.substr(0, e);
    strip_fraction_zeros(mantissa);
    return mantissa + s.substr(e);
  }

  /// numpy pads floats so the decimal points line up: "1. ", "2.5"; nan and
  /// inf are right-aligned in the same width.
  void align_decimal_points() {
    std::size_t frac = 0;
    for (const auto& s : items_)
      if (auto dot = s.find('.'); dot != std::string::npos) frac = std::max(frac, s.size() - dot - 1);
    for (auto& s : items_)
      if (auto dot = s.find('.'); dot != std::string::npos) s += std::string(frac - (s.size() - dot - 1), ' ');
  }

  /// Scientific floats share one mantissa precision (zero-padded) and one
  /// exponent width: "1.5e+00", "2.0e+03".
  void pad_scientific() {
    std::size_t frac = 0, exp_digits = 0;
    for (const auto& s : items_)
      if (auto e = s.find('e'); e != std::string::npos) {
        frac = std::max(frac, e - s.find('.') - 1);
        exp_digits = std::max(exp_digits, s.size() - e - 2);
      }
    for (auto& s : items_)
      if (auto e = s.find('e'); e != std::string::npos) {
        std::string mantissa = s.substr(0, e), sign = s.substr(e + 1, 1), exponent = s.substr(e + 2);
        mantissa += std::string(frac - (e - s.find('.') - 1), '0');
        s = mantissa + 'e' + sign + std::string(exp_digits - exponent.size(), '0') + exponent;
      }
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
  void collect(const T* data, std::size_t axis, std::int64_t offset, std::vector<T>& values) {
    if (axis == shape_.size()) {
      values.push_back(data[offset]);
      return;
    }
    for (auto i : shown(axis))
      if (i >= 0) collect(data, axis + 1, offset + i * strides_[axis], values);
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
/// "Traced<f32[3]>" for an abstract Array (it has no values to print),
/// "ShapeDtypeStruct<f32[3]>" for a shape-only one.
inline std::string to_string(const Array& a) {
  if (!a.has_value()) return "None";
  if (detail::ArrayAccess::shape_only(a)) return "ShapeDtypeStruct<" + type_string(a) + ">";
  if (a.is_abstract()) return "Traced<" + type_string(a) + ">";
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
