#pragma once
// Build configuration: header-only (default) or compiled kernels.
//
// By default every primitive's kernel and rules are inline functions in its
// header, so `#include <eqx/eqx.hpp>` is all a program needs. They are the
// expensive part to compile (one Eigen loop per operation and dtype, and
// the JVP, VJP and batching rules of every primitive), so, as fmt does, eqx
// also offers an opt-in mode: link the CMake target `eqx::kernels` (which
// defines EQX_COMPILED_KERNELS) and they are compiled once into that small
// library instead of in every translation unit.
//
// How: each primitive family's header defines EQX_<FAMILY>_KERNELS, true
// where its out-of-line definitions are compiled (everywhere when header
// only; in the family's own TU of eqx::kernels, which defines
// EQX_KERNELS_<FAMILY>). Every primitive class has at least one virtual
// member defined out of line there; the first is the class's key function,
// so its vtable, and with it every rule and helper the class reaches, is
// emitted in eqx::kernels only. Class templates (unary, binary, reduce,
// window) are explicitly instantiated there and declared `extern template`
// elsewhere. StopGradientPrim and FusedPrim keep everything inline: a copy,
// and a call into the fusion code that compiled plans use anyway; so does
// ElementwiseKernelPrim, a template on the program's own function (Adam's
// tile alone is compiled in eqx::kernels, family OPTIM).

#if defined(EQX_COMPILED_KERNELS)
#define EQX_KERNEL_INLINE
#else
#define EQX_KERNEL_INLINE inline
#endif

// The control-flow family (scan, cond, while_loop, checkpoint, error_if,
// debug::print) spans several headers, so its switch is defined here.
#if !defined(EQX_COMPILED_KERNELS) || defined(EQX_KERNELS_CONTROL_FLOW)
#define EQX_CONTROL_FLOW_KERNELS 1
#else
#define EQX_CONTROL_FLOW_KERNELS 0
#endif

// eqx::kernels is compiled for the build machine's ISA (AVX-512, say) while
// a program that links it is compiled with its own flags, and the linker
// keeps one copy of each inline function or template instance the two
// share. Kernel code whose body depends on the ISA (Eigen's GEMM inside
// prim/gemm.hpp) therefore sits in this inline namespace, which the
// kernels' TUs rename (as they rename Eigen's namespace), so the program
// never swaps in its own copy.
#if !defined(EQX_KERNELS_ABI)
#define EQX_KERNELS_ABI program
#endif
