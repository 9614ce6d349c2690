"""The verifier: every rule has a failing case, and each message says what is wrong."""
from __future__ import annotations

import dataclasses

import pytest

from pto_dynamo.lowering.tile import (A2A3_CAPACITY, BF16, F16, F32, I32, KernelBuilder, Layout, TileInst,
                                      TileLoc, TileVerificationError, ceil_div, emin, plan_tiles, sym,
                                      verify_program)
from pto_dynamo.lowering.tile import handbuilt as hb
from pto_dynamo.lowering.tile.ir import GmView

Vec, Mat, Left, Right, Acc = TileLoc.Vec, TileLoc.Mat, TileLoc.Left, TileLoc.Right, TileLoc.Acc
ColMajor = Layout.ColMajor


def _kernel(body, *, plan: bool = True):
    """A kernel with inputs x (f32), xb (bf16), output z (f32), scalar n, and `body(kb, vr)` inside
    an SPMD loop over 8-row tiles of an n x 64 matrix."""
    kb = KernelBuilder("pto_vec_test_0")
    n = kb.scalar("n")
    kb.tensor("x", F32, (n, 64), (64, 1))
    kb.tensor("xb", BF16, (n, 64), (64, 1))
    kb.tensor("z", F32, (n, 64), (64, 1), output=True)
    with kb.tile_loop("t", ceil_div(n, 8)) as t:
        vr = kb.let("vr", emin(8, n - 8 * t))
        body(kb, vr, t)
    program = kb.build()
    return plan_tiles(program, A2A3_CAPACITY) if plan else program


def _fails(program, *fragments, capacity=A2A3_CAPACITY):
    with pytest.raises(TileVerificationError) as info:
        verify_program(program, capacity)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def _vec(kb, name, vr, rows=8, cols=64, dtype=F32, vc=64, layout=Layout.RowMajor, loc=Vec):
    return kb.tile(name, loc, dtype, rows, cols, vr, vc, layout)


def test_handbuilt_programs_verify():
    for p in (hb.elementwise_chain(), hb.elementwise_chain(BF16), hb.row_reduce("sum"), hb.row_softmax(),
              hb.online_row_softmax(), hb.cast(F32, BF16), hb.broadcasts(), hb.residual_rmsnorm(),
              hb.residual_rmsnorm_chunked()):
        verify_program(p, A2A3_CAPACITY)


def test_unbound_symbol():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.emit("TLOAD", "a", kb.view("x", 8 * 64 * t + sym("m"), vr, 64, 64))   # m is never bound
    _fails(_kernel(body), "unbound symbol(s) m")


def test_tile_used_before_declaration():
    def body(kb, vr, t):
        kb.emit("TEXP", "a", "a")
        _vec(kb, "a", vr)
    _fails(_kernel(body), "tile a is used before it is declared")


def test_tile_declared_twice():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        _vec(kb, "a", vr)
    _fails(_kernel(body, plan=False), "declared twice", capacity=None)


def test_let_rebinding():
    def body(kb, vr, t):
        kb.let("vr", 3)
    _fails(_kernel(body), "vr is already bound")


def test_row_alignment_of_row_major_vec_tiles():
    def body(kb, vr, t):
        kb.tile("a", Vec, F32, 8, 10, vr, 10)
    _fails(_kernel(body, plan=False), "multiple of 32 bytes", "10 x 4 B = 40 B; use 16 columns", capacity=None)


def test_column_alignment_of_col_major_vec_tiles():
    def body(kb, vr, t):
        kb.tile("a", Vec, F32, 6, 1, vr, 1, ColMajor)
    _fails(_kernel(body, plan=False), "ColMajor Vec tile column must be a multiple of 32 bytes", capacity=None)


def test_cube_tiles_are_whole_fractal_boxes():
    def body(kb, vr, t):
        kb.tile("acc", Acc, F32, 24, 16, 16, 16)
    _fails(_kernel(body, plan=False), "fractal boxes", capacity=None)


def test_static_valid_region_within_capacity():
    def body(kb, vr, t):
        kb.tile("a", Vec, F32, 8, 64, 9, 64)
    _fails(_kernel(body, plan=False), "valid rows 9 exceed the capacity 8", capacity=None)


def test_every_tile_is_placed():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.emit("TEXPANDS", "a", 1.0)
    _fails(_kernel(body, plan=False), "has no TASSIGN offset")


