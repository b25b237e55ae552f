#pragma once
// Build configuration: header-only (default) or compiled kernels.
//
// By default every primitive's kernel is an inline function in its header,
// so `#include <eqx/eqx.hpp>` is all a program needs. Kernels are the
// expensive part to compile (one Eigen loop per operation and dtype), so,
// as fmt does, eqx also offers an opt-in mode: link the CMake target
// `eqx::kernels` (which defines EQX_COMPILED_KERNELS) and the kernels are
// compiled once into that small library instead of in every translation
// unit. Headers then declare the kernels without defining them.

#if defined(EQX_COMPILED_KERNELS)
#define EQX_KERNEL_INLINE
#else
#define EQX_KERNEL_INLINE inline
#endif
