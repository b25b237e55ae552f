// A job in which rank 1 throws before a collective that rank 0 enters:
// eqx::dist::run must end the whole job with rank 1's message instead of
// leaving rank 0 waiting. ctest checks the message and that it ends (a
// timeout would mean a hang).

#include <eqx/dist.hpp>
#include <eqx/eqx.hpp>

int main(int argc, char** argv) {
  return eqx::dist::run(argc, argv, [] {
    eqx::Array x = eqx::ones({4});
    if (eqx::dist::rank() == 1) throw eqx::ValueError("bad batch on rank 1");
    x = eqx::dist::tree_allreduce(x);  // rank 0 would wait here forever
    return 0;
  });
}
