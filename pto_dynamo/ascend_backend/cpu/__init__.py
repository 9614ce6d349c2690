"""The cpu target's runtime: build generated PTO-ISA C++ with the project's own CPU header, load it,
and run device regions on the process's OpenMP threads.

Public API
----------
- ``load_library(source, name="pto") -> NativeLibrary``: build `source` (a complete C++ translation
  unit: kernels + orchestration) once per content hash into ``cache_root()/"native"`` and load it
  (once per process). The hash covers the source, compiler version, flags, the ISA
  ``-march=native`` selects and the header contents. Each compiler invocation bumps
  ``stats()["native_builds"]`` (the PCH build is not a library build: ``compiler.pch_stats()``).
  ``PTO_CPU_PCH=0`` turns the precompiled header off. A compile error raises ``NativeBuildError`` whose message holds the
  source path, a copy-pasteable command and the compiler output.
- ``build_library(source, name) -> Path``: only the build step; ``build_libraries([(source,
  name), ...])`` builds several at once, one compiler process per core.
- ``load_region(library, symbol, block_num=None) -> RegionCallable``: ``region(tensors, scalars,
  block_num=None)`` calls ``int64_t symbol(void* const* tensors, const int64_t* scalars, int32_t
  block_num)``, adds the returned launch count to ``stats()["launches"]``, raises ``RegionError``
  on a negative return. Default block count: ``DEFAULT_BLOCK_NUM`` (24).
- ``INCLUDE_DIR``, ``CXX_FLAGS``, ``compile_command``: the toolchain (toolchain.py).
- ``stream.triad_gbps(...)``: STREAM triad bandwidth for benchmarks to quote % of STREAM;
  ``microbench.launch_overhead_us(...)``, ``microbench.region_call_overhead_us(...)``: runtime overheads.

Headers (``include/pto``): ``pto-all.hpp`` (the umbrella header generated sources include first
and alone; served from a precompiled header built once per toolchain fingerprint, see
compiler.py), ``pto-inst.hpp`` (PTO instructions), ``pto-ext.hpp`` (project extensions),
``pto-runtime.hpp`` (``PTO_LAUNCH``, ``pto_workspace``). Contract:
docs/device_abi.md. Threads: blocks run on the OpenMP pool of the process; loaded into torch, the
libraries bind to torch's libgomp, so ``torch.set_num_threads(n)`` (called on the thread that runs
the region) governs them.
"""
from pto_dynamo.ascend_backend.cpu.compiler import NativeBuildError, build_libraries, build_library, native_dir
from pto_dynamo.ascend_backend.cpu.loader import NativeLibrary, NativeLoadError, load_library
from pto_dynamo.ascend_backend.cpu.region import DEFAULT_BLOCK_NUM, RegionCallable, RegionError, load_region
from pto_dynamo.ascend_backend.cpu.toolchain import CXX_FLAGS, INCLUDE_DIR, compile_command

__all__ = [
    "CXX_FLAGS", "DEFAULT_BLOCK_NUM", "INCLUDE_DIR", "NativeBuildError", "NativeLibrary", "NativeLoadError",
    "RegionCallable", "RegionError", "build_libraries", "build_library", "compile_command", "load_library", "load_region",
    "native_dir",
]
