"""Training: snapshot -> matrix -> fit -> version -> activate, and the version pruning rule."""
