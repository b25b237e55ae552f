// The one file of the program that compiles eqx's kernels.
#define EQX_KERNELS_IMPLEMENTATION
#include <eqx/eqx.hpp>