def test_placement_alignment_capacity_and_overlap():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        _vec(kb, "b", vr)
        kb.emit("TADD", "a", "a", "b")
    program = _kernel(body)
    _fails(dataclasses.replace(program, placement=(("a", 4), ("b", 4096))), "not 32-byte aligned")
    _fails(dataclasses.replace(program, placement=(("a", 0), ("b", 192 * 1024 - 64))), "exceeds Vec (UB) capacity")
    _fails(dataclasses.replace(program, placement=(("a", 0), ("b", 1024))),
           "live at the same time but placed at overlapping UB bytes")


def test_vector_ops_take_vec_tiles_only():
    def body(kb, vr, t):
        kb.tile("m", Mat, F32, 16, 64, 8, 64)
        kb.emit("TEXP", "m", "m")
    _fails(_kernel(body), "TEXP is a vector instruction; tile m is a Mat tile")


def test_vector_ops_need_row_major_tiles():
    def body(kb, vr, t):
        kb.tile("c", Vec, F32, 8, 1, vr, 1, ColMajor)
        kb.emit("TEXP", "c", "c")
    _fails(_kernel(body), "tile c must be RowMajor for this instruction")


def test_binary_element_types_must_match_unless_all_float():
    """f32 with bf16 is a folded conversion (fuse.py); an integer tile with a float one is not."""
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        _vec(kb, "b", vr, dtype=I32)
        kb.emit("TADD", "a", "a", "b")
    _fails(_kernel(body), "element types differ: a: f32, a: f32, b: i32 (insert a TCVT)")


def test_binary_valid_regions_must_match():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        _vec(kb, "b", vr, vc=32)
        kb.emit("TADD", "a", "a", "b")
    _fails(_kernel(body), "valid region of a [vr, 64] differs from b [vr, 32]")


def test_trecip_not_in_place():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.emit("TRECIP", "a", "a")
    _fails(_kernel(body), "TRECIP cannot run in place")


def test_tcvt_rounding_mode():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        _vec(kb, "b", vr, dtype=BF16)
        kb.emit("TCVT", "b", "a", round="CAST_SIDEWAYS")
    _fails(_kernel(body), "unknown rounding mode 'CAST_SIDEWAYS'")


def test_load_view_must_equal_valid_region():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.emit("TLOAD", "a", kb.view("x", 8 * 64 * t, 8, 64, 64))
    _fails(_kernel(body), "the global view is 8 x 64 but tile a's valid region is vr x 64")


def test_load_does_not_convert():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.emit("TLOAD", "a", kb.view("xb", 8 * 64 * t, vr, 64, 64))
    _fails(_kernel(body), "tile a is f32 but tensor xb is bf16", "add a TCVT")


def test_nd_view_needs_row_major_tile():
    def body(kb, vr, t):
        kb.tile("c", Vec, F32, 8, 1, vr, 1, ColMajor)
        kb.emit("TLOAD", "c", kb.view("x", 8 * 64 * t, vr, 1, 64))
    _fails(_kernel(body), "an ND (row-major) view needs a RowMajor Vec tile")


def test_store_only_into_outputs():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.emit("TEXPANDS", "a", 0.0)
        kb.emit("TSTORE", kb.view("x", 8 * 64 * t, vr, 64, 64), "a")
    _fails(_kernel(body), "TSTORE into x, which is not an output parameter")


def test_tmov_legal_pairs():
    def body(kb, vr, t):
        _vec(kb, "a", vr, rows=16)
        kb.tile("l", Left, F32, 16, 64, vr, 64)
        kb.emit("TMOV", "l", "a")
    _fails(_kernel(body), "TMOV Vec -> Left is not legal on A2A3")


def test_textract_window_inside_source():
    def body(kb, vr, t):
        kb.tile("m", Mat, F32, 16, 64, 16, 64)
        kb.tile("l", Left, F32, 16, 32, 16, 32)
        kb.emit("TEXTRACT", "l", "m", row=0, col=48)
    _fails(_kernel(body), "TEXTRACT window (0, 48) + 16x32 exceeds m 16x64")


def test_row_reduction_shapes():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        _vec(kb, "tmp", vr)
        kb.tile("r", Vec, F32, 8, 1, 8, 1, ColMajor)
        kb.emit("TROWSUM", "r", "a", "tmp")
    _fails(_kernel(body), "TROWSUM writes one value per row: r must be valid [vr, 1], is [8, 1]")


