"""End-to-end test harness: a real Kubernetes control plane and real Restate processes.

This is a package (not a bare test directory) so that `restate_op`'s `dev` command and the
benchmarks can import `e2e.controlplane` and `e2e.restate_netns` from a checkout, and so that
its module names never clash with the unit tests under `tests/`.
"""
