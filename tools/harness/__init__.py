"""Real components for local runs and tests (a Kafka broker, an OpenBao server, their processes and PKI): tools
and tests both import them; tools never import tests."""
