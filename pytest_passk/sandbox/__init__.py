"""Sandboxed execution: the test process's runner, the fork server, its confinement, the verdict journal."""
