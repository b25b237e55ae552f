// EXPECT: a std::string_view or char pointer argument would be cached as a pointer
#include <eqx/ops/creation.hpp>
#include <eqx/transform/jit.hpp>

#include <string_view>

int main() {
  auto f = eqx::filter_jit([](const eqx::Array& x, std::string_view act) { return act == "relu" ? x : -x; });
  f(eqx::ones({2}), std::string_view("relu"));
}
