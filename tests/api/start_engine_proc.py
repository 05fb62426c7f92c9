"""An engine that starts one ``waits`` run with a request id and never reports it: the test SIGKILLs it
between the start and its reply. ``python -m tests.api.start_engine_proc DATA WORKFLOW_ID REQUEST_ID``."""

from __future__ import annotations

import sys
import threading

import aion
from tests.api import flows


def main() -> None:
    data, workflow_id, request_id = sys.argv[1:4]
    engine = aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activity_workers=1)
    engine.start()
    print("ready", flush=True)
    engine.start_workflow(flows.waits, "first", workflow_id=workflow_id, request_id=request_id)
    threading.Event().wait()


if __name__ == "__main__":
    main()
