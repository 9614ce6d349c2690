"""Tile an AttentionPlan into one mixed TileProgram: flash attention in PTO terms.

    pipes: qk (C2V, f32 scores), pp (V2C, probabilities in v's dtype), pv (C2V, f32 P @ V)
    for t in tiles(batch x ceil(M / Mq)), chunked over blocks:                         (SPMD)
        bi, m0, vm; this vector core's rows: sub0 + [0, sv) of the tile (subblock_idx / subblock_num)
        vector: m = -inf, l = 0, o = 0                       (running max, sum, output rows)
        cube:   TLOAD q rows -> qmat (Mat), once per tile (and TMOV -> its Left tile where L0A has room)
        for j0 in 0, Ns, 2 Ns, ... < S (causal: < min(S, m0 + vm), in two loops)         (KV loop)
            cube:   TLOAD k^T window (ND -> Nz, or DN -> Zn for a row-major k) ; TMOV ; TALLOC qk
                    TMATMUL s = q k^T ; TSTORE into the slot, TPUSH
            vector: TPOP qk; TLOAD its rows of s; s = s * scale + mask (bool: -inf where set)
                    causal, on the steps that cross the diagonal only: s = -inf where key > query (TTRI)
                    mx = rowmax(s); TFREE qk; m' = max(m, mx); m0 = m' == -inf ? 0 : m'
                    alpha = exp(m - m0); TALLOC pp; p = exp(s - m0); rs = rowsum(p)
                    p in v's dtype (TCVT) into its rows; TPUSH pp; l = l * alpha + rs; m = m'
            cube:   TPOP pp; TLOAD p -> Mat; TLOAD v window; TMOV; TALLOC pv
                    TMATMUL pv = p v; TSTORE; TFREE pp; TPUSH pv
            vector: TPOP pv; TLOAD its rows; o = o * alpha + pv; TFREE pv
        vector: [l += exp(sink - m)]; o /= l (a safe softmax's all -inf row: l = 0 -> 0); TSTORE o

The slots are taken before the results that go into them are computed, so that a target whose
Acc and Vec tiles are memory like the slots (cpu) computes them there (tile/slot_stores.py).
Each V-op is followed by the one that reads its result where the pair fuses into one pass on the
cpu target (tile/fuse.py): the scale and the row max, exp, its row sum and P's rounding, o's
rescaling and the add of P @ V.
The probabilities are rounded to v's dtype (or the node's `p_dtype`) before P @ V, as a bf16
flash attention does; the running statistics and o stay f32. Mq query rows and Ns keys per step
come from the target's memories (a static handful of queries, decode, takes 16-row tiles); D and
Dv are static. A head that fits L0A/L0B/L0C is one cube K step; a wider one (DeepSeek-V4's 512 on
A2A3) runs in head-dim panels, as pto_isa.md's flash attention does: QK^T TEXTRACTs Dk-wide panels
of q and k^T from their Mat tiles and accumulates (TMATMUL, then TMATMUL_ACC), and PV multiplies
p by Dvk-wide column panels of v, each product stored at its columns of the one pv slot.
"""
from __future__ import annotations

import math

from pto_dynamo.lowering.attention.plan import AttentionPlan
from pto_dynamo.lowering.cube.ops import Operand, is_one
from pto_dynamo.lowering.cube.tiling import _Params
from pto_dynamo.lowering.tile import (F32, U8, Direction, Distribution, GmView, KernelBuilder, Layout, PlanningError,
                                      Role, TileLoc, ceil_div, elem_type, emax, emin, emod, floor_div)
from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.ir import SUBBLOCK_IDX, SUBBLOCK_NUM
from pto_dynamo.lowering.vector.tile_rules import TilingError

Vec = TileLoc.Vec


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


