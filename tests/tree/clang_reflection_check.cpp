// Field and type names by reflection must work with Clang too (its pretty
// function names differ from GCC's); built with -fsyntax-only by ctest.
#include <eqx/tree.hpp>

#include <string>
#include <vector>

namespace {
struct Linear {
  eqx::Array weight, bias;
};
}  // namespace
namespace nn {
template <class T>
struct MLP {
  std::vector<Linear> layers;
  T width;
  eqx::Static<std::string> name;
};
}  // namespace nn

static_assert(eqx::detail::field_names<Linear>[0] == "weight");
static_assert(eqx::detail::field_names<Linear>[1] == "bias");
static_assert(eqx::detail::field_names<nn::MLP<int>>[0] == "layers");
static_assert(eqx::detail::field_names<nn::MLP<int>>[2] == "name");
static_assert(eqx::detail::type_name<nn::MLP<int>>() == "MLP<int>");
static_assert(eqx::detail::type_name<Linear>() == "Linear");

int main() {}
