#pragma once
// eqx::Array: an immutable n-dimensional array with shared storage.
//
// Copying an Array is O(1) (it shares its buffer, like a jax.Array); no
// operation ever writes into an existing Array. A default-constructed Array
// is empty ("None" in Equinox's filtered trees): it has no dtype or shape,
// and any operation on it throws eqx::ValueError.
//
// Inside a trace (filter_jit, filter_make_jaxpr, ...) operations return
// abstract Arrays: a shape and dtype plus a reference to a value of the
// graph being built, but no data. Reading the values of an abstract Array
// throws eqx::ConcretizationError. A shape-only Array (eqx::shape_dtype_struct,
// and what eqx::filter_eval_shape returns) is abstract too, with no trace:
// JAX's ShapeDtypeStruct, a description of an Array that allocates nothing.
//
// A buffer donated to a jitted call (eqx::filter_jit's `donate`) may hold
// that call's outputs afterwards: the Storage counts donations, each Array
// remembers the count it was made at, and reading data through a handle
// made before the last donation throws eqx::ValueError.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/buffer_pool.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/core/shape.hpp"

namespace eqx {

namespace detail {

/// A 64-byte aligned heap buffer; kernels may use aligned vector loads.
/// Large ones come from, and go back to, the BufferPool.
class Storage {
 public:
  static constexpr std::size_t kAlign = BufferPool::kAlign;
  explicit Storage(std::size_t nbytes)
      : data_(nbytes ? BufferPool::instance().allocate(nbytes) : nullptr), nbytes_(nbytes) {}
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (data_) BufferPool::instance().release(data_, nbytes_);
  }
  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }

