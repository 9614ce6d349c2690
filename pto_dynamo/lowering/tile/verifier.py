"""The TileProgram verifier: structure, scopes, tile legality, placement, per-instruction rules.

Checks (each failure names the kernel, the statement and what to do):
- every symbol an expression uses is bound (scalar parameter, block_idx/block_num, loop variable,
  `Let`) at that point, and every tile is declared before use, once;
- tile capacities are legal for the target: Vec RowMajor rows are a multiple of 32 bytes, Vec
  ColMajor columns likewise, cube tiles are made of whole fractal boxes; static valid regions fit;
- every tile is placed (`TASSIGN` offset) 32-byte aligned inside its memory, and tiles that are
  live at the same time do not overlap (but for an in-place pair at the one instruction that ends
  one and starts the other, on exactly the same bytes: planner.in_place_pairs);
- each instruction has the operand kinds of its spec, V-ops take only Vec tiles, and the opcode's
  own rule (verify_rules.py) accepts shapes, dtypes and layouts;
- mixed kernels (verify_pipes.py): every tile and instruction sits in a stage of the right core
  (cube tiles in the cube stage, Vec tiles in the vector stage), pipe slots are used only while
  held (TALLOC..TPUSH, TPOP..TFREE), the gm-pipe tensor is reached only through its pipe, and no
  two blocks' gm-pipe slices can overlap;
- in-place matmul operands (verify_in_place.py) come from kernel inputs and are read only by the
  moves and matmuls that can take a view.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pto_dynamo.lowering.tile import verify_in_place, verify_pipes
from pto_dynamo.lowering.tile import verify_rules  # noqa: F401  (registers the per-op rules)
from pto_dynamo.lowering.tile.capacity import TargetCapacity
from pto_dynamo.lowering.tile.expr import exprs_equal, free_names
from pto_dynamo.lowering.tile.ir import (BLOCK_IDX, BLOCK_NUM, SUBBLOCK_IDX, SUBBLOCK_NUM, FloatImm, GmView,
                                         Layout, Let, Role, SerialLoop, Stage, Stmt, TileDecl, TileInst, TileLoc,
                                         TileLoop, TileProgram, walk)
from pto_dynamo.lowering.tile.planner import in_place_pairs, live_ranges, may_share
from pto_dynamo.lowering.tile.printer import fmt_decl, fmt_expr, fmt_inst
from pto_dynamo.lowering.tile.slot_stores import check_slot_stores
from pto_dynamo.lowering.tile.specs import GM, TILE, VERIFY_RULES, op_spec


class TileVerificationError(ValueError):
    """A TileProgram breaks a rule; the message lists every violation found."""


@dataclass
class VerifyCtx:
    """What a per-instruction rule sees: the program, the target, the tiles, and `error()`."""

    program: TileProgram
    capacity: TargetCapacity | None
    decls: dict[str, TileDecl]
    errors: list[str] = field(default_factory=list)
    where: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    role: Role | None = None                              # the stage being checked
    held: set[str] = field(default_factory=set)           # pipe slots held at this point

    def error(self, message: str) -> None:
        text = f"kernel {self.program.name}: {self.where}: {message}"
        if text not in self.errors:
            self.errors.append(text)

    def tile(self, name) -> TileDecl | None:
        return self.decls.get(name) if isinstance(name, str) else None

    def same_valid(self, a: TileDecl, b: TileDecl, what: str) -> bool:
        """Report unless tiles `a` and `b` have provably equal valid regions."""
        if exprs_equal(a.valid_rows, b.valid_rows) and exprs_equal(a.valid_cols, b.valid_cols):
            return True
        self.error(f"{what}: valid region of {a.name} [{fmt_expr(a.valid_rows)}, {fmt_expr(a.valid_cols)}] "
                   f"differs from {b.name} [{fmt_expr(b.valid_rows)}, {fmt_expr(b.valid_cols)}]")
        return False

    def same_dtype(self, *tiles: TileDecl) -> bool:
        if len({t.dtype for t in tiles}) <= 1:
            return True
        self.error("element types differ: " + ", ".join(f"{t.name}: {t.dtype}" for t in tiles)
                   + " (insert a TCVT)")
        return False

    def row_major(self, *tiles: TileDecl) -> None:
        for t in tiles:
            if t.layout is not Layout.RowMajor:
                self.error(f"tile {t.name} must be RowMajor for this instruction, is {t.layout.value}")


def verify_program(program: TileProgram, capacity: TargetCapacity | None = None) -> None:
    """Raise TileVerificationError listing every violation; return None if the program is legal.

    Without a capacity, placement is not checked (a program before planning).
    """
    decls_list = [s for s in walk(program.body) if isinstance(s, TileDecl)]
    ctx = VerifyCtx(program, capacity, {d.name: d for d in decls_list})
    _check_params(ctx)
    for d in decls_list:
        ctx.where = fmt_decl(d)
        _check_decl(ctx, d)
    bound = {s.name for s in program.scalars} | {BLOCK_IDX.name, BLOCK_NUM.name}
    if program.pipes:          # a mixed kernel binds which vector core runs it at its top
        bound |= {SUBBLOCK_IDX.name, SUBBLOCK_NUM.name}
    ctx.aliases = program.aliases()
    _check_scopes(ctx, program.body, bound, set(), [0])
    verify_pipes.check_sharding(ctx)
    verify_in_place.check_in_place(ctx)
    check_slot_stores(ctx)
    if capacity is not None:
        _check_placement(ctx)
    if ctx.errors:
        raise TileVerificationError(f"{len(ctx.errors)} error(s) in tile program {program.name}:\n  "
                                    + "\n  ".join(ctx.errors))


def _check_params(ctx: VerifyCtx) -> None:
    seen: set[str] = set()
    names = [p.name for p in ctx.program.params] + [s.name for s in ctx.program.scalars]
    for n in names:
        if not n.isidentifier():
            ctx.errors.append(f"kernel {ctx.program.name}: parameter name {n!r} is not an identifier")
        if n in seen or n in (BLOCK_IDX.name, BLOCK_NUM.name):
            ctx.errors.append(f"kernel {ctx.program.name}: parameter name {n!r} is used twice or reserved")
        seen.add(n)
    if not ctx.program.name.isidentifier():
        ctx.errors.append(f"kernel name {ctx.program.name!r} is not a C identifier")


def _check_decl(ctx: VerifyCtx, d: TileDecl) -> None:
    if d.rows < 1 or d.cols < 1:
        ctx.error(f"capacity {d.rows}x{d.cols} must be positive")
        return
    if d.loc is TileLoc.Vec:
        if d.layout is Layout.RowMajor and (d.cols * d.dtype.itemsize) % 32:
            ctx.error(f"a RowMajor Vec tile row must be a multiple of 32 bytes: {d.cols} x {d.dtype.itemsize} B "
                      f"= {d.cols * d.dtype.itemsize} B; use {32 // d.dtype.itemsize * -(-d.cols * d.dtype.itemsize // 32)} columns")
        if d.layout is Layout.ColMajor and (d.rows * d.dtype.itemsize) % 32:
            ctx.error(f"a ColMajor Vec tile column must be a multiple of 32 bytes: {d.rows} x {d.dtype.itemsize} B")
    else:
        inner_cols = 16 if d.loc is TileLoc.Acc else max(1, 32 // d.dtype.itemsize)
        if d.rows % 16 or d.cols % inner_cols:
            ctx.error(f"a {d.loc.name} tile is made of {16}x{inner_cols} fractal boxes; capacity {d.rows}x{d.cols} "
                      f"is not a whole number of boxes")
    for what, e, cap in (("rows", d.valid_rows, d.rows), ("cols", d.valid_cols, d.cols)):
        if e.is_Integer and not 0 <= int(e) <= cap:
            ctx.error(f"valid {what} {int(e)} exceed the capacity {cap}")


def _check_exprs(ctx: VerifyCtx, exprs, bound: set[str]) -> None:
    for e in exprs:
        missing = free_names(e) - bound
        if missing:
            ctx.error(f"expression {fmt_expr(e)} uses unbound symbol(s) {', '.join(sorted(missing))} "
                      f"(bind them with a scalar parameter, a loop or a Let before this statement)")


def _check_scopes(ctx: VerifyCtx, body: tuple[Stmt, ...], bound: set[str], tiles: set[str], counter,
                  declared: set[str] | None = None) -> None:
    # names bound inside a loop body stay inside it
    bound, tiles, declared = set(bound), set(tiles), set(declared or ())
    for s in body:
        if isinstance(s, TileDecl):
            ctx.where = fmt_decl(s)
            _check_exprs(ctx, (s.valid_rows, s.valid_cols), bound)
            if s.name in tiles or s.name in declared:
                ctx.error(f"tile {s.name} declared twice")
            # a TRESHAPE alias becomes usable at its TRESHAPE, a placed tile at its declaration
            (declared if s.name in ctx.aliases else tiles).add(s.name)
            verify_pipes.check_decl_stage(ctx, s)
        elif isinstance(s, Let):
            ctx.where = f"{s.var.name} = {fmt_expr(s.value)}"
            _check_exprs(ctx, (s.value,), bound)
            if s.var.name in bound:
                ctx.error(f"{s.var.name} is already bound")
            bound.add(s.var.name)
        elif isinstance(s, (TileLoop, SerialLoop)):
            ctx.where = f"loop {s.var.name}"
            _check_exprs(ctx, (s.count,) if isinstance(s, TileLoop) else (s.start, s.stop), bound)
            if s.var.name in bound:
                ctx.error(f"loop variable {s.var.name} is already bound")
            if isinstance(s, SerialLoop) and s.step < 1:
                ctx.error(f"loop step {s.step} must be positive")
            _check_scopes(ctx, s.body, bound | {s.var.name}, tiles, counter, declared)
        elif isinstance(s, Stage):
            ctx.where = f"{s.role.value} stage"
            if ctx.role is not None:
                ctx.error("stages do not nest")
            ctx.role, ctx.held = s.role, set()
            _check_scopes(ctx, s.body, bound, tiles, counter, declared)
            if ctx.held:
                ctx.where = f"{s.role.value} stage"
                ctx.error(f"slot(s) {sorted(ctx.held)} still held at the end of the stage (add TPUSH / TFREE)")
            ctx.role, ctx.held = None, set()
        elif isinstance(s, TileInst):
            counter[0] += 1
            ctx.where = f"instruction #{counter[0]} `{fmt_inst(s)}`"
            if s.op == "TRESHAPE" and s.outs and s.outs[0] in declared:
                tiles.add(s.outs[0])
            _check_inst(ctx, s, bound, tiles)
        else:
            ctx.error(f"unknown statement {s!r}")


def _check_inst(ctx: VerifyCtx, inst: TileInst, bound: set[str], tiles: set[str]) -> None:
    try:
        spec = op_spec(inst.op)
    except KeyError as exc:
        ctx.error(str(exc.args[0]))
        return
    operands = [(k, o) for k, o in zip(spec.outs + spec.ins, inst.outs + inst.ins)]
    if len(inst.outs) != len(spec.outs) or len(inst.ins) != len(spec.ins) or len(inst.tmps) != spec.n_tmps:
        ctx.error(f"{inst.op} takes {len(spec.outs)} output(s), {len(spec.ins)} input(s), {spec.n_tmps} scratch "
                  f"tile(s); got {len(inst.outs)}, {len(inst.ins)}, {len(inst.tmps)}")
        return
    operands += [(TILE, t) for t in inst.tmps]
    verify_pipes.check_inst_stage(ctx, inst)
    ok = all([_check_operand(ctx, spec, kind, o, bound, tiles) for kind, o in operands])
    if not ok:
        return
    rule = VERIFY_RULES.get(inst.op)
    if rule is None:
        ctx.error(f"no verify rule for {inst.op}")
    else:
        rule(inst, ctx)


def _check_operand(ctx: VerifyCtx, spec, kind: str, o, bound: set[str], tiles: set[str]) -> bool:
    """Report and return False unless operand `o` is of `kind` and usable here."""
    if kind == TILE:
        if not isinstance(o, str):
            ctx.error(f"operand {o!r} must be a tile")
        elif o not in tiles:
            ctx.error(f"tile {o} is used before it is declared (or outside the loop that declares it)")
        elif spec.vec_only and ctx.decls[o].loc is not TileLoc.Vec:
            ctx.error(f"{spec.name} is a vector instruction; tile {o} is a {ctx.decls[o].loc.name} tile")
        else:
            return True
        return False
    if kind == GM:
        if not isinstance(o, GmView):
            ctx.error(f"operand {o!r} must be a global tensor view")
            return False
        _check_exprs(ctx, o.exprs(), bound)
        if o.tensor in ctx.program.slots():
            return verify_pipes.check_slot_view(ctx, o)
        if o.tensor not in {p.name for p in ctx.program.params}:
            ctx.error(f"{o.tensor} is not a tensor parameter of the kernel")
            return False
        return verify_pipes.check_param_view(ctx, o)
    if not isinstance(o, FloatImm):
        ctx.error(f"operand {o!r} must be a scalar")
        return False
    if not o.is_const():
        _check_exprs(ctx, (o.value,), bound)
    return True


def _check_placement(ctx: VerifyCtx) -> None:
    cap = ctx.capacity
    offsets = ctx.program.offsets()
    ranges = live_ranges(ctx.program.body)
    aliases = ctx.program.aliases()
    for name, d in ctx.decls.items():
        ctx.where = fmt_decl(d)
        if name in aliases:
            if name in offsets:
                ctx.error(f"tile {name} aliases {aliases[name]} through TRESHAPE and must not have its own offset")
            continue
        if name not in offsets:
            ctx.error(f"tile {name} has no TASSIGN offset (run planner.plan_tiles)")
            continue
        off = offsets[name]
        if off % cap.alignment:
            ctx.error(f"offset {off:#x} is not {cap.alignment}-byte aligned")
        limit = cap.capacity(d.loc)
        if off < 0 or off + d.nbytes > limit:
            ctx.error(f"[{off:#x}, {off + d.nbytes:#x}) exceeds {d.loc.name} ({d.loc.memory}) capacity "
                      f"{limit} B on {cap.name}")
    names = [n for n in ctx.decls if n in offsets and n not in aliases]
    pairs = in_place_pairs(ctx.program)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            da, db = ctx.decls[a], ctx.decls[b]
            if da.loc is not db.loc:
                continue
            oa, ob = offsets[a], offsets[b]
            if oa < ob + db.nbytes and ob < oa + da.nbytes:
                ra, rb = ranges.get(a, (0, 0)), ranges.get(b, (0, 0))
                if not may_share(a, ra, b, rb, pairs) or (oa != ob and not (ra[1] < rb[0] or rb[1] < ra[0])):
                    ctx.where = f"tiles {a} and {b}"
                    ctx.error(f"live at the same time but placed at overlapping {da.loc.memory} bytes "
                              f"[{oa:#x}, {oa + da.nbytes:#x}) and [{ob:#x}, {ob + db.nbytes:#x})")
