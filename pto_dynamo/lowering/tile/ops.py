"""The opcode table: every PTO instruction (and project extension) the tile IR knows.

Payloads carry the math of elementwise families so that the interpreter rules stay generic.
Names and operand orders follow docs/pto_isa.md exactly; extensions follow docs/device_abi.md.
"""
from __future__ import annotations

import torch

from pto_dynamo.lowering.tile.dtypes import F16, F32
from pto_dynamo.lowering.tile.specs import GM, SCALAR, TILE, define_op


def _gelu_erf(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x, approximate="none")


def _round_half_even(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x)   # torch.round rounds half to even


# --- data movement ----------------------------------------------------------------------------
define_op("TLOAD", (TILE,), (GM,), "load", vec_only=False)
define_op("TSTORE", (GM,), (TILE,), "store", vec_only=False)
define_op("TMOV", (TILE,), (TILE,), "move", vec_only=False)
define_op("TEXTRACT", (TILE,), (TILE,), "extract", vec_only=False)   # attrs: row, col
define_op("TCVT", (TILE,), (TILE,), "convert")                      # attrs: round
define_op("TEXPANDS", (TILE,), (SCALAR,), "fill")
define_op("TCI", (TILE,), (SCALAR,), "iota")                         # attrs: descending
define_op("TTRI", (TILE,), (SCALAR,), "triangle")                    # attrs: upper; scalar: the diagonal
define_op("MGATHER", (TILE,), (GM, TILE), "gather")                  # attrs: coalesce (Row), oob
define_op("TRESHAPE", (TILE,), (TILE,), "alias", vec_only=False)     # dst aliases src's bytes

# --- elementwise: tile op tile ---------------------------------------------------------------
_BINARY = {"TADD": torch.add, "TSUB": torch.sub, "TMUL": torch.mul, "TDIV": torch.div,
           "TMAX": torch.maximum, "TMIN": torch.minimum}
for _name, _fn in _BINARY.items():
    define_op(_name, (TILE,), (TILE, TILE), "binary", payload=_fn)
define_op("TPOW", (TILE,), (TILE, TILE), "binary", ext=True, payload=torch.pow)

# --- elementwise: tile op scalar -------------------------------------------------------------
_SCALAR = {"TADDS": torch.add, "TSUBS": torch.sub, "TMULS": torch.mul, "TDIVS": torch.div,
           "TMAXS": torch.clamp_min, "TMINS": torch.clamp_max}
for _name, _fn in _SCALAR.items():
    define_op(_name, (TILE,), (TILE, SCALAR), "scalar", payload=_fn)
define_op("TPOWS", (TILE,), (TILE, SCALAR), "scalar", ext=True, payload=torch.pow)

# --- elementwise: unary ----------------------------------------------------------------------
_UNARY = {"TEXP": torch.exp, "TLOG": torch.log, "TSQRT": torch.sqrt, "TRSQRT": torch.rsqrt,
          "TRECIP": torch.reciprocal, "TABS": torch.abs, "TNEG": torch.neg, "TRELU": torch.relu}
for _name, _fn in _UNARY.items():
    define_op(_name, (TILE,), (TILE,), "unary", payload=_fn)
_UNARY_EXT = {"TSIGMOID": torch.sigmoid, "TTANH": torch.tanh, "TERF": torch.erf, "TGELU": _gelu_erf,
              "TSILU": torch.nn.functional.silu, "TFLOOR": torch.floor, "TCEIL": torch.ceil, "TTRUNC": torch.trunc,
              "TROUND": _round_half_even, "TSIGN": torch.sign, "TLOG1P": torch.log1p,
              "TEXPM1": torch.expm1, "TSIN": torch.sin, "TCOS": torch.cos}
for _name, _fn in _UNARY_EXT.items():
    define_op(_name, (TILE,), (TILE,), "unary", ext=True, payload=_fn)

# --- reductions (row: into an R x 1 tile; column: into a 1 x C tile) ------------------------
for _name, _kind in {"TROWSUM": "sum", "TROWMAX": "max", "TROWMIN": "min"}.items():
    define_op(_name, (TILE,), (TILE,), "rowreduce", n_tmps=1, payload=_kind)
