"""Unit tests (a package so the import rules can name tests.unit)."""
