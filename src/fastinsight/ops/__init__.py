"""Operations: backup/restore archives, monitoring, deploy, clean-up (run by the CLI and jobs)."""