for _name, _kind in {"TCOLSUM": "sum", "TCOLMAX": "max", "TCOLMIN": "min"}.items():
    define_op(_name, (TILE,), (TILE,), "colreduce", payload=_kind)

# --- broadcasts ------------------------------------------------------------------------------
define_op("TROWEXPAND", (TILE,), (TILE,), "rowexpand")
define_op("TCOLEXPAND", (TILE,), (TILE,), "colexpand")
for _suffix, _fn in {"ADD": torch.add, "SUB": torch.sub, "MUL": torch.mul, "DIV": torch.div,
                     "MAX": torch.maximum, "MIN": torch.minimum, "EXPDIF": lambda a, b: torch.exp(a - b)}.items():
    define_op(f"TROWEXPAND{_suffix}", (TILE,), (TILE, TILE), "rowexpand_binary", payload=_fn)
    define_op(f"TCOLEXPAND{_suffix}", (TILE,), (TILE, TILE), "colexpand_binary", payload=_fn)
EXPDIF_TYPES = (F16, F32)          # T{ROW,COL}EXPANDEXPDIF: half/float only (pto_isa.md)

# --- fused V-ops (project extensions, <pto/cpu/fused.hpp>): an op and the row reduction or add
# that reads its result, one pass over the tile; made by lowering/tile/fuse.py from the pair
define_op("TMULS_ROWMAX", (TILE, TILE), (TILE, SCALAR), "fused", n_tmps=1, ext=True)       # dst, max <- src * s
define_op("TROWEXPANDEXPDIF_ROWSUM", (TILE, TILE), (TILE, TILE), "fused", n_tmps=1, ext=True)  # dst, sum <- exp(src0 - src1)
define_op("TROWEXPANDMUL_ADD", (TILE,), (TILE, TILE, TILE), "fused", ext=True)           # dst <- src0 * src1 + src2
define_op("TMUL_ROWSUM", (TILE, TILE), (TILE, TILE), "fused", n_tmps=1, ext=True)         # dst, sum <- src0 * src1
define_op("TROWEXPANDMUL_COLEXPANDMUL", (TILE,), (TILE, TILE, TILE), "fused", ext=True)  # dst <- src0 * src1(i) * src2(j)

# --- compare and select (mask: a u8 Vec tile, bit c % 8 of byte c // 8 of row r) --------------
CMP_MODES = ("EQ", "NE", "LT", "LE", "GT", "GE")
define_op("TCMP", (TILE,), (TILE, TILE), "compare")            # attrs: mode
define_op("TCMPS", (TILE,), (TILE, SCALAR), "compare")         # attrs: mode
define_op("TSEL", (TILE,), (TILE, TILE, TILE), "select", n_tmps=1)      # dst <- mask, a, b
define_op("TSELS", (TILE,), (TILE, TILE, SCALAR), "select", n_tmps=1)   # dst <- mask, src, scalar

# --- cube ------------------------------------------------------------------------------------
define_op("TMATMUL", (TILE,), (TILE, TILE), "matmul", vec_only=False)
define_op("TMATMUL_ACC", (TILE,), (TILE, TILE, TILE), "matmul", vec_only=False)

# --- cube <-> vector pipes (gm-pipe slots; attrs: pipe) -------------------------------------------
define_op("TALLOC", (), (), "pipe", vec_only=False)    # producer: wait for a free slot, hold it
define_op("TPUSH", (), (), "pipe", vec_only=False)     # producer: commit the held slot to the consumers
define_op("TPOP", (), (), "pipe", vec_only=False)      # consumer: wait for a committed slot, hold it
define_op("TFREE", (), (), "pipe", vec_only=False)     # consumer: give the held slot back
PIPE_OPS = {"TALLOC": "producer", "TPUSH": "producer", "TPOP": "consumer", "TFREE": "consumer"}

ROUND_MODES = ("CAST_NONE", "CAST_RINT", "CAST_ROUND", "CAST_FLOOR", "CAST_CEIL", "CAST_TRUNC", "CAST_ODD")