class _Attention:
    """Emits the kernel; `p` binds tensors and scalars as the cube tiling does."""

    def __init__(self, plan: AttentionPlan, metas: dict, name: str, graph: str, Mq: int, Ns: int,
                 q_resident: bool = True, Dk: int | None = None, Dvk: int | None = None):
        self.plan, self.Mq, self.Ns = plan, Mq, Ns
        # q's Left tile filled once per query tile (TMOV outside the KV loop) when L0A holds it
        # beside the probabilities' Left tile; else refilled every step
        self.q_resident = q_resident
        # suffix of the tiles declared in a KV loop: the planner places tiles by name, so the
        # diagonal loop's own names keep the two loops' tiles from sharing one live range
        self.tag = ""
        self.dtype = elem_type(metas[plan.q.buffer].dtype)
        self.out_dtype = elem_type(metas[plan.out.buffer].dtype)
        self.mask_dtype = elem_type(metas[plan.mask.buffer].dtype) if plan.mask is not None else None
        self.sink_dtype = elem_type(metas[plan.sink.buffer].dtype) if plan.sink is not None else None
        self.p_round = elem_type(plan.p_dtype) if plan.p_dtype is not None else self.dtype
        box = 32 // self.dtype.itemsize
        self.Dc, self.Dvc = _round_up(plan.D, max(box, 16)), _round_up(plan.Dv, max(box, 16))
        # head-dim panels: QK^T accumulates over D in Dk-wide panels, PV computes Dv in Dvk-wide
        # column panels (one panel each when the whole head fits L0A/L0B/L0C)
        self.Dk, self.Dvk = min(Dk or self.Dc, self.Dc), min(Dvk or self.Dvc, self.Dvc)
        if self.Dk < self.Dc:
            self.q_resident = False       # q's panels are extracted from qmat at every step
        what = ("causal " if plan.causal else "masked " if plan.mask is not None else "") + ("safe " if plan.safe else "") \
            + ("sink " if plan.sink is not None else "")
        self.kb = KernelBuilder(name, graph=graph, pass_name="lowering.attention", kind="mixed",
                                description=f"{plan.out.buffer} = {what}attention (scale {plan.scale:g})")
        self.p = _Params(self.kb, metas, {plan.out.buffer})

    # -- helpers -------------------------------------------------------------------------------
    def row(self, name: str) -> tuple[str, str]:
        """A per-row f32 tile [Mq, 1] ColMajor valid (sv, 1) and its [1, Mq] RowMajor alias."""
        name = name + self.tag
        self.kb.tile(name, Vec, F32, self.Mq, 1, self.sv, 1, Layout.ColMajor)
        self.kb.tile(name + "_r", Vec, F32, 1, self.Mq, 1, self.sv)
        self.kb.emit("TRESHAPE", name + "_r", name)
        return name, name + "_r"

    def full(self, name: str, dtype, cols: int, valid_cols) -> str:
        name = name + self.tag
        self.kb.tile(name, Vec, dtype, self.Mq, cols, self.sv, valid_cols)
        return name

    def mask_of(self, name: str, row_tile: str) -> str:
        """A u8 compare mask over a [1, Mq] row alias."""
        name = name + self.tag
        self.kb.tile(name, Vec, U8, 1, _round_up(max(1, -(-self.Mq // 8)), 32), 1, ceil_div(self.sv, 8))
        return name

    def key_mask(self, name: str, vs) -> str:
        """A u8 compare mask over this core's rows of an Ns-key score tile with `vs` valid keys."""
        name = name + self.tag
        self.kb.tile(name, Vec, U8, self.Mq, _round_up(max(1, -(-self.Ns // 8)), 32), self.sv, ceil_div(vs, 8))
        return name

    def sel_tmp(self, name: str) -> str:
        name = name + self.tag
        self.kb.tile(name, Vec, F32, 1, 16, 1, 16)
        return name

    def gm_load(self, tile: str, op: Operand, r0, c0, rows, cols, row_tile_rows: int, col_tile_cols: int, nd_ok=True):
        """TLOAD the (r0, c0) window of operand `op` of batch bi into Mat tile `tile` (in place: a
        kernel input, read where it lies by the cpu target's matmul, cube/tiling.py)."""
        p, tile = self.p, tile + self.tag
        sb, sr, sc = (p.expr(s) for s in op.strides)
        off = p.expr(op.offset) + self.bi * sb + r0 * sr + c0 * sc
        nd = is_one(op.strides[2])
        self.kb.tile(tile, TileLoc.Mat, self.dtype, row_tile_rows, col_tile_cols, rows, cols,
                     Layout.RowMajor if nd else Layout.ColMajor)
        tensor = p.tensor(op.buffer)
        view = self.kb.view(tensor, off, rows, cols, sr) if nd else GmView(tensor, off, rows, cols, 1, sc, dn=True)
        self.kb.emit("TLOAD", tile, view, **self.in_place(tensor))
        return tile

    def in_place(self, tensor: str) -> dict:
        """The TLOAD attrs of a matmul operand from `tensor`: in place unless the kernel writes it."""
        return {} if self.kb.is_output(tensor) else {"in_place": True}

    # -- the kernel ------------------------------------------------------------------------------
    def build(self):
        plan, kb, p, Mq, Ns = self.plan, self.kb, self.p, self.Mq, self.Ns
        for op in (plan.q, plan.kt, plan.v, plan.mask, plan.sink, plan.out):
            if op is not None:
                p.tensor(op.buffer)
        B, M, S = (p.expr(e) for e in (plan.batch, plan.M, plan.S))
        qk = kb.pipe("qk", F32, Mq * Ns)
        pp = kb.pipe("pp", self.dtype, Mq * Ns, direction=Direction.V2C)
        pv = kb.pipe("pv", F32, Mq * self.Dvc)
        tm = ceil_div(M, Mq)
        with kb.tile_loop("t", B * tm, Distribution.CHUNKED) as t:
            self.bi = p.let("bi", floor_div(t, emax(tm, 1)))
            m0 = p.let("m0", emod(t, emax(tm, 1)) * Mq)
            vm = p.let("vm", emin(Mq, M - m0))
            share = p.let("share", ceil_div(vm, SUBBLOCK_NUM))
            s0 = p.let("sub0", SUBBLOCK_IDX * share)
            self.sv = sv = p.let("sv", emax(emin(share, vm - s0), 0))
            self.r0 = m0 + s0                    # this vector core's first query row
            # persistent tiles: declared outside the stages that share them
            o = self.full("o", F32, self.Dvc, plan.Dv)
            m_run, m_run_r = self.row("m_run")
            l_run, l_run_r = self.row("l_run")
            kb.tile("qmat", TileLoc.Mat, self.dtype, Mq, self.Dc, vm, plan.D)
            if self.q_resident:
                kb.tile("lq", TileLoc.Left, self.dtype, Mq, self.Dc, vm, plan.D)
            with kb.stage(Role.VECTOR):
                kb.emit("TEXPANDS", m_run_r, -math.inf)
                kb.emit("TEXPANDS", l_run_r, 0.0)
                kb.emit("TEXPANDS", o, 0.0)
            with kb.stage(Role.CUBE):
                q = plan.q
                sb, sr = p.expr(q.strides[0]), p.expr(q.strides[1])
                kb.emit("TLOAD", "qmat", kb.view(p.tensor(q.buffer), p.expr(q.offset) + self.bi * sb + m0 * sr,
                                                 vm, plan.D, sr), **self.in_place(p.tensor(q.buffer)))
                if self.q_resident:
                    kb.emit("TMOV", "lq", "qmat")
            if plan.causal:
                # keys [0, all_seen) are visible to every row of the tile (j0 + Ns - 1 <= m0); the
                # steps up to the tile's last row cross the diagonal and mask; later keys are
                # masked for every row and skipped
                all_seen = emin(S, floor_div(m0 + 1, Ns) * Ns)
                steps = (("j0", 0, all_seen, False), ("j1", all_seen, emin(S, m0 + vm), True))
            else:
                steps = (("j0", 0, S, False),)
            for var, start, stop, diagonal in steps:
                self.tag = "_d" if diagonal else ""
                with kb.serial_loop(var, start, stop, Ns) as j0:
                    p.bound.add(var)
                    self._kv_step(qk, pp, pv, j0, stop, vm, s0, m_run_r, l_run_r, o, diagonal)
            self.tag = ""
            with kb.stage(Role.VECTOR):
                self._finish(o, m_run_r, l_run, l_run_r)

    def _kv_step(self, qk, pp, pv, j0, stop, vm, s0, m_run_r, l_run_r, o, diagonal: bool):
        """One Ns-key step of the KV loop, keys [j0, min(j0 + Ns, stop)); `diagonal`: apply the
        causal mask (keys after a row's own position get -inf). The diagonal loop stops at the
        tile's last row, so its last step takes only the keys some row of the tile sees (half of
        a 128-key step for every other 64-query tile)."""
        kb, plan, p = self.kb, self.plan, self.p
        vs = p.let("vs", emin(self.Ns, stop - j0))
        self._scores(qk, j0, vm, vs)
        alpha, alpha_r = self.row("alpha")   # declared outside the stages: the vector stage's last add reads it
        self._softmax(qk, pp, j0, s0, vs, m_run_r, l_run_r, alpha_r, diagonal)
        self._pv(pp, pv, j0, vm, vs)
        with kb.stage(Role.VECTOR):
            kb.emit("TPOP", pipe="pv")
            pvt = self.full("pvt", F32, self.Dvc, plan.Dv)        # read in the slot: freed after the add
            kb.emit("TLOAD", pvt, GmView(pv.slot(Role.VECTOR), s0 * self.Dvc, self.sv, plan.Dv, self.Dvc))
            kb.emit("TROWEXPANDMUL", o, o, alpha)                 # o = o * alpha + pv: one pass (fuse.py)
            kb.emit("TADD", o, o, pvt)
            kb.emit("TFREE", pipe="pv")

    def _scores(self, qk, j0, vm, vs):
        kb, plan, Mq, Ns = self.kb, self.plan, self.Mq, self.Ns
        with kb.stage(Role.CUBE):
            kmat = self.gm_load("kmat", plan.kt, 0, j0, plan.D, vs, self.Dc, Ns)
            acc = "acc_s" + self.tag
            kb.tile(acc, TileLoc.Acc, F32, Mq, Ns, vm, vs)
            if self.Dk == self.Dc:            # the whole head in one K step
                lq, rk = "lq" + self.tag, "rk" + self.tag
                if self.q_resident:
                    lq = "lq"
                else:
                    kb.tile(lq, TileLoc.Left, self.dtype, Mq, self.Dc, vm, plan.D)
                    kb.emit("TMOV", lq, "qmat")
                kb.tile(rk, TileLoc.Right, self.dtype, self.Dc, Ns, plan.D, vs)
                kb.emit("TMOV", rk, kmat)
                kb.emit("TALLOC", pipe="qk")      # held over the product: it may go there directly
                kb.emit("TMATMUL", acc, lq, rk)
            else:                             # Dk-wide panels of q and k^T, accumulated
                for i, d0 in enumerate(range(0, plan.D, self.Dk)):
                    dk, width = min(self.Dk, plan.D - d0), min(self.Dk, self.Dc - d0)
                    lq, rk = f"lq{i}{self.tag}", f"rk{i}{self.tag}"
                    kb.tile(lq, TileLoc.Left, self.dtype, Mq, width, vm, dk)
                    kb.tile(rk, TileLoc.Right, self.dtype, width, Ns, dk, vs)
                    kb.emit("TEXTRACT", lq, "qmat", row=0, col=d0)
                    kb.emit("TEXTRACT", rk, kmat, row=d0, col=0)
                    if i == 0:
                        kb.emit("TMATMUL", acc, lq, rk)
                    else:
                        kb.emit("TMATMUL_ACC", acc, acc, lq, rk)
                kb.emit("TALLOC", pipe="qk")
            kb.emit("TSTORE", GmView(qk.slot(Role.CUBE), 0, vm, vs, Ns), acc)
            kb.emit("TPUSH", pipe="qk")

    def _softmax(self, qk, pp, j0, s0, vs, m_run_r, l_run_r, alpha_r, diagonal: bool):
        """The vector stage's softmax step: P into the pp slot, the running max and sum updated,
        alpha = exp(m_old - m_new) (o's rescaling, the step's last vector stage) into `alpha_r`."""
        kb, plan, p, Ns, sv = self.kb, self.plan, self.p, self.Ns, self.sv
        with kb.stage(Role.VECTOR):
            kb.emit("TPOP", pipe="qk")
            s = self.full("s", F32, Ns, vs)
            mx, mx_r = self.row("mx")             # (the per-row tiles' TRESHAPEs before the pairs that fuse)
            rs, rs_r = self.row("rs")
            window = GmView(qk.slot(Role.VECTOR), s0 * Ns, sv, vs, Ns)
            if plan.scale != 1.0:                 # s = scale x (the scores, read in the slot)
                raw = self.full("s_raw", F32, Ns, vs)
                kb.emit("TLOAD", raw, window)
                kb.emit("TMULS", s, raw, plan.scale)
            else:
                kb.emit("TLOAD", s, window)
            if plan.mask is not None:
                mk = self.full("mk", self.mask_dtype, Ns, vs)
                mask = plan.mask
                sb, sr, sc = (p.expr(x) for x in mask.strides)
                off = p.expr(mask.offset) + self.bi * sb + self.r0 * sr + j0 * sc
                kb.emit("TLOAD", mk, kb.view(p.tensor(mask.buffer), off, sv, vs, sr))
                if self.mask_dtype != F32:
                    mkf = self.full("mkf", F32, Ns, vs)
                    kb.emit("TCVT", mkf, mk, round="CAST_RINT")
                    mk = mkf
                if self.mask_dtype == U8:         # bool: True drops the key
                    keep = self.key_mask("keep", vs)
                    kb.emit("TCMPS", keep, mk, 0.0, mode="EQ")
                    kb.emit("TSELS", s, keep, s, -math.inf, self.sel_tmp("sel_tmp_m"))
                else:
                    kb.emit("TADD", s, s, mk)
            tmp = self.full("red_tmp", F32, Ns, vs)
            if diagonal:                          # key j0 + c is seen by query r0 + r iff c <= r + r0 - j0
                tri = tmp                         # (the reductions' scratch holds the triangle)
                kb.emit("TTRI", tri, self.r0 - j0, upper=False)
                seen = self.key_mask("seen", vs)
                kb.emit("TCMPS", seen, tri, 0.0, mode="NE")
                kb.emit("TSELS", s, seen, s, -math.inf, self.sel_tmp("sel_tmp_c"))
            kb.emit("TROWMAX", mx, s, tmp)            # (right after the scale: one pass, fuse.py)
            kb.emit("TFREE", pipe="qk")
            mnew, mnew_r = self.row("mnew")
            kb.emit("TMAX", mnew_r, m_run_r, mx_r)
            finite = self.mask_of("finite", mnew_r)
            kb.emit("TCMPS", finite, mnew_r, -math.inf, mode="NE")
            msafe, msafe_r = self.row("msafe")
            kb.emit("TSELS", msafe_r, finite, mnew_r, 0.0, self.sel_tmp("sel_tmp"))
            kb.emit("TSUB", alpha_r, m_run_r, msafe_r)
            kb.emit("TEXP", alpha_r, alpha_r)
            kb.emit("TALLOC", pipe="pp")          # held over exp and rounding: P may go there directly
            # exp, row sum and rounding: one pass (fuse.py); p its own tile, so that its one writer
            # computes it in the pp slot (slot_stores.py) when it is not rounded
            p_exp = self.full("p", F32, Ns, vs)
            kb.emit("TROWEXPANDSUB", p_exp, s, msafe)
            kb.emit("TEXP", p_exp, p_exp)
            kb.emit("TROWSUM", rs, p_exp, tmp)
            pc = p_exp
            if self.p_round != F32:                  # the exp weights rounded (bf16 P @ V)
                pc = self.full("pc", self.p_round, Ns, vs)
                kb.emit("TCVT", pc, p_exp, round="CAST_RINT")
            if self.p_round != self.dtype:           # ... and back to v's dtype
                pw = self.full("pw", self.dtype, Ns, vs)
                kb.emit("TCVT", pw, pc, round="CAST_RINT")
                pc = pw
            kb.emit("TSTORE", GmView(pp.slot(Role.VECTOR), s0 * Ns, sv, vs, Ns), pc)
            kb.emit("TPUSH", pipe="pp")
            kb.emit("TMUL", l_run_r, l_run_r, alpha_r)
            kb.emit("TADD", l_run_r, l_run_r, rs_r)
            kb.emit("TMOV", m_run_r, mnew_r)

    def _pv(self, pp, pv, j0, vm, vs):
        kb, plan, Mq, Ns = self.kb, self.plan, self.Mq, self.Ns
        with kb.stage(Role.CUBE):
            kb.emit("TPOP", pipe="pp")
            pmat, lp, rv, acc = (name + self.tag for name in ("pmat", "lp", "rv", "acc_o"))
            kb.tile(pmat, TileLoc.Mat, self.dtype, Mq, Ns, vm, vs)
            kb.emit("TLOAD", pmat, GmView(pp.slot(Role.CUBE), 0, vm, vs, Ns))
            vmat = self.gm_load("vmat", plan.v, j0, 0, vs, plan.Dv, Ns, self.Dvc)
            kb.tile(lp, TileLoc.Left, self.dtype, Mq, Ns, vm, vs)
            kb.emit("TMOV", lp, pmat)
            if self.Dvk == self.Dvc:          # the whole value head in one product
                kb.tile(rv, TileLoc.Right, self.dtype, Ns, self.Dvc, vs, plan.Dv)
                kb.emit("TMOV", rv, vmat)
                kb.tile(acc, TileLoc.Acc, F32, Mq, self.Dvc, vm, plan.Dv)
                kb.emit("TALLOC", pipe="pv")
                kb.emit("TMATMUL", acc, lp, rv)
                kb.emit("TSTORE", GmView(pv.slot(Role.CUBE), 0, vm, plan.Dv, self.Dvc), acc)
            else:                             # Dvk-wide column panels of v, each its own product
                kb.emit("TALLOC", pipe="pv")
                for i, c0 in enumerate(range(0, plan.Dv, self.Dvk)):
                    dvk, width = min(self.Dvk, plan.Dv - c0), min(self.Dvk, self.Dvc - c0)
                    rv_i, acc_i = f"{rv}{i}", f"{acc}{i}"
                    kb.tile(rv_i, TileLoc.Right, self.dtype, Ns, width, vs, dvk)
                    kb.emit("TEXTRACT", rv_i, vmat, row=0, col=c0)
                    kb.tile(acc_i, TileLoc.Acc, F32, Mq, width, vm, dvk)
                    kb.emit("TMATMUL", acc_i, lp, rv_i)
                    kb.emit("TSTORE", GmView(pv.slot(Role.CUBE), c0, vm, dvk, self.Dvc), acc_i)
            kb.emit("TFREE", pipe="pp")           # after the products: p may be read in the slot
            kb.emit("TPUSH", pipe="pv")

    def _finish(self, o, m_run_r, l_run, l_run_r):
        kb, plan, p = self.kb, self.plan, self.p
        if plan.sink is not None:                # l += exp(sink - m)
            sink = plan.sink
            sb, sr = p.expr(sink.strides[0]), p.expr(sink.strides[1])
            view = kb.column_view(p.tensor(sink.buffer), p.expr(sink.offset) + self.bi * sb + self.r0 * sr, self.sv, sr)
            sk, sk_r = self.row("sink")
            if self.sink_dtype == F32:
                kb.emit("TLOAD", sk, view)
            else:
                kb.tile("sink_raw", Vec, self.sink_dtype, self.Mq, 1, self.sv, 1, Layout.ColMajor)
                kb.emit("TLOAD", "sink_raw", view)
                kb.emit("TCVT", sk, "sink_raw", round="CAST_RINT")
            kb.emit("TSUB", sk_r, sk_r, m_run_r)
            kb.emit("TEXP", sk_r, sk_r)
            kb.emit("TADD", l_run_r, l_run_r, sk_r)
        div = l_run
        if plan.safe:            # an all -inf row: o = 0, l = 0 -> 0 / 1
            nonzero = self.mask_of("nonzero", l_run_r)
            kb.emit("TCMPS", nonzero, l_run_r, 0.0, mode="NE")
            lsafe, lsafe_r = self.row("lsafe")
            kb.emit("TSELS", lsafe_r, nonzero, l_run_r, 1.0, self.sel_tmp("sel_tmp_f"))
            div = lsafe
        kb.emit("TROWEXPANDDIV", o, o, div)
        res = o
        if self.out_dtype != F32:
            res = self.full("o_cvt", self.out_dtype, self.Dvc, plan.Dv)
            kb.emit("TCVT", res, o, round="CAST_RINT")
        out = plan.out
        sb, sr = p.expr(out.strides[0]), p.expr(out.strides[1])
        off = p.expr(out.offset) + self.bi * sb + self.r0 * sr
        kb.emit("TSTORE", kb.view(p.tensor(out.buffer), off, self.sv, plan.Dv, sr), res)


# (query rows, keys) per step, in order of preference. Prefill takes 64-query tiles with 128-key
# steps first: the vector stage rescales and adds the Mq x Dv output block once per step, so per
# (query, key) pair that is half the work of 128 x 64 steps, and P @ V runs over K = 128 keys
# (1 thread, B=1 H=16 T=1024 D=128 causal, Sapphire Rapids: f32 1.15 -> 1.08x inductor's time,
# bf16 1.93 -> 1.69x; 64 x 256 does not fit the vector memory). A static handful of queries
# (decode) takes 16-row tiles with 128-key steps: half the steps (pipe handshakes, TMATMUL calls)
# of 64-key ones (decode B=8 H=16 S=2048: 0.91-0.98x inductor against 0.99-1.05x; 512-key steps
# measured 1.22x).
TILE_CHOICES = ((64, 128), (128, 64), (32, 128), (32, 64), (16, 64))
DECODE_TILE_CHOICES = ((16, 128),)


# Head-dim panel widths tried when a whole head does not fit the cube memories (wide heads, e.g.
# DeepSeek-V4's 512): QK^T then accumulates over D panels and PV computes Dv panel by panel.
HEAD_PANELS = (256, 128, 64)


def _head_panels(plan: AttentionPlan):
    """(Dk, Dvk, q_resident) in order of preference: whole heads (None), then narrower panels."""
    yield None, None, True
    yield None, None, False
    for width in HEAD_PANELS:
        if width < plan.D or width < plan.Dv:
            yield (width if width < plan.D else None), (width if width < plan.Dv else None), False


def tile_attention(plan: AttentionPlan, metas: dict, name: str, graph: str, capacity: TargetCapacity):
    """The planned, verified mixed TileProgram of `plan` and its tensor parameters' buffers."""
    attempts = []
    decode = isinstance(plan.M, int) and plan.M <= 16
    for Mq, Ns in (DECODE_TILE_CHOICES if decode else ()) + TILE_CHOICES:
        for Dk, Dvk, q_resident in _head_panels(plan):
            a = _Attention(plan, metas, name, graph, Mq, Ns, q_resident, Dk, Dvk)
            try:
                a.build()
                return a.kb.build(capacity), list(a.p.tensors)
            except PlanningError as err:
                panels = f" D panels {Dk} / Dv panels {Dvk}" if Dk or Dvk else ""
                attempts.append(f"Mq={Mq} Ns={Ns}{panels}{'' if q_resident else ' (q refilled per step)'}: {err}")
    raise TilingError(f"attention kernel {name}: no tile size fits the target's memory:\n  " + "\n  ".join(attempts[-2:]))
