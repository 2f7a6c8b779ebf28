"""HTTP layer: parse, authenticate, call a service, shape the response. Nothing else."""
