// pto_dynamo CPU target: the PTO instructions (pto_isa.md vocabulary, namespace pto) implemented
// for the host CPU. Contract with generated code: docs/device_abi.md. Include <cstdint> and
// <cstddef> before this header, as on the device (this header does not rely on it).
#pragma once
#include "pto/cpu/common.hpp"
#include "pto/cpu/state.hpp"
#include "pto/cpu/tile.hpp"
#include "pto/cpu/vmath.hpp"
#include "pto/cpu/elementwise.hpp"
#include "pto/cpu/movement.hpp"
#include "pto/cpu/reduce_expand.hpp"
#include "pto/cpu/compare.hpp"
#include "pto/cpu/matmul.hpp"
#include "pto/cpu/gather.hpp"
#include "pto/cpu/pipe.hpp"
