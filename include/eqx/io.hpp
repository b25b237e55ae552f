#pragma once
// Reading and writing: .npy records and Equinox-format serialisation.
// Kept out of <eqx/eqx.hpp> (it brings <fstream> and <filesystem>).

#include "eqx/io/npy.hpp"
#include "eqx/io/serialise.hpp"
