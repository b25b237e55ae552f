#pragma once
// Build configuration: header-only (default) or compiled kernels.
//
// By default every primitive's kernel and rules are inline functions in its
// header, so including eqx's headers is all a program needs. They are the
// expensive part to compile (a loop per operation and dtype, and
// the JVP, VJP and batching rules of every primitive), so, as fmt does, eqx
// also offers two ways to compile them once per program instead of once
// per file. Every file of the program defines EQX_COMPILED_KERNELS, and
// the kernels come from either
//   - the CMake target `eqx::kernels` (which defines EQX_COMPILED_KERNELS
//     for its users): a small library compiled for the build machine's ISA;
//   - or, as stb and doctest do, one file of the program's own that
//     defines EQX_KERNELS_IMPLEMENTATION before its first eqx include:
//       #define EQX_KERNELS_IMPLEMENTATION
//       #include <eqx/eqx.hpp>
//
// How: kernels come in families (the list below); EQX_KERNELS_HERE(F) is
// true where family F's out-of-line definitions are compiled: everywhere
// when header-only, in F's own TU of eqx::kernels (which defines
// EQX_KERNELS_<F> to 1), or in the implementation file. Every primitive
// class has at least one virtual member defined out of line there; the
// first is the class's key function, so its vtable, and with it every rule
// and helper the class reaches, is emitted there only. Class templates
// (unary, binary, reduce, window) are explicitly instantiated there and
// declared `extern template` elsewhere (EQX_INSTANTIATION). Only
// ElementwiseKernelPrim, a template on the program's own function, keeps
// everything inline (Adam's kernel is compiled in family OPTIM).

#if defined(EQX_KERNELS_IMPLEMENTATION)
#if !defined(EQX_COMPILED_KERNELS)
#define EQX_COMPILED_KERNELS
#endif
#define EQX_ALL_KERNELS_HERE_ 1
#else
#define EQX_ALL_KERNELS_HERE_ 0
#endif

// The kernel families, one TU each in eqx::kernels (CMakeLists.txt reads
// this list): 1 in the family's own TU of eqx::kernels (which defines it),
// and everywhere in a program's EQX_KERNELS_IMPLEMENTATION file.
#if !defined(EQX_KERNELS_UNARY)
#define EQX_KERNELS_UNARY EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_BINARY)
#define EQX_KERNELS_BINARY EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_SELECT)
#define EQX_KERNELS_SELECT EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_CONVERT)
#define EQX_KERNELS_CONVERT EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_LAYOUT)
#define EQX_KERNELS_LAYOUT EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_REDUCE)
#define EQX_KERNELS_REDUCE EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_DOT)
#define EQX_KERNELS_DOT EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_INDEXING)
#define EQX_KERNELS_INDEXING EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_CONV)
#define EQX_KERNELS_CONV EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_WINDOW)
#define EQX_KERNELS_WINDOW EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_RANDOM_BITS)
#define EQX_KERNELS_RANDOM_BITS EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_CONTROL_FLOW)
#define EQX_KERNELS_CONTROL_FLOW EQX_ALL_KERNELS_HERE_
#endif
#if !defined(EQX_KERNELS_OPTIM)
#define EQX_KERNELS_OPTIM EQX_ALL_KERNELS_HERE_
#endif
// Not kernels but the array operations' front ends (eqx::reshape,
// eqx::matmul, eqx::random::uniform, ...): argument checks, then a bind.
#if !defined(EQX_KERNELS_OPS)
#define EQX_KERNELS_OPS EQX_ALL_KERNELS_HERE_
#endif
// Not kernels but the graph machinery every jit and grad call runs (the
// passes, Plan's compiler, the VJP tape, batching and evaluating a graph):
// non-template code that would otherwise be compiled in each file using it.
#if !defined(EQX_KERNELS_GRAPH)
#define EQX_KERNELS_GRAPH EQX_ALL_KERNELS_HERE_
#endif

/// True where family F's kernels are defined: `#if EQX_KERNELS_HERE(UNARY)`.
#if defined(EQX_COMPILED_KERNELS)
#define EQX_KERNELS_HERE(family) (EQX_KERNELS_##family)
#else
#define EQX_KERNELS_HERE(family) 1
#endif

/// Before a class template instance of family F, in code compiled with
/// EQX_COMPILED_KERNELS: its explicit instantiation where the family's
/// kernels are compiled, a declaration (`extern template`) elsewhere.
#define EQX_INSTANTIATION(family) EQX_INSTANTIATION_CAT_(EQX_INSTANTIATION_IF_, EQX_KERNELS_##family)
#define EQX_INSTANTIATION_CAT_(a, b) EQX_INSTANTIATION_CAT2_(a, b)
#define EQX_INSTANTIATION_CAT2_(a, b) a##b
#define EQX_INSTANTIATION_IF_1 template
#define EQX_INSTANTIATION_IF_0 extern template

#if defined(EQX_COMPILED_KERNELS)
#define EQX_KERNEL_INLINE
#else
#define EQX_KERNEL_INLINE inline
#endif

// A kernel loop called from several places (the eager kernel, broadcast
// segments, fused tiles) is compiled once, not once per caller: the
// compile cost of the elementwise families is their loop bodies.
#if defined(__GNUC__) || defined(__clang__)
#define EQX_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define EQX_NOINLINE __declspec(noinline)
#else
#define EQX_NOINLINE
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
