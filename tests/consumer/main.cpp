// Smallest possible downstream use of eqx: sum(x * 2) over [1, 2, 3] is 12.
#include <eqx/eqx.hpp>

#include <cstdio>

int main() {
  eqx::Array x = eqx::array({1.f, 2.f, 3.f});
  const float total = eqx::sum(x * 2.0f).item<float>();
  std::printf("%g\n", static_cast<double>(total));
  return total == 12.0f ? 0 : 1;
}
