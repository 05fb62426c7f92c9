"""The soak's plan: a pure function of ``(seed, kill_seconds)``.

It holds the workflows to start (id, type, spec, when), what each must end with, the signals and cancellations
the engine process delivers (and when), and the kill schedule (when, and which kind of process). The same seed and
size give the same plan; only the interleaving with the real processes differs from one run to the next.

Times are seconds after the soak's clock starts (``t0``, when the first engine is ready).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

#: Workflows started per second of kill phase.
WORKFLOWS_PER_SECOND = 1.0
#: Workflows are started during the first part of the kill phase, so that most of their life is under fire.
START_WINDOW = 0.6
#: Signals and cancellations are delivered before this fraction of the kill phase.
ACTION_WINDOW = 0.9
#: Kill targets and their weights: a workflow process, an activity worker, the engine, or the engine and then its
#: successor while it starts (imports, opens the store, recovers the running workflows). An engine kill closer than
#: ENGINE_KILL_SPACING to the previous one becomes a workflow-process kill, so every engine makes some progress.
TARGETS = (("run", 0.45), ("worker", 0.35), ("engine", 0.14), ("engine_twice", 0.06))
ENGINE_KILL_SPACING = 4.0
SHAPES = ("chain", "sleeper", "signals", "parent", "looper", "cancellable")


@dataclass
class Expected:
    """What a workflow must end with (status of its last run, and its result or failure type)."""

    status: str
    result: Any = None
    failure_type: str | None = None
    runs: int = 1
    #: Payloads of the ``item`` signals, in the order they must be received (``signals`` shape).
    signals: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    #: Ids of the child workflows it must have started, in order (``parent`` shape).
    children: list[str] = field(default_factory=list)


@dataclass
class PlannedWorkflow:
    workflow_id: str
    workflow_type: str
    args: list[Any]
    expected: Expected
    #: When the engine process starts it; ``None`` for a child (its parent starts it).
    start_at: float | None = None


@dataclass
class Action:
    """Something the engine process does at ``at``: ``start``, ``signal`` (payload) or ``cancel``."""

    at: float
    kind: str
    workflow_id: str
    payload: Any = None


@dataclass
class Kill:
    at: float
    target: str
    #: In [0, 1): which of the live candidates (sorted by supervision-tree id) is killed; for ``engine_twice``,
    #: how far into its start the successor is killed (0.1 s to 1.3 s).
    pick: float


@dataclass
class Plan:
    seed: int
    kill_seconds: float
    log: str
    workflows: list[PlannedWorkflow]
    actions: list[Action]
    kills: list[Kill]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        workflows = [PlannedWorkflow(**{**w, "expected": Expected(**w["expected"])}) for w in data["workflows"]]
        return cls(
            seed=data["seed"],
            kill_seconds=data["kill_seconds"],
            log=data["log"],
            workflows=workflows,
            actions=[Action(**a) for a in data["actions"]],
            kills=[Kill(**k) for k in data["kills"]],
        )

    def workflow(self, workflow_id: str) -> PlannedWorkflow:
        for planned in self.workflows:
            if planned.workflow_id == workflow_id:
                return planned
        raise KeyError(workflow_id)


class _Builder:
    def __init__(self, seed: int, kill_seconds: float, log: str) -> None:
        self.rng = random.Random(f"aion-chaos-plan:{seed}")
        self.kill_seconds = kill_seconds
        self.log = log
        self.workflows: list[PlannedWorkflow] = []
        self.actions: list[Action] = []

    # -- pieces -----------------------------------------------------------------------------------------------

    def steps(self, n: int) -> list[list[Any]]:
        """``n`` activity steps ``[value, fail_first, delay]``."""
        rng = self.rng
        return [[rng.randint(1, 100), rng.choice((0, 0, 0, 1, 2)), round(rng.uniform(0.05, 0.5), 3)] for _ in range(n)]

    def spec(self, **extra: Any) -> dict[str, Any]:
        return {"log": self.log, "retry_interval": self.rng.choice((0.05, 0.1, 0.2)), **extra}

    def action_time(self, after: float) -> float:
        return round(min(after, self.kill_seconds * ACTION_WINDOW), 3)

    # -- shapes -----------------------------------------------------------------------------------------------

    def chain(self, wid: str, start: float) -> None:
        rng = self.rng
        spec = self.spec(steps=self.steps(rng.randint(3, 8)), parallel=rng.random() < 0.3, decline=rng.random() < 0.2)
        total = sum(s[0] for s in spec["steps"])
        expected = Expected("failed", failure_type="Declined") if spec["decline"] else Expected("completed", total)
        self.add(wid, "chain", [spec], expected, start)

    def sleeper(self, wid: str, start: float) -> None:
        rng = self.rng
        n = rng.randint(2, 4)
        spec = self.spec(
            sleeps=[round(rng.uniform(0.2, 2.0), 3) for _ in range(n)],
            steps=self.steps(n),
            cancel_timer=rng.random() < 0.5,
        )
        self.add(wid, "sleeper", [spec], Expected("completed", sum(s[0] for s in spec["steps"])), start)

    def signals(self, wid: str, start: float) -> None:
        rng = self.rng
        count = rng.randint(2, 4)
        spec = self.spec(count=count, delay=round(rng.uniform(0.05, 0.2), 3))
        payloads = [f"{wid}-s{i}" for i in range(count)]
        at = start
        for payload in payloads:
            at += rng.uniform(0.3, 4.0)
            self.actions.append(Action(self.action_time(at), "signal", wid, payload))
        self.add(wid, "signals", [spec], Expected("completed", payloads, signals=payloads), start)

    def parent(self, wid: str, start: float) -> None:
        rng = self.rng
        kids, outcomes = [], []
        for j in range(rng.randint(1, 3)):
            kid = self.spec(
                steps=self.steps(rng.randint(1, 3)),
                wait_signal=rng.random() < 0.4,
                bonus=rng.randint(1, 50),
                fail=rng.random() < 0.2,
            )
            kids.append(kid)
            total = sum(s[0] for s in kid["steps"]) + (kid["bonus"] if kid["wait_signal"] else 0)
            kid_id = f"{wid}.c{j}"
            if kid["fail"]:
                outcomes.append("failed:ValueError")
                self.add(kid_id, "child", [kid], Expected("failed", failure_type="ValueError"), None)
            else:
                outcomes.append(total)
                self.add(kid_id, "child", [kid], Expected("completed", total), None)
        spec = self.spec(children=kids)
        children = [f"{wid}.c{j}" for j in range(len(kids))]
        self.add(wid, "parent", [spec], Expected("completed", outcomes, children=children), start)

    def looper(self, wid: str, start: float) -> None:
        rng = self.rng
        runs = rng.randint(3, 5)
        spec = self.spec(runs=runs, steps=self.steps(runs), sleep=round(rng.uniform(0.1, 0.8), 3))
        total = sum(s[0] for s in spec["steps"])
        self.add(wid, "looper", [spec, 0, 0], Expected("completed", total, runs=runs), start)

    def cancellable(self, wid: str, start: float) -> None:
        rng = self.rng
        spec = self.spec(
            steps=self.steps(2),
            mode=rng.choice(("cleanup", "escape")),
            wait=rng.choice(("activity", "sleep", "sleep", "signal")),
        )
        self.actions.append(Action(self.action_time(start + rng.uniform(0.5, 6.0)), "cancel", wid))
        expected = (
            Expected("completed", "cleaned up", cancel_requested=True)
            if spec["mode"] == "cleanup"
            else Expected("cancelled", cancel_requested=True)
        )
        self.add(wid, "cancellable", [spec], expected, start)

    def add(self, wid: str, wtype: str, args: list[Any], expected: Expected, start: float | None) -> None:
        self.workflows.append(PlannedWorkflow(wid, wtype, args, expected, start))
        if start is not None:
            self.actions.append(Action(start, "start", wid))

    # -- the whole plan ---------------------------------------------------------------------------------------

    def kills(self) -> list[Kill]:
        rng = self.rng
        kills: list[Kill] = []
        at, last_engine = 1.0, -ENGINE_KILL_SPACING
        names, weights = [name for name, _ in TARGETS], [weight for _, weight in TARGETS]
        while at < self.kill_seconds:
            target = rng.choices(names, weights)[0]
            if target.startswith("engine"):
                if at - last_engine < ENGINE_KILL_SPACING:
                    target = "run"
                else:
                    last_engine = at
            kills.append(Kill(round(at, 3), target, rng.random()))
            at += rng.uniform(0.3, 1.5)
        return kills


def build_plan(seed: int, kill_seconds: float, log: str) -> Plan:
    """The plan for ``seed`` and a kill phase of ``kill_seconds``; ``log`` is the execution log's path."""
    builder = _Builder(seed, kill_seconds, log)
    rng = builder.rng
    count = max(len(SHAPES), round(kill_seconds * WORKFLOWS_PER_SECOND))
    shapes = list(SHAPES)
    rng.shuffle(shapes)
    shapes += [rng.choice(SHAPES) for _ in range(count - len(SHAPES))]
    starts = sorted(round(rng.uniform(0.0, kill_seconds * START_WINDOW), 3) for _ in range(count))
    for index, (shape, start) in enumerate(zip(shapes, starts, strict=True)):
        getattr(builder, shape)(f"{shape}-{index}", start)
    kills = builder.kills()
    actions = sorted(builder.actions, key=lambda a: (a.at, a.kind != "start"))
    return Plan(seed, kill_seconds, log, builder.workflows, actions, kills)
