"""Risk's pure domain: limits, policy, state, the engine. No I/O, threads or clocks (now_ns is passed in)."""
