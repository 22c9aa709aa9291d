"""Benchmarks of restate-op on the local control plane (they print figures; not tests)."""
