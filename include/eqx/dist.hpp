#pragma once
// Data-parallel training over MPI: one model replicated on every rank of an
// `mpirun` job, each rank's batch a shard of the global batch, gradients
// averaged with one bucketed all-reduce per step.
// Kept out of <eqx/eqx.hpp>: it needs MPI (link eqx::mpi).

#include "eqx/dist/checkpoint.hpp"
#include "eqx/dist/collectives.hpp"
#include "eqx/dist/session.hpp"
#include "eqx/dist/shard.hpp"
