"""The soak's driver: runs engine incarnations in subprocesses, kills things on the plan's schedule, then checks.

Phases:

1. **Plan.** :func:`tests.chaos.plan.build_plan` from the seed; written to ``RUN_DIR/plan.json``.
2. **Kill phase** (``kill_seconds``). An engine subprocess (:mod:`tests.chaos.engine_proc`) starts and delivers the
   plan's starts, signals and cancellations on its clock. At each planned kill the driver sends ``SIGKILL`` to a
   workflow process (``run``) or an activity worker (``worker``), picked among the live ones of the engine's
   supervision tree, or to the whole engine (``engine``). After an engine kill every process of ours must be gone
   within :data:`ORPHAN_GRACE` (children die with the engine); then a new engine starts on the same data directory.
3. **Quiet phase.** No more kills; every planned workflow must reach a terminal state within ``quiet_timeout``.
4. **Stop.** SIGTERM to the engine (a graceful stop), which must exit 0; then no process of ours may be alive.
   Then one more engine starts and stops on the finished directory: it must record nothing and run nothing.
5. **Check.** :func:`tests.chaos.checker.check` over the store and the execution log.

Anything wrong along the way (an engine that exits on its own or never gets ready, an error in the engine
process's sender, a process that outlives its engine) is a failure of the soak too.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from aion.status import WorkflowStatus
from aion.store import open_store
from tests.chaos import checker
from tests.chaos.plan import Kill, Plan, build_plan

REPO = Path(__file__).resolve().parents[2]
#: How long the processes of a SIGKILLed engine may take to die.
ORPHAN_GRACE = 10.0
#: How long an engine may take from spawn to ``ready``.
READY_TIMEOUT = 60.0
#: How long a graceful stop may take.
STOP_TIMEOUT = 30.0


@dataclass
class Report:
    seed: int
    kill_seconds: float
    run_dir: Path
    workflows: int = 0
    incarnations: int = 0
    elapsed: float = 0.0
    kills: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def reproduce(self) -> str:
        return f"python -m tests.chaos --seed {self.seed} --kill-seconds {self.kill_seconds:g}"

    def summary(self) -> str:
        kills = ", ".join(f"{k} {self.kills[k]}" for k in ("run", "worker", "engine"))
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        stats = ", ".join(f"{k} {v}" for k, v in sorted(self.stats.items()))
        lines = [
            f"chaos seed: {self.seed} ({'ok' if self.ok else f'{len(self.failures)} FAILURES'}) in "
            f"{self.elapsed:.1f} s: {self.workflows} workflows, {self.incarnations} engine incarnations, "
            f"SIGKILLs: {kills} (skipped, no target: {skipped})",
            f"  {stats}",
        ]
        if not self.ok:
            lines += [f"  - {failure}" for failure in self.failures[:40]]
            if len(self.failures) > 40:
                lines.append(f"  ... and {len(self.failures) - 40} more")
            lines.append(f"  run dir: {self.run_dir}")
            lines.append(f"  reproduce: {self.reproduce}")
        return "\n".join(lines)


def become_subreaper() -> None:
    """Adopt the orphans of a killed engine, so a process it leaves behind is still seen (and reaped) as ours."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_zombies() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def live_descendants() -> list[psutil.Process]:
    alive = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def _describe(procs: list[psutil.Process]) -> list[str]:
    described = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            described.append(f"{proc.pid} {' '.join(proc.cmdline()[:5])}")
    return described


def _state(proc: psutil.Process, killed_at: float) -> str:
    try:
        wchan = Path(f"/proc/{proc.pid}/wchan").read_text()
        return (
            f"status {proc.status()} in {wchan or '?'}, parent {proc.ppid()}, created "
            f"{proc.create_time() - killed_at:+.3f} s from the kill, {proc.num_threads()} threads, "
            f"{proc.num_fds()} fds"
        )
    except (OSError, psutil.Error) as error:
        return type(error).__name__


class _AbortError(Exception):
    """The soak cannot go on (its failure is recorded already)."""


