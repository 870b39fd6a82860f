"""QuantumEdge test suite (a package so `tests.harness` imports the same way from pytest and from tools/)."""