def test_column_reduction_shapes():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.tile("c", Vec, F32, 1, 64, 1, 32)
        kb.emit("TCOLMAX", "c", "a")
    _fails(_kernel(body), "TCOLMAX writes one value per column: c must be valid [1, 64], is [1, 32]")


def test_row_expand_operand():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.tile("r", Vec, F32, 8, 8, vr, 4)
        kb.emit("TROWEXPANDMUL", "a", "a", "r")
    _fails(_kernel(body), "a RowMajor per-row operand must be valid [R, 8]")


def test_col_expand_operand():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.tile("c", Vec, F32, 8, 64, vr, 64)
        kb.emit("TCOLEXPANDADD", "a", "a", "c")
    _fails(_kernel(body), "per-column operand c must be valid [1, 64], is [vr, 64]")


def test_matmul_locations_shapes_and_types():
    def body(kb, vr, t):
        kb.tile("l", Left, F16, 16, 32, 16, 32)
        kb.tile("r", Right, F32, 16, 16, 16, 16)
        kb.tile("acc", Acc, F32, 16, 16, 16, 16)
        kb.emit("TMATMUL", "acc", "l", "r")
    _fails(_kernel(body), "capacities do not chain", "types (f32, f16, f32) are not supported")

    def body2(kb, vr, t):
        kb.tile("l", Vec, F32, 16, 16, 16, 16)
        kb.tile("r", Right, F32, 16, 16, 16, 16)
        kb.tile("acc", Acc, I32, 16, 16, 16, 16)
        kb.emit("TMATMUL", "acc", "l", "r")
    _fails(_kernel(body2), "l must be a Left tile, is Vec")


def _in_place_matmul(kb, tensor: str, *, store_mat: bool = False, vec_move: bool = False):
    """x[0:16, 0:16] (in place) @ x[0:16, 0:16]^T (a copy) into an Acc tile; optionally a TSTORE of
    the in-place Mat tile, or a move of it into a Vec tile."""
    kb.tile("ma", Mat, F32, 16, 16, 16, 16)
    kb.emit("TLOAD", "ma", kb.view(tensor, 0, 16, 16, 64), in_place=True)
    kb.tile("mb", Mat, F32, 16, 16, 16, 16, ColMajor)
    kb.emit("TLOAD", "mb", GmView("x", 0, 16, 16, 1, 64, dn=True))
    kb.tile("l", Left, F32, 16, 16, 16, 16)
    kb.tile("r", Right, F32, 16, 16, 16, 16)
    kb.tile("acc", Acc, F32, 16, 16, 16, 16)
    kb.emit("TMOV", "l", "ma")
    kb.emit("TMOV", "r", "mb")
    kb.emit("TMATMUL", "acc", "l", "r")
    if store_mat:
        kb.emit("TSTORE", kb.view("z", 0, 16, 16, 64), "ma")


def test_in_place_loads():
    """An in-place TLOAD (a view of global memory on the cpu target) reads a kernel input into a
    Mat tile that only moves to Left/Right tiles that only TMATMUL reads."""
    verify_program(_kernel(lambda kb, vr, t: _in_place_matmul(kb, "x")), A2A3_CAPACITY)
    _fails(_kernel(lambda kb, vr, t: _in_place_matmul(kb, "z")),
           "an in-place TLOAD reads a kernel input; the kernel writes z")
    _fails(_kernel(lambda kb, vr, t: _in_place_matmul(kb, "x", store_mat=True)),
           "TSTORE reads ma, a view of an in-place TLOAD that only TMOV/TEXTRACT may read")

    def into_vec(written: bool, aliased: bool, tensor: str = "x"):
        def body(kb, vr, t):
            kb.tile("ma", Vec, F32, 8, 64, vr, 64)
            kb.emit("TLOAD", "ma", kb.view(tensor, 64 * 8 * t, vr, 64, 64), in_place=True)
            kb.tile("mb", Vec, F32, 8, 64, vr, 64)
            kb.emit("TEXP", "ma" if written else "mb", "ma")
            if aliased:
                kb.tile("col", Vec, F32, 1, 64, 1, 64)
                kb.emit("TRESHAPE", "col", "ma")
        return _kernel(body)
    verify_program(into_vec(written=False, aliased=False), A2A3_CAPACITY)     # a Vec tile only read
    for program in (into_vec(written=True, aliased=False), into_vec(written=False, aliased=True),
                    into_vec(written=False, aliased=False, tensor="z")):
        _fails(program, "an in-place TLOAD into a Vec tile needs a tile that only TLOADs from kernel inputs "
                        "(or from a held pipe slot, read before its TFREE) write and that no TRESHAPE aliases; "
                        "ma is not one")

    def operand_read(kb, vr, t):
        _in_place_matmul(kb, "x")
        kb.tile("m2", Mat, F32, 16, 16, 16, 16)
        kb.emit("TMOV", "m2", "acc")
        kb.tile("l2", Left, F32, 16, 16, 16, 16)
        kb.emit("TEXTRACT", "l2", "l", row=0, col=0)
    _fails(_kernel(operand_read), "TEXTRACT reads l, a view of an in-place TLOAD that only TMATMUL may read")


