"""An engine running ``churn`` workflows until SIGKILLed: ``python -m tests.visibility.churn_engine_proc DATA N``."""

from __future__ import annotations

import sys
import threading

import aion
from tests.visibility import flows


def main() -> None:
    data, count = sys.argv[1], int(sys.argv[2])
    engine = aion.Engine(data, workflows=[flows.churn], activity_workers=1, search_attributes=flows.SCHEMA)
    engine.start()
    for i in range(count):
        engine.start_workflow(flows.churn, 10_000, workflow_id=f"churn-{i}", search_attributes={"CustomerId": f"c-{i}"})
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
