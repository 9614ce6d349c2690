"""`make demo`: compile a small transformer block with a dynamic token count through
backend="pto", compare with eager at several token counts, print the counters."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pto_dynamo  # noqa: E402
from examples.transformer_block import make_block  # noqa: E402

TOKEN_COUNTS = (1, 2, 3, 17, 64, 100, 255, 256, 512)


def main() -> int:
    ok = True
    for dtype, tol in ((torch.float32, {}), (torch.bfloat16, {"rtol": 2e-2, "atol": 2e-2})):
        torch._dynamo.reset()
        pto_dynamo.reset_stats()
        block = make_block(dtype)
        compiled = torch.compile(block, backend="pto", fullgraph=True)
        print(f"transformer block ({dtype}): RMSNorm, causal attention, SwiGLU MLP; dim 64")
        with torch.no_grad():
            for T in TOKEN_COUNTS:
                x = torch.randn(T, 64, dtype=dtype)
                pto_dynamo.mark_dynamic(x, 0, name="T")
                got, want = compiled(x), block(x)
                err = (got.float() - want.float()).abs().max().item()
                try:
                    torch.testing.assert_close(got, want, **tol)
                    status = "match"
                except AssertionError:
                    status, ok = "MISMATCH", False
                print(f"  T={T:4d}  max|pto - eager| = {err:.2e}  {status}")
        s = pto_dynamo.stats()
        print(f"  counters: graphs_received={s['graphs_received']} signatures_compiled={s['signatures_compiled']} "
              f"disk_hits={s['disk_hits']} fallback_regions={s['fallback_regions']} "
              f"native_builds={s['native_builds']} launches={s['launches']} host_nodes={s['host_nodes']}")
    print("demo:", "all token counts match eager" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
