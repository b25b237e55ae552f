#pragma once
// Shape: the dimensions of an Array, a small vector of int64 stored inline
// up to rank 6 (no allocation for the common case) and on the heap beyond.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "eqx/core/config.hpp"

namespace eqx {

/// Row-major dimensions of an Array. Rank 0 (`Shape{}`) is a scalar.
/// Usage: `eqx::Shape s{2, 3}; s[1] == 3; s.size() == 2;`
class Shape {
 public:
  using value_type = std::int64_t;
  using size_type = std::size_t;
  using iterator = std::int64_t*;
  using const_iterator = const std::int64_t*;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  template <std::input_iterator It>
  Shape(It first, It last) {
    assign(first, last);
  }
  /// A shape of `rank` dimensions, each `fill`.
  static Shape filled(std::size_t rank, std::int64_t fill) {
    Shape s;
    s.resize(rank, fill);
    return s;
  }

  Shape(const Shape& o) { assign(o.begin(), o.end()); }
  Shape(Shape&& o) noexcept { steal(o); }
  Shape& operator=(const Shape& o) {
    if (this != &o) {
      size_ = 0;
      assign(o.begin(), o.end());
    }
    return *this;
  }
  Shape& operator=(Shape&& o) noexcept {
    if (this != &o) {
      heap_.reset();
      steal(o);
    }
    return *this;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::int64_t* data() { return heap_ ? heap_.get() : inline_; }
  const std::int64_t* data() const { return heap_ ? heap_.get() : inline_; }
  std::int64_t& operator[](std::size_t i) { return data()[i]; }
  std::int64_t operator[](std::size_t i) const { return data()[i]; }
  std::int64_t back() const { return data()[size_ - 1]; }
  iterator begin() { return data(); }
  iterator end() { return data() + size_; }
  const_iterator begin() const { return data(); }
  const_iterator end() const { return data() + size_; }

  void push_back(std::int64_t d) {
    reserve(size_ + 1);
    data()[size_++] = d;
  }
  void pop_back() { --size_; }
  void resize(std::size_t n, std::int64_t fill = 0) {
    reserve(n);
    for (std::size_t i = size_; i < n; ++i) data()[i] = fill;
    size_ = n;
  }
  void insert(std::size_t pos, std::int64_t d) {
    reserve(size_ + 1);
    std::int64_t* p = data();
    for (std::size_t i = size_; i > pos; --i) p[i] = p[i - 1];
    p[pos] = d;
    ++size_;
  }
  void erase(std::size_t pos) {
    std::int64_t* p = data();
    for (std::size_t i = pos; i + 1 < size_; ++i) p[i] = p[i + 1];
    --size_;
  }

  /// Number of elements: the product of the dimensions (1 for rank 0).
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : *this) n *= d;
    return n;
  }

  friend bool operator==(const Shape& a, const Shape& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

  /// "[2,3]", as in the `f32[2,3]` headers.
  std::string str() const;

 private:
  static constexpr std::size_t kInline = 6;

  template <class It>
  void assign(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<std::int64_t>(*first));
  }
  void reserve(std::size_t n) {
    if (n <= capacity()) return;
    std::size_t cap = std::max(n, 2 * capacity());
    auto fresh = std::make_unique<std::int64_t[]>(cap);
    std::copy(begin(), end(), fresh.get());
    heap_ = std::move(fresh);
    heap_cap_ = cap;
  }
  std::size_t capacity() const { return heap_ ? heap_cap_ : kInline; }
  void steal(Shape& o) {
    size_ = o.size_;
    if (o.heap_) {
      heap_ = std::move(o.heap_);
      heap_cap_ = o.heap_cap_;
    } else {
      std::copy(o.inline_, o.inline_ + o.size_, inline_);
    }
    o.size_ = 0;
  }

  // Not zeroed: only the first size_ entries are ever read, and an eager
  // op builds several Shapes (zeroing them showed in its profile).
  std::int64_t inline_[kInline];
  std::unique_ptr<std::int64_t[]> heap_;
  std::size_t heap_cap_ = 0;
  std::size_t size_ = 0;
};

// Compiled in family GRAPH (with eqx::kernels, once, in the library).
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE std::string Shape::str() const {
  std::string s = "[";
  for (std::size_t i = 0; i < size_; ++i) {
    if (i) s += ',';
    s += std::to_string(data()[i]);
  }
  return s + "]";
}
#endif

/// Row-major strides (in elements) of a contiguous array of `shape`.
inline Shape contiguous_strides(const Shape& shape) {
  Shape st = Shape::filled(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) st[i - 1] = st[i] * shape[i];
  return st;
}

}  // namespace eqx
