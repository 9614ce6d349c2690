"""TileProgram construction: expressions, immutability, the builder, the op table, the printer."""
from __future__ import annotations

import dataclasses

import pytest

from pto_dynamo.lowering.tile import (A2A3_CAPACITY, BF16, F32, OPS, KernelBuilder, TileDecl,
                                      TileLoc, TileLoop, ceil_div, elem_type, emin, evaluate, floor_div,
                                      print_program, sym)
from pto_dynamo.lowering.tile import handbuilt as hb
from pto_dynamo.lowering.tile.expr import PyExprPrinter, emod, evaluate_float, exprs_equal
from pto_dynamo.lowering.tile.region import DeviceRegion, Launch, RegionTensor, Workspace, c_identifier


def test_expressions_evaluate_exactly():
    T, t = sym("T"), sym("t")
    assert evaluate(ceil_div(T, 8), {"T": 17}) == 3
    assert evaluate(floor_div(T, 8), {"T": 17}) == 2
    assert evaluate(emod(T, 8), {"T": 17}) == 1
    assert evaluate(emin(8, T - 8 * t), {"T": 17, "t": 2}) == 1
    assert evaluate_float(1 / T, {"T": 4}) == 0.25
    with pytest.raises(KeyError, match="symbol T"):
        evaluate(T + 1, {})


def test_expression_printing_is_readable_and_integer_only():
    T, t = sym("T"), sym("t")
    assert PyExprPrinter().doprint(emin(16, T - 16 * t)) == "min(16, (T - (16 * t)))"
    assert PyExprPrinter().doprint(3 - t) == "(3 - t)"
    with pytest.raises(ValueError, match="true division in integer expression"):
        PyExprPrinter().doprint(T / 2)


def test_symbols_match_graph_dims():
    from pto_dynamo.graph.dims import dim_symbol
    assert sym("T") == dim_symbol("T")
    assert exprs_equal(sym("T") * 2, 2 * sym("T"))
    assert not exprs_equal(sym("T"), sym("U"))


def test_elem_types():
    import torch
    assert elem_type(torch.bfloat16) is BF16 and elem_type("f32") is F32
    assert elem_type(torch.bool).name == "u8"
    with pytest.raises(TypeError, match="unsupported element type"):
        elem_type(torch.complex64)


def test_program_is_immutable_and_hashable_parts():
    p = hb.elementwise_chain()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "other"
    decl = p.tile_decls()["a"]
    assert isinstance(decl, TileDecl) and decl.loc is TileLoc.Vec and decl.nbytes == 16 * 64 * 4
    assert hash(decl) == hash(dataclasses.replace(decl))
    loop = next(s for s in p.body if isinstance(s, TileLoop))
    assert isinstance(loop.body, tuple)


def test_builder_structure():
    kb = KernelBuilder("pto_vec_exp_0", graph="g", description="z = exp(x)")
    n = kb.scalar("n")
    kb.tensor("x", F32, (n, 8), (8, 1))
    kb.tensor("z", F32, (n, 8), (8, 1), output=True)
    with kb.tile_loop("t", ceil_div(n, 4)) as t:
        vr = kb.let("vr", emin(4, n - 4 * t))
        kb.tile("a", TileLoc.Vec, F32, 4, 8, vr, 8)
        kb.emit("TLOAD", "a", kb.view("x", 32 * t, vr, 8, 8))
        inst = kb.emit("TMULS", "a", "a", 2)
        kb.emit("TSTORE", kb.view("z", 32 * t, vr, 8, 8), "a")
    p = kb.build(A2A3_CAPACITY)
    assert [x.name for x in p.params] == ["x", "z"] and p.param("z").is_output
    assert inst.ins[1].value == 2 and inst.op == "TMULS"
    assert [i.op for i in p.instructions()] == ["TLOAD", "TMULS", "TSTORE"]
    assert p.offsets() == {"a": 0}
    with pytest.raises(KeyError, match="has no tensor parameter 'y'"):
        p.param("y")


def test_op_table_covers_the_vocabulary():
    required = ("TLOAD TSTORE TMOV TCVT TEXPANDS TEXTRACT TRESHAPE TADD TSUB TMUL TDIV TMAX TMIN TADDS TSUBS "
                "TMULS TDIVS TMAXS TMINS TEXP TLOG TSQRT TRSQRT TRECIP TABS TNEG TRELU TSIGMOID TTANH TERF "
                "TSILU TGELU TROWSUM TROWMAX TROWMIN TCOLSUM TCOLMAX TCOLMIN TROWEXPAND TROWEXPANDADD "
                "TROWEXPANDSUB TROWEXPANDMUL TROWEXPANDDIV TROWEXPANDMAX TROWEXPANDMIN TCOLEXPAND "
                "TCOLEXPANDADD TCOLEXPANDMUL TMATMUL TMATMUL_ACC").split()
    assert set(required) <= set(OPS)
    assert OPS["TSILU"].ext and not OPS["TEXP"].ext
    assert OPS["TROWSUM"].n_tmps == 1 and OPS["TLOAD"].vec_only is False


def test_every_opcode_has_verify_and_interpreter_rules():
    from pto_dynamo.lowering.tile.specs import INTERP_RULES, VERIFY_RULES
    assert set(OPS) == set(VERIFY_RULES) == set(INTERP_RULES)


def test_printer_text():
    text = print_program(hb.online_row_softmax())
    lines = text.splitlines()
    assert lines[0].startswith("kernel pto_vec_online_softmax_0(x: f32[rows, cols] stride (x_ld, 1), "
                               "out: f32[rows, cols] stride (cols, 1) out; rows, cols, x_ld, block_num)")
    assert "# graph <hand-built>, pass handbuilt: out = softmax(x, dim=1), online over column tiles" in lines[1]
    assert "  for t in spmd((rows + 7) // 8, cyclic):" in lines
    assert "    tile m: Vec f32[8 x 1] ColMajor valid [vr, 1] @UB+0x0" in lines
    assert "    TRESHAPE m_row <- m" in lines
    assert "      TROWMAX cm <- xt ; tmp tmp" in lines
    assert "      TLOAD xt <- x[(64 * j) + (8 * t * x_ld) : vr x vc, ld x_ld]" in lines
    assert "    TEXPANDS m_row <- -inf" in lines
    assert "{round=CAST_RINT}" in print_program(hb.cast(F32, BF16))


def test_region_ir():
    rows, cols = sym("rows"), sym("cols")
    k = hb.cast(F32, BF16)
    region = DeviceRegion("my graph", 2, (RegionTensor("x", F32, (rows, cols)),
                                          RegionTensor("o", BF16, (rows, cols), True)),
                          (rows, cols), (Launch(k, ("x", "o"), (rows, cols)),))
    assert region.name == "pto_region_my_graph_2" and region.kernels() == [k]
    region.validate()
    with pytest.raises(ValueError, match="unknown buffer"):
        dataclasses.replace(region, launches=(Launch(k, ("x", "nope"), (rows, cols)),)).validate()
    with pytest.raises(ValueError, match="kernel takes 2 tensors and 2 scalars"):
        dataclasses.replace(region, launches=(Launch(k, ("x",), (rows, cols)),)).validate()
    with pytest.raises(ValueError, match="uses unbound symbols"):
        dataclasses.replace(region, workspaces=(Workspace("w", F32, sym("Q")),)).validate()
    assert c_identifier("1 graph-x") == "_1_graph_x"
