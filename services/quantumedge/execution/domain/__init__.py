"""Execution's pure domain: orders and their state machine, positions, filters, ids, protection, the fill model."""
