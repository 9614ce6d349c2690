"""The tile level of lowering: TileProgram (one SPMD kernel of PTO tile instructions), its
builder, planner, verifier, printer and reference interpreter, and DeviceRegion (the launch
sequence of a device region).

    from pto_dynamo.lowering.tile import KernelBuilder, TileLoc, F32, ceil_div, emin
"""
from pto_dynamo.lowering.tile import ops  # noqa: F401  (fills the opcode table first)
from pto_dynamo.lowering.tile.builder import KernelBuilder
from pto_dynamo.lowering.tile.capacity import A2A3_CAPACITY, CPU_CAPACITY, TargetCapacity
from pto_dynamo.lowering.tile.dtypes import BF16, F16, F32, I8, I16, I32, I64, U8, ElemType, elem_type
from pto_dynamo.lowering.tile.expr import ceil_div, emax, emin, emod, evaluate, floor_div, sym
from pto_dynamo.lowering.tile.interpreter import InterpreterError, interpret, interpret_region
from pto_dynamo.lowering.tile.ir import (BLOCK_IDX, BLOCK_NUM, Direction, Distribution, FloatImm, GlobalParam, GmView,
                                         Layout, Let, Pipe, Role, SerialLoop, Stage, TileDecl, TileInst, TileLoc,
                                         TileLoop, TileProgram)
from pto_dynamo.lowering.tile.planner import PlanningError, plan_tiles
from pto_dynamo.lowering.tile.printer import print_program
from pto_dynamo.lowering.tile.region import DeviceRegion, GmPipeBuffer, Launch, RegionTensor, Workspace
from pto_dynamo.lowering.tile.specs import OPS, op_spec
from pto_dynamo.lowering.tile.verifier import TileVerificationError, verify_program

__all__ = [
    "KernelBuilder", "A2A3_CAPACITY", "CPU_CAPACITY", "TargetCapacity", "BF16", "F16", "F32", "I8", "I16", "I32", "I64", "U8",
    "ElemType", "elem_type", "ceil_div", "emax", "emin", "emod", "evaluate", "floor_div", "sym", "InterpreterError",
    "interpret", "interpret_region", "BLOCK_IDX", "BLOCK_NUM", "Direction", "Distribution", "FloatImm", "GlobalParam",
    "GmView", "Layout", "Let", "Pipe", "Role", "SerialLoop", "Stage", "TileDecl", "TileInst", "TileLoc", "TileLoop", "TileProgram",
    "PlanningError", "plan_tiles", "print_program", "DeviceRegion", "GmPipeBuffer", "Launch", "RegionTensor", "Workspace",
    "OPS", "op_spec", "TileVerificationError", "verify_program",
]
