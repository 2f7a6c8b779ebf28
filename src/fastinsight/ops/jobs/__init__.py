"""Operations jobs: the allowlist of kinds, the runner that executes them, and the scheduler."""
