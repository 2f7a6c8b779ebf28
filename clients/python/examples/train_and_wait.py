"""Start a training job and wait for it (admin key: run this on a server, never in a browser).

    FASTINSIGHT_URL=... FASTINSIGHT_ADMIN_KEY=... python train_and_wait.py als
    ... python train_and_wait.py popularity --no-activate
"""

from __future__ import annotations

import sys

from fastinsight_client import FastInsight, JobFailedError


def main(algorithm: str, activate: bool) -> int:
    with FastInsight() as fi:
        started = fi.train(algorithm, activate=activate)
        print(f"job {started.job_id} started ({algorithm}); waiting")
        try:
            job = fi.wait_for_job(started.job_id, timeout=3600, poll=2.0)
        except JobFailedError as failed:
            print(f"training failed: {failed.job.error or failed.job.output_tail[-2000:]}")
            return 1
        print(f"done in {job.duration_seconds:.1f}s")
        newest = max((v for v in fi.list_models() if v.algorithm == algorithm), key=lambda v: v.created_at)
        print(f"version {newest.version} active={newest.active} metrics={newest.metrics}")
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sys.exit(main(args[0] if args else "als", "--no-activate" not in sys.argv))
