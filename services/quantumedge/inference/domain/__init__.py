"""Inference's pure domain: the feature spec, online and offline features, row ordering, drift."""
