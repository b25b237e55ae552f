// EXPECT: eqx: unknown parameter name
// A primitive parameter's name is checked when the program compiles: "axis"
// misspelt as "axsi" is an error here, not a missing parameter at run time.
#include <eqx/prim/primitive.hpp>

int main() {
  eqx::Params p = eqx::Params{}.set("axsi", std::int64_t{0});
  return static_cast<int>(p.items().size());
}