def test_treshape_needs_equal_bytes_and_binds_before_use():
    def body(kb, vr, t):
        kb.tile("c", Vec, F32, 8, 1, vr, 1, ColMajor)
        kb.tile("row", Vec, F32, 1, 16, 1, vr)
        kb.emit("TRESHAPE", "row", "c")
    _fails(_kernel(body), "TRESHAPE needs equal bytes: row 64 B, c 32 B")

    def body2(kb, vr, t):
        kb.tile("c", Vec, F32, 8, 1, vr, 1, ColMajor)
        kb.tile("row", Vec, F32, 1, 8, 1, vr)
        kb.emit("TEXPANDS", "row", 0.0)
        kb.emit("TRESHAPE", "row", "c")
    _fails(_kernel(body2), "tile row is used before it is declared")


def test_unknown_opcode_and_operand_kinds():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb._add(TileInst("TFROB", ("a",), ("a",)))
    _fails(_kernel(body), "unknown opcode 'TFROB'")

    def body2(kb, vr, t):
        _vec(kb, "a", vr)
        kb._add(TileInst("TADDS", ("a",), ("a", "a")))
    _fails(_kernel(body2), "operand 'a' must be a scalar")

    def body3(kb, vr, t):
        _vec(kb, "a", vr)
        kb._add(TileInst("TADD", ("a",), ("a",)))
    _fails(_kernel(body3), "TADD takes 1 output(s), 2 input(s), 0 scratch tile(s); got 1, 1, 0")


def test_view_of_unknown_tensor():
    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.emit("TLOAD", "a", kb.view("nope", 0, vr, 64, 64))
    _fails(_kernel(body), "nope is not a tensor parameter of the kernel")


def test_parameter_names():
    kb = KernelBuilder("pto_vec_dup_0")
    kb.scalar("n")
    kb.tensor("n", F32, (4,), (1,))
    _fails(kb.build(), "parameter name 'n' is used twice or reserved", capacity=None)
    kb = KernelBuilder("pto vec")
    _fails(kb.build(), "kernel name 'pto vec' is not a C identifier", capacity=None)


def test_builder_checks_operand_count():
    kb = KernelBuilder("pto_vec_x_0")
    with pytest.raises(TypeError, match="TROWSUM takes 1 output"):
        kb.emit("TROWSUM", "a", "b")


def test_all_errors_are_reported_at_once():
    def body(kb, vr, t):
        kb.tile("a", Vec, F32, 8, 10, vr, 10)
        kb.emit("TEXP", "b", "b")
    message = _fails(_kernel(body, plan=False), capacity=None)
    assert message.startswith("2 error(s) in tile program pto_vec_test_0")


def test_compare_select_masks():
    from pto_dynamo.lowering.tile import U8

    def body(kb, vr, t):
        _vec(kb, "a", vr)
        kb.tile("mask", Vec, F32, 8, 8, vr, 8)
        kb.emit("TCMPS", "mask", "a", 0.0, mode="GT")
    _fails(_kernel(body), "mask tile mask must be u8, is f32")

    def body2(kb, vr, t):
        _vec(kb, "a", vr)
        kb.tile("mask", Vec, U8, 8, 32, vr, 8)
        kb.emit("TCMPS", "mask", "a", 0.0, mode="ABOVE")
    _fails(_kernel(body2), "TCMPS needs mode= one of EQ, NE, LT, LE, GT, GE, got 'ABOVE'")

    def body3(kb, vr, t):
        _vec(kb, "a", vr)
        _vec(kb, "o", vr)
        kb.tile("mask", Vec, U8, 8, 32, 8, 8)
        kb.tile("tmp", Vec, F32, 1, 16, 1, 16)
        kb.emit("TSELS", "o", "mask", "a", 1.0, "tmp")
    _fails(_kernel(body3), "mask tile mask must have vr valid rows like o")
