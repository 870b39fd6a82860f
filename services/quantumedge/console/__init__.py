"""`quantumedge console`: the operators' web console, read through the services' gRPC APIs."""
