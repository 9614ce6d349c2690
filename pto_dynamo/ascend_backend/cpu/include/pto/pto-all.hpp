// pto-all.hpp: the umbrella header of the cpu target. Every generated translation unit includes it
// first and only it (docs/device_abi.md), so the compiler driver (cpu/compiler.py) can serve it from
// a GCC precompiled header built once per toolchain fingerprint. It also compiles without the PCH.
// An include guard, not #pragma once: the PCH build compiles this file as the main file.
#ifndef PTO_ALL_HPP
#define PTO_ALL_HPP
#include <cstdint>
#include <cstddef>
#include <algorithm>
#include <limits>
#include "pto/pto-inst.hpp"
#include "pto/pto-ext.hpp"
#include "pto/pto-runtime.hpp"
#endif  // PTO_ALL_HPP