  /// How many times the buffer was donated: Arrays made at an older count
  /// are stale.
  std::uint32_t generation() const { return generation_.load(std::memory_order_relaxed); }
  /// What the last donation was to (a string that lives for the process), or null.
  const char* donated_to() const { return donated_to_.load(std::memory_order_relaxed); }
  /// Records a donation to `site`: handles made before it become stale.
  void donate(const char* site) const {
    donated_to_.store(site, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  void* data_;
  std::size_t nbytes_;
  mutable std::atomic<std::uint32_t> generation_{0};
  mutable std::atomic<const char*> donated_to_{nullptr};
};

/// The allocator of Storage objects (with their shared_ptr control block,
/// one block of about 64 bytes): BufferPool's per-thread small blocks, so
/// an eager op on small arrays does not call malloc for its result's handle.
template <class T>
struct PooledAllocator {
  using value_type = T;
  PooledAllocator() = default;
  template <class U>
  PooledAllocator(const PooledAllocator<U>&) {}  // NOLINT: rebinding, as std::allocator
  T* allocate(std::size_t n) { return static_cast<T*>(BufferPool::instance().allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { BufferPool::instance().release(p, n * sizeof(T)); }
  friend bool operator==(const PooledAllocator&, const PooledAllocator&) { return true; }
};

struct ArrayAccess;
struct Tracer;  // a value of a graph being traced (eqx/ir/trace.hpp)

}  // namespace detail

/// Immutable n-dimensional array: dtype + row-major shape + shared buffer.
/// Usage: `eqx::Array x = eqx::array({1.f, 2.f, 3.f}); x.shape() == eqx::Shape{3};`
class Array {
 public:
  /// The empty Array ("None"): holds nothing; operations on it throw.
  Array() = default;

  /// False for the empty Array ("None").
  bool has_value() const { return storage_ != nullptr || tracer_ != nullptr || shape_only_; }

  /// True inside a trace, and for shape-only Arrays: the Array has a shape
  /// and dtype but no values (yet).
  bool is_abstract() const { return tracer_ != nullptr || shape_only_; }

  /// True once this Array's buffer was donated to a jitted call
  /// (eqx::filter_jit with `donate`): its data can no longer be read.
  /// Usage: `step(model, x); if (model.weight.is_donated()) ...`
  bool is_donated() const { return storage_ && storage_->generation() != generation_; }

  /// The truth of a one-element Array, so `if (eqx::all(x > 0))` works
  /// eagerly. Throws ConcretizationError on an abstract Array (use
  /// eqx::where, eqx::cond or eqx::error_if under a trace).
  explicit operator bool() const {
    require_concrete("converting to bool");
    if (size() != 1)
      throw ValueError("eqx: the truth value of an Array with shape " + shape_.str() +
                       " is ambiguous; reduce it first with eqx::any or eqx::all");
    return item<bool>();
  }

  const Shape& shape() const {
    require_value("shape()");
    return shape_;
  }
  std::size_t ndim() const { return shape().size(); }
  /// Number of elements (1 for rank 0, 0 if any dimension is 0).
  std::int64_t size() const { return shape().numel(); }
  DType dtype() const {
    require_value("dtype()");
    return dtype_;
  }

  /// The only element, converted to T. Throws unless size() == 1.
  /// Usage: `float loss = eqx::sum(x).item<float>();`
  template <Element T>
  T item() const {
    require_concrete("item()");
    if (size() != 1)
      throw ValueError("eqx: item() needs an Array with exactly one element, got shape " + shape_.str() +
                       "; reduce it first (eqx::sum, eqx::mean) or index it");
    return visit_dtype(dtype_, [&](auto tag) { return detail::convert_value<T>(*static_cast<const decltype(tag)*>(raw())); });
  }

  /// All elements in row-major order, converted to T.
  /// Usage: `std::vector<float> v = x.to_vector<float>();`
  template <Element T>
  std::vector<T> to_vector() const {
    require_concrete("to_vector()");
    std::vector<T> out(static_cast<std::size_t>(size()));
    visit_dtype(dtype_, [&](auto tag) {
      using S = decltype(tag);
      const S* p = static_cast<const S*>(raw());
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = detail::convert_value<T>(p[i]);
    });
    return out;
  }

  /// Read-only view of the elements, row-major. T must be the exact element
  /// type (float for float32, ...); use to_vector<T>() to convert.
  /// Usage: `for (float v : x.data<float>()) ...`
  /// Not on a temporary Array: the span would outlive the buffer.
  template <Element T>
  std::span<const T> data() const&& = delete;

  template <Element T>
  std::span<const T> data() const& {
    require_concrete("data()");
    if (dtype_of<T>() != dtype_)
      throw DTypeError(std::string("eqx: data<") + std::string(dtype_name(dtype_of<T>())) + ">() on an Array of dtype " +
                       std::string(dtype_name(dtype_)) + "; call data<T>() with the matching type, or to_vector<T>() to convert");
    return {static_cast<const T*>(raw()), static_cast<std::size_t>(size())};
  }

  /// Untyped pointer to the first element (nullptr for size 0).
  const void* raw_data() const {
    require_concrete("raw_data()");
    return raw();
  }

  /// True if both share one buffer (O(1) copies do). Used to find aliasing.
  bool same_storage(const Array& other) const { return storage_ && storage_ == other.storage_; }
  /// True if both are the same traced value (copies of one abstract Array).
  bool same_tracer(const Array& other) const { return tracer_ && tracer_ == other.tracer_; }

 private:
  friend struct detail::ArrayAccess;
  Array(Shape shape, DType dtype, std::shared_ptr<const detail::Storage> storage)
      : shape_(std::move(shape)),
        dtype_(dtype),
        generation_(storage ? storage->generation() : 0),
        storage_(std::move(storage)) {}

  Array(Shape shape, DType dtype, std::shared_ptr<const detail::Tracer> tracer)
      : shape_(std::move(shape)), dtype_(dtype), tracer_(std::move(tracer)) {}

  Array(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype), shape_only_(true) {}

  const void* raw() const { return storage_->data(); }
  void require_value(const char* what) const {
    if (!has_value())
      throw ValueError(std::string("eqx: ") + what +
                       " on an empty Array (None); this leaf was filtered out or never set");
  }
  void require_concrete(const char* what) const {
    if (storage_ && storage_->generation() == generation_) [[likely]]
      return;
    throw_not_concrete(what);
  }
  // Why `what` cannot read this Array: empty, donated, shape-only or traced.
  [[noreturn]] void throw_not_concrete(const char* what) const;
  [[noreturn]] void throw_donated(const char* what) const;

  Shape shape_;
  DType dtype_ = DType::float32;
  bool shape_only_ = false;  // a shape and dtype with neither storage nor trace
  std::uint32_t generation_ = 0;  // the storage's donation count when this handle was made
  std::shared_ptr<const detail::Storage> storage_;
  std::shared_ptr<const detail::Tracer> tracer_;
};

// Compiled in family GRAPH (with eqx::kernels, once, in the library).
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE void Array::throw_not_concrete(const char* what) const {
  require_value(what);
  if (storage_) throw_donated(what);
  if (shape_only_)
    throw ConcretizationError(
        std::string("eqx: ") + what + " on a shape-only Array " + std::string(short_name(dtype_)) + shape_.str() +
        " (from eqx::filter_eval_shape, eqx::filter_make_jaxpr or eqx::shape_dtype_struct): it describes an Array "
        "and holds no values. Compute the real value (call the function itself), or load it (eqx::tree_deserialise_leaves with this "
        "tree as `like`)");
  throw ConcretizationError(
      std::string("eqx: ") + what + " on an abstract (traced) Array " + std::string(short_name(dtype_)) + shape_.str() +
      ": inside eqx::filter_jit and other transformations an Array has no value until the compiled function "
      "runs. Branch on it with eqx::where (elementwise) or eqx::cond, check it with eqx::error_if, or mark the "
      "argument static (pass it as a non-Array leaf) if it really is a compile-time constant");
}

EQX_KERNEL_INLINE void Array::throw_donated(const char* what) const {
  const char* site = storage_->donated_to();
  throw ValueError(std::string("eqx: ") + what + " on an Array " + std::string(short_name(dtype_)) + shape_.str() +
                   " whose buffer was donated to " + (site ? site : "a jitted call") +
                   "; the call may have written its outputs there. Use the values the call returned instead of "
                   "the donated Array, or do not donate this argument (eqx::Donate::none, or "
                   "eqx::Donate::all_except_first with it as the first argument)");
}
#endif

namespace detail {

/// Internal construction and write access, for kernels filling new Arrays.
struct ArrayAccess {
  /// A fresh, uninitialised Array; the caller fills it before publishing it.
  static Array allocate(Shape shape, DType dtype);
  static void* mutable_data(const Array& a) { return a.storage_->data(); }
  /// References to a concrete Array's buffer (its handles and their copies).
  static long storage_use_count(const Array& a) { return a.storage_.use_count(); }
  /// Donates a's buffer to `site`: a and every copy of it become stale.
  static void donate(const Array& a, const char* site) { a.storage_->donate(site); }
  /// A current handle on a's (donated) buffer, typed `shape` and `dtype`
  /// (of the same size): the output that reuses it.
  static Array take_over(const Array& a, const Shape& shape, DType dtype) { return Array(shape, dtype, a.storage_); }
  /// An abstract Array standing for a traced value.
  static Array abstract(Shape shape, DType dtype, std::shared_ptr<const Tracer> tracer) {
    return Array(std::move(shape), dtype, std::move(tracer));
  }
  static const Tracer* tracer(const Array& a) { return a.tracer_.get(); }
  /// True for a shape-only Array (eqx::shape_dtype_struct).
  static bool shape_only(const Array& a) { return a.shape_only_; }
  static Array shape_only(Shape shape, DType dtype) { return Array(std::move(shape), dtype); }
  /// Identity of a concrete Array's buffer (equal for copies).
  static const void* storage_id(const Array& a) { return a.storage_.get(); }
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Array ArrayAccess::allocate(Shape shape, DType dtype) {
  for (auto d : shape)  // check each: an even count of negatives has a positive product
    if (d < 0) throw ShapeError("eqx: negative dimension in shape " + shape.str());
  std::int64_t n = shape.numel();
  auto storage =
      std::allocate_shared<const Storage>(PooledAllocator<Storage>{}, static_cast<std::size_t>(n) * itemsize(dtype));
  return Array(std::move(shape), dtype, std::move(storage));
}
#endif  // EQX_KERNELS_HERE(GRAPH)

}  // namespace detail

/// An Array with a shape and dtype but no values, which allocates nothing
/// (JAX's ShapeDtypeStruct): an argument of eqx::filter_eval_shape, or the
/// declared type of a result (eqx::filter_pure_callback). Reading its values
/// throws eqx::ConcretizationError; using it in an operation throws
/// eqx::TraceError.
/// Usage: `eqx::Array x = eqx::shape_dtype_struct({64, 3}, eqx::float32);`
inline Array shape_dtype_struct(Shape shape, DType dtype) {
  for (auto d : shape)
    if (d < 0) throw ShapeError("eqx::shape_dtype_struct: negative dimension in shape " + shape.str());
  return detail::ArrayAccess::shape_only(std::move(shape), dtype);
}

/// An Array holding a copy of `values`, with `shape` (row-major).
/// Usage: `eqx::array(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3})`
template <Element T>
Array array(const std::vector<T>& values, Shape shape) {
  if (shape.numel() != static_cast<std::int64_t>(values.size()))
    throw ShapeError("eqx::array: " + std::to_string(values.size()) + " values do not fill shape " + shape.str() +
                     " (" + std::to_string(shape.numel()) + " elements); pass a shape whose product is the number of values");
  Array a = detail::ArrayAccess::allocate(std::move(shape), dtype_of<T>());
  T* out = static_cast<T*>(detail::ArrayAccess::mutable_data(a));
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];  // element-wise: std::vector<bool> has no data()
  return a;
}

/// A rank-1 Array from a list of values.
/// Usage: `eqx::array({1.f, 2.f})` is f32[2]; `eqx::array({1, 2})` is i32[2].
template <Element T>
Array array(std::initializer_list<T> values) {
  return array(std::vector<T>(values), Shape{static_cast<std::int64_t>(values.size())});
}

/// A rank-1 Array from a vector.
template <Element T>
Array array(const std::vector<T>& values) {
  return array(values, Shape{static_cast<std::int64_t>(values.size())});
}

/// A rank-0 Array. Usage: `eqx::array(3.0f)` is f32[]; `eqx::array(true)` is bool[].
template <Element T>
Array array(T value) {
  Array a = detail::ArrayAccess::allocate(Shape{}, dtype_of<T>());
  *static_cast<T*>(detail::ArrayAccess::mutable_data(a)) = value;
  return a;
}

}  // namespace eqx
