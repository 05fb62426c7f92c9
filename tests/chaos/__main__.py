"""``python -m tests.chaos [--seed S] [--kill-seconds K] [--minutes M] [--keep] [--keep-going] [--show-plan]``.

Without ``--minutes``: one soak of the seed (``--seed``, else ``$AION_CHAOS_SEED``, else random). With it: rounds
until the time is up, the first with that seed and each next one with a seed drawn from it; every round prints its
seed and, if it fails, the command that replays it. Exits 1 if any round failed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos import CI_KILL_SECONDS, seed_from_env
from tests.chaos.driver import plan_of, run_soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--kill-seconds", type=float, default=None, help="kill phase of a round (default 45, 60 with --minutes)"
    )
    parser.add_argument("--minutes", type=float, default=None, help="run rounds for this long")
    parser.add_argument("--quiet-timeout", type=float, default=60.0, help="liveness deadline after the last kill")
    parser.add_argument("--dir", type=Path, default=None, help="where run directories go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the run directories of rounds that passed")
    parser.add_argument("--keep-going", action="store_true", help="go on with the next round after a failure")
    parser.add_argument("--show-plan", action="store_true", help="print the seed's plan as JSON and exit")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else seed_from_env()
    kill_seconds = args.kill_seconds or (60.0 if args.minutes else CI_KILL_SECONDS)
    if args.show_plan:
        print(json.dumps(plan_of(seed, kill_seconds).to_json(), indent=1))
        return 0
    base = args.dir or Path(tempfile.mkdtemp(prefix="aion-chaos-"))
    base.mkdir(parents=True, exist_ok=True)
    seeds = random.Random(seed)
    end = time.monotonic() + (args.minutes or 0) * 60
    failed: list[int] = []
    round_seed, rounds = seed, 0
    while True:
        rounds += 1
        run_dir = base / f"seed-{round_seed}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        report = run_soak(round_seed, kill_seconds, run_dir, quiet_timeout=args.quiet_timeout)
        print(report.summary(), flush=True)
        if report.ok and not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        if not report.ok:
            failed.append(round_seed)
            if not args.keep_going:
                break
        if args.minutes is None or time.monotonic() + kill_seconds + 30 > end:
            break
        round_seed = seeds.randrange(2**32)
    print(f"chaos: {rounds} round(s), {len(failed)} failed" + (f": seeds {failed}" if failed else ""))
    if not failed and not args.keep and args.dir is None:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
