"""`make bench`: speed and memory figures, printed (tests never assert wall-clock time)."""