class Soak:
    def __init__(
        self,
        seed: int,
        kill_seconds: float,
        run_dir: Path,
        *,
        quiet_timeout: float = 60.0,
        out: Callable[[str], None] = print,
    ) -> None:
        self.run_dir = run_dir
        self.data = run_dir / "data"
        self.plan = build_plan(seed, kill_seconds, str(run_dir / "executions.log"))
        self.quiet_timeout = quiet_timeout
        self.out = out
        self.report = Report(seed, kill_seconds, run_dir, workflows=len(self.plan.workflows))
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.ready = False
        self.t0 = 0.0

    # -- engine incarnations -------------------------------------------------------------------------------------

    def _spawn(self) -> None:
        self.report.incarnations += 1
        n = self.report.incarnations
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "tree.json").unlink()
        with open(self.run_dir / f"engine-{n}.out", "wb") as out, open(self.run_dir / f"engine-{n}.err", "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.engine_proc", str(self.run_dir)], cwd=REPO, stdout=out, stderr=err
            )
        self.spawned_at, self.ready = time.monotonic(), False

    def _is_ready(self) -> bool:
        if not self.ready:
            out = self.run_dir / f"engine-{self.report.incarnations}.out"
            self.ready = out.exists() and out.read_text().startswith("ready")
        return self.ready

    def _stderr_tail(self, lines: int = 15) -> str:
        err = self.run_dir / f"engine-{self.report.incarnations}.err"
        text = err.read_text(errors="replace").splitlines()[-lines:] if err.exists() else []
        return "\n      ".join(text)

    def _watch(self) -> None:
        """Fail (and replace) an engine that exited on its own; abort if one never gets ready."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            self._fail(
                f"engine incarnation {self.report.incarnations} exited on its own with {code}: {self._stderr_tail()}"
            )
            self._after_engine_death()
            self._spawn()
        elif not self._is_ready() and time.monotonic() - self.spawned_at > READY_TIMEOUT:
            self._fail(
                f"engine incarnation {self.report.incarnations} not ready after {READY_TIMEOUT:g} s: "
                f"{self._stderr_tail()}"
            )
            raise _AbortError

    def _family(self) -> dict[int, str]:
        """The engine's descendants now, described (parent, and role when the supervision tree names it)."""
        assert self.proc is not None
        roles: dict[int, str] = {}
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
            tree = json.loads((self.run_dir / "tree.json").read_text())
            roles = {n["pid"]: n["id"] for n in tree["processes"]}
        engine = self.proc.pid
        family = {}
        for proc in psutil.Process().children(recursive=True):  # all of ours, not only the engine's
            with contextlib.suppress(psutil.Error):
                family[proc.pid] = (
                    f"child of {proc.ppid()}{' (the engine)' if proc.ppid() == engine else ''}, "
                    f"{roles.get(proc.pid, 'not in the tree')}, {proc.status()}"
                )
        return family

    def _after_engine_death(self, family: dict[int, str] | None = None) -> None:
        """Every process of ours must die with the engine (workflow hosts, workers, the zygote)."""
        killed_at = time.time()
        deadline = time.monotonic() + ORPHAN_GRACE
        while True:
            reap_zombies()
            alive = live_descendants()
            if not alive:
                return
            if time.monotonic() > deadline:
                described = [
                    f"{d} (before the kill: {(family or {}).get(p.pid, 'not ours yet')}; now {_state(p, killed_at)})"
                    for p, d in zip(alive, _describe(alive), strict=False)
                ]
                self._fail(
                    f"processes outlived the SIGKILL of engine incarnation {self.report.incarnations} "
                    f"(pid {self.proc.pid if self.proc else '?'}) by {ORPHAN_GRACE:g} s: {described}"
                )
                for proc in alive:
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
                psutil.wait_procs(alive, timeout=5)
                reap_zombies()
                return
            time.sleep(0.02)

    # -- kills ---------------------------------------------------------------------------------------------------

    def _kill(self, kill: Kill) -> None:
        assert self.proc is not None
        if kill.target.startswith("engine"):
            self._kill_engine(kill, "")
            if kill.target == "engine_twice":
                time.sleep(0.1 + 1.2 * kill.pick)
                self._kill_engine(kill, f"{'ready' if self._is_ready() else 'starting'}, ")
            return
        role = "run" if kill.target == "run" else "activity_worker"
        try:
            tree = json.loads((self.run_dir / "tree.json").read_text())
        except (FileNotFoundError, ValueError):
            tree = None
        candidates = []
        if tree is not None and tree["engine_pid"] == self.proc.pid:
            candidates = sorted((n for n in tree["processes"] if n["role"] == role), key=lambda n: n["id"])
        if not candidates:
            self.report.skipped[kill.target] += 1
            return
        node = candidates[int(kill.pick * len(candidates))]
        try:
            ours = {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            ours = set()
        if node["pid"] not in ours:  # it exited since the snapshot (never kill a pid that is not ours)
            self.report.skipped[kill.target] += 1
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(node["pid"], signal.SIGKILL)
        self.report.kills[kill.target] += 1
        self._journal(kill, f"{node['id']} pid {node['pid']}")

    def _kill_engine(self, kill: Kill, state: str) -> None:
        assert self.proc is not None
        family = self._family()
        self.proc.kill()
        self.proc.wait()
        self._journal(kill, f"engine incarnation {self.report.incarnations} ({state}pid {self.proc.pid})")
        self.report.kills["engine"] += 1
        self._after_engine_death(family)
        self._spawn()

    def _journal(self, kill: Kill, what: str) -> None:
        with open(self.run_dir / "kills.log", "a") as f:
            f.write(f"{time.time() - self.t0:8.3f} (planned {kill.at:8.3f}) SIGKILL {kill.target}: {what}\n")

    # -- phases --------------------------------------------------------------------------------------------------

    def _fail(self, failure: str) -> None:
        self.report.failures.append(failure)
        self.out(f"chaos seed {self.report.seed}: FAILURE {failure}")

    def _open_workflows(self) -> list[str]:
        store = open_store(self.data, readonly=True)
        try:
            pending = []
            for planned in self.plan.workflows:
                info = store.get_run(planned.workflow_id)
                if info is None or info.status in (WorkflowStatus.RUNNING, WorkflowStatus.CONTINUED_AS_NEW):
                    last = store.read_history(planned.workflow_id)[-1:] if info is not None else []
                    pending.append(
                        f"{planned.workflow_id} ({info.status if info else 'not started'}"
                        f"{', last event ' + last[0].type if last else ''})"
                    )
            return pending
        finally:
            store.close()

    def _kill_phase(self) -> None:
        self._spawn()
        while not self._is_ready():
            self._watch()
            time.sleep(0.02)
        self.t0 = time.time()
        scratch = self.run_dir / "clock.tmp"
        scratch.write_text(repr(self.t0))
        os.replace(scratch, self.run_dir / "clock")
        for kill in self.plan.kills:
            while (wait := kill.at - (time.time() - self.t0)) > 0:
                self._watch()
                time.sleep(min(wait, 0.05))
            self._watch()
            self._kill(kill)
        while time.time() - self.t0 < self.plan.kill_seconds:
            self._watch()
            time.sleep(0.05)

    def _quiet_phase(self) -> None:
        deadline = time.monotonic() + self.quiet_timeout
        while True:
            self._watch()
            pending = self._open_workflows() if self.data.exists() else ["(no store yet)"]
            if not self._is_ready():  # the last engine may have been started by the last kill
                pending.append("(the engine is starting)")
            if not pending:
                return
            if time.monotonic() > deadline:
                self._fail(
                    f"liveness: {len(pending)} workflows not closed {self.quiet_timeout:g} s after the last "
                    f"kill: {pending}"
                )
                return
            time.sleep(0.2)

    def _stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._fail(f"the engine did not stop within {STOP_TIMEOUT:g} s of SIGTERM")
            self.proc.kill()
            code = self.proc.wait()
        if code != 0:
            self._fail(f"the last engine exited with {code} on SIGTERM: {self._stderr_tail()}")
        leftovers = live_descendants()
        _, still = psutil.wait_procs(leftovers, timeout=5)
        reap_zombies()
        still = [p for p in still if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if still:
            self._fail(f"processes left after the engine stopped: {_describe(still)}")
            for proc in still:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(still, timeout=5)
            reap_zombies()

    def _idle_restart(self) -> None:
        """One more engine on the finished data directory must change nothing: no activity runs, no event is
        recorded (recovery does not resume closed workflows, and the plan's actions are all found done)."""
        log = Path(self.plan.log)
        before = (log.stat().st_size if log.exists() else 0, self._heads())
        self._spawn()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._is_ready() and self.proc is not None and self.proc.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        time.sleep(1.5)
        self._stop()
        after = (log.stat().st_size if log.exists() else 0, self._heads())
        if after != before:
            changed = {w: (before[1].get(w), h) for w, h in after[1].items() if before[1].get(w) != h}
            self._fail(
                f"an idle restart changed things: execution log {before[0]} -> {after[0]} bytes, "
                f"heads (before, after) {changed}"
            )

    def _heads(self) -> dict[str, int]:
        store = open_store(self.data, readonly=True)
        try:
            return {info.workflow_id: info.head_seq for info in store.list_workflows()}
        finally:
            store.close()

    def run(self) -> Report:
        started = time.monotonic()
        become_subreaper()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "plan.json").write_text(json.dumps(self.plan.to_json(), indent=1))
        self.out(
            f"chaos seed: {self.report.seed} (kill phase {self.plan.kill_seconds:g} s, "
            f"{len(self.plan.workflows)} workflows, {len(self.plan.kills)} planned kills; run dir {self.run_dir})"
        )
        try:
            try:
                self._kill_phase()
                self._quiet_phase()
            except _AbortError:
                pass
            finally:
                if self.proc is not None and self.proc.poll() is None:
                    self._stop()
                else:
                    self._after_engine_death()
            if not self.report.failures:
                self._idle_restart()
            errors = self.run_dir / "errors.log"
            if errors.exists() and errors.read_text().strip():
                self._fail(f"errors in the engine processes:\n{errors.read_text()}")
            if self.data.exists():
                result = checker.check(self.plan, self.data)
                self.report.failures += result.failures
                self.report.stats.update(result.stats)
            self.report.stats["engine_tracebacks"] = sum(
                err.read_text(errors="replace").count("Traceback") for err in self.run_dir.glob("engine-*.err")
            )
        finally:
            self.report.elapsed = time.monotonic() - started
        return self.report


def run_soak(seed: int, kill_seconds: float, run_dir: Path, **options: Any) -> Report:
    return Soak(seed, kill_seconds, run_dir, **options).run()


def plan_of(seed: int, kill_seconds: float) -> Plan:
    """The plan a seed gives (for inspection: ``python -m tests.chaos --seed S --show-plan``)."""
    return build_plan(seed, kill_seconds, "<log>")
