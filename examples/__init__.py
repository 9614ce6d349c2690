"""Example models (importable as `examples.deepseek_v4` from the repository root)."""
