"""Local peers speaking real protocols (exchange formats) for tests."""
