#pragma once
// Pytrees: plain structs, containers and eqx::Arrays, understood by
// reflection with no registration. See tree/node.hpp for what is a node.

#include "eqx/tree/at.hpp"
#include "eqx/tree/children.hpp"
#include "eqx/tree/equal.hpp"
#include "eqx/tree/filter.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/map.hpp"
#include "eqx/tree/node.hpp"
#include "eqx/tree/partial.hpp"
#include "eqx/tree/path.hpp"
#include "eqx/tree/pformat.hpp"
#include "eqx/tree/update.hpp"
