"""What operators use: one client for the four services' gRPC APIs, the `status` and action commands, units."""
