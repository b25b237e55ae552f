#pragma once
// exact_psqrt: a correctly rounded square root of an Eigen packet, for the
// sqrt kernel (prim/unary.hpp) and eqx::elementwise_kernel's lanes
// (transform/elementwise_kernel.hpp), which must agree bit for bit.
//
//   Packet r = eqx::detail::exact_psqrt(x);  // x: an Eigen::internal packet

#include <Eigen/Core>

#include "eqx/core/config.hpp"

namespace eqx::detail {

/// Correctly rounded sqrt on every packet width. Eigen 3.4's float packet
/// sqrt (SSE, AVX and AVX-512, under its default EIGEN_FAST_MATH) is a
/// reciprocal-sqrt estimate with one Newton step, off in the last bits and
/// zero for subnormal inputs; its double ones are the sqrt instruction.
/// In the ISA's namespace: the same overload compiled for another ISA is
/// another function (core/config.hpp).
inline namespace EQX_KERNELS_ABI {
template <class Packet>
Packet exact_psqrt(const Packet& x) {
  return Eigen::internal::psqrt(x);
}
#if defined(EIGEN_VECTORIZE_SSE2)
inline Eigen::internal::Packet4f exact_psqrt(const Eigen::internal::Packet4f& x) { return _mm_sqrt_ps(x); }
#endif
#if defined(EIGEN_VECTORIZE_AVX)
inline Eigen::internal::Packet8f exact_psqrt(const Eigen::internal::Packet8f& x) { return _mm256_sqrt_ps(x); }
#endif
#if defined(EIGEN_VECTORIZE_AVX512)
inline Eigen::internal::Packet16f exact_psqrt(const Eigen::internal::Packet16f& x) { return _mm512_sqrt_ps(x); }
inline Eigen::internal::Packet8d exact_psqrt(const Eigen::internal::Packet8d& x) { return _mm512_sqrt_pd(x); }
#endif
}  // inline namespace EQX_KERNELS_ABI

}  // namespace eqx::detail
