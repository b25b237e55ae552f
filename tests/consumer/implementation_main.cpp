// A downstream program of two files whose kernels are compiled once, in
// implementation.cpp (EQX_KERNELS_IMPLEMENTATION), as stb and doctest do;
// this file, like every other file of the program, is compiled with
// EQX_COMPILED_KERNELS, so it compiles no kernel. Prints "kernels ok".
#include <eqx/eqx.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  eqx::Array x = eqx::array({1.0, 2.0, 3.0});
  // Eager kernels, a jitted (fused) function and its gradient, all from
  // the other file's kernels: d/dx sum(x * x + 1) = 2x.
  auto loss = eqx::filter_jit([](const eqx::Array& v) { return eqx::sum(v * v + 1.0); });
  const double value = loss(x).item<double>();
  const eqx::Array grad = eqx::filter_grad([](const eqx::Array& v) { return eqx::sum(v * v + 1.0); })(x);
  const std::string origin = eqx::build_info().kernels;
  const bool ok = value == 17.0 && grad.to_vector<double>() == std::vector<double>{2.0, 4.0, 6.0} &&
                  origin == "EQX_KERNELS_IMPLEMENTATION";
  if (!ok) {
    std::fprintf(stderr, "implementation consumer: value %g, kernels '%s'\n", value, origin.c_str());
    return 1;
  }
  std::printf("kernels ok\n");
  return 0;
}
