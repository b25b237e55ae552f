#pragma once
// eqx::Error and its subclasses: every failure eqx reports on bad input.
//
// Messages name the operation (or pytree path), what was expected, what was
// found, and how to fix it. Catch `eqx::Error` to handle all of them.

#include <stdexcept>
#include <string>

namespace eqx {

/// Base of every exception eqx throws on bad input.
/// Usage: `try { f(x); } catch (const eqx::Error& e) { log(e.what()); }`
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Shapes that do not fit an operation (broadcasting, matmul, reshape, ...).
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A dtype an operation does not accept, or two dtypes that do not combine.
class DTypeError : public Error {
 public:
  using Error::Error;
};

/// An index or axis outside the array it refers to.
class IndexError : public Error {
 public:
  using Error::Error;
};

/// Any other invalid argument (empty Array, bad parameter value, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A traced (abstract) Array was used where a concrete value is needed: a
/// C++ `if` on it, `item()`, `to_vector()`, `data()`, or printing its values.
class ConcretizationError : public Error {
 public:
  using Error::Error;
};

/// A tracing problem: a traced Array used after its trace ended (a leaked
/// tracer), or more traces than `eqx::debug::assert_max_traces` allows.
class TraceError : public Error {
 public:
  using Error::Error;
};

/// A check written into the computation failed while it ran:
/// `eqx::error_if` / `eqx::branched_error_if` found their predicate true
/// (eagerly, or inside filter_jit, filter_vmap, scan or cond).
class RuntimeError : public Error {
 public:
  using Error::Error;
};

}  // namespace eqx
