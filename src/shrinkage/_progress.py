"""Progress of long work: one overall bar with the time remaining, over named phases.

A :class:`ProgressBoard` knows the phases of a job before it starts (``grid``, ``refine``,
``refit``, ``baseline``, ``report`` for ``shrinkage tune``), each with its number of steps
(epochs of a training run: a stack trains all its candidates in one pass, so an epoch of
the stacked grid costs about as much as an epoch of the refit), and shows

* in a terminal or a Jupyter notebook: rich bars, the overall one first (with the time
  remaining, from the recent rate), then one line per phase (waiting, running with its own
  bar and time remaining, done with its time, or skipped);
* elsewhere (CI, a log file): plain lines: one when a phase starts and ends, and one
  every ``interval`` seconds or each tenth of the work, whichever comes first;
* nothing at all with ``display="off"`` (``--quiet``).

A phase that never starts (``refine`` when the best strength is 0) is skipped when a later
one starts, and leaves the overall total. :meth:`ProgressBoard.search_callback` turns the
events of :meth:`shrinkage.search.SearchCV.fit` (its ``progress`` argument) into phase
updates, counting the chunks a resumed search read back instead of training.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shrinkage.errors import ShrinkageError

__all__ = ["DISPLAYS", "Phase", "ProgressBoard", "duration"]

#: How a board shows itself: chosen from the stream, rich bars, plain lines, nothing.
DISPLAYS = ("auto", "rich", "plain", "off")


def duration(seconds: float) -> str:
    """``0:07``, ``1:02:03``: elapsed or remaining time as people read it."""
    if not math.isfinite(seconds):
        return "?"
    whole = int(round(max(0.0, seconds)))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Phase:
    """One named part of the work.

    Attributes:
        name: what it is called (``"grid"``).
        total: its steps, or None when they are not counted (a spinner).
        detail: what it does, in a few words.
        completed: steps done.
        state: ``"waiting"``, ``"running"``, ``"done"`` or ``"skipped"``.
        started: when it started (``time.perf_counter``), or None.
        ended: when it ended, or None.
    """

    name: str
    total: int | None
    detail: str = ""
    completed: int = 0
    state: str = "waiting"
    started: float | None = None
    ended: float | None = None
    task: Any = None


class ProgressBoard:
    """An overall bar with the time remaining, and a line or bar per named phase.

    Use as a context manager (or call :meth:`close`). Declare the phases with :meth:`add`
    (their steps make the overall total), then report with :meth:`advance` /
    :meth:`update`; :meth:`finish` ends a phase, :meth:`note` prints a line above the bars.

    Args:
        title: the overall bar's label (``"tune"``).
        display: one of :data:`DISPLAYS`; ``"auto"`` is ``"rich"`` on a terminal or in
            Jupyter and ``"plain"`` otherwise.
        stderr: draw on stderr (the CLI) rather than stdout (Python callers).
        interval: seconds between plain progress lines.
        unit: what a step is, for the plain lines (``"epochs"``).
        delay: seconds before rich bars appear (short jobs stay silent).
        transient: erase the rich bars when closed.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with ProgressBoard("job", display="plain", interval=1e9) as board:
        ...     board.stream = out
        ...     _ = board.add("train", 4), board.add("report", None)
        ...     board.advance("train", 4)
        ...     board.finish("report")
        >>> print(out.getvalue().replace("0:00", "T"), end="")
        job: train started (4 epochs)
        job: train 4/4 epochs · overall 80% · T elapsed, about T left
        job: train done in T
        job: report started
        job: report done in T
    """

    def __init__(
        self,
        title: str = "",
        *,
        display: str = "auto",
        stderr: bool = True,
        interval: float = 10.0,
        unit: str = "epochs",
        delay: float = 0.0,
        transient: bool = False,
    ) -> None:
        if display not in DISPLAYS:
            raise ShrinkageError(
                f"The 'display' parameter must be one of {', '.join(map(repr, DISPLAYS))}. "
                f"Got {display!r} instead."
            )
        self.title = title
        self.stderr = stderr
        self.interval = interval
        self.unit = unit
        self.delay = delay
        self.transient = transient
        self.phases: dict[str, Phase] = {}
        self.reused: dict[str, tuple[int, int]] = {}
        self.stream: Any = None  # plain lines go here (default: stderr / stdout when written)
        self._created = time.perf_counter()
        self._first_step: tuple[float, int] | None = None
        self._last_line = -math.inf
        self._last_tenth = 0
        self._progress: Any = None
        self._overall: Any = None
        self._closed = False
        self.display = self._choose(display)

    # ----------------------------------------------------------------- display

    def _choose(self, display: str) -> str:
        if display != "auto":
            return display
        from rich.console import Console

        console = Console(stderr=self.stderr)
        return "rich" if console.is_terminal or console.is_jupyter else "plain"

    def _write(self, line: str) -> None:
        if self.display == "plain":
            stream = self.stream or (sys.stderr if self.stderr else sys.stdout)
            stream.write(f"{self.title}: {line}\n" if self.title else f"{line}\n")
            stream.flush()
        elif self.display == "rich":
            self._rich_started(force=True)
            self._progress.console.print(line, highlight=False, markup=False)

    def _rich_started(self, force: bool = False) -> bool:
        """Start the rich display once the delay has passed (or ``force``)."""
        if self._progress is not None:
            return True
        if self._closed or (not force and time.perf_counter() - self._created < self.delay):
            return False
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
        )
        from rich.text import Text

        console = Console(stderr=self.stderr, highlight=False)

        class Bar(BarColumn):
            # A phase still waiting has an empty bar; rich would animate it as if running.
            def render(self, task: Any) -> Any:
                bar = super().render(task)
                bar.pulse = bar.pulse and task.started
                return bar

        class Times(ProgressColumn):
            # "0:12 · 0:40 left" while running, "0:52 done" after; nothing while waiting.
            def render(self, task: Any) -> Any:
                if not task.started:
                    return Text("")
                took = duration(task.finished_time if task.finished else task.elapsed or 0)
                if task.finished:
                    return Text(f"{took} done", style="green")
                left = task.time_remaining
                shown = "" if left is None else f" · {duration(left)} left"
                return Text(f"{took}{shown}", style="cyan")

        self._progress = Progress(
            TextColumn("{task.description}"),
            Bar(bar_width=30),
            MofNCompleteColumn(),
            Times(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=self.transient,
            speed_estimate_period=60.0,
        )
        self._progress.start()
        self._overall = self._progress.add_task(
            f"[bold]{self.title or 'overall'}", total=self._total() or None, status=""
        )
        for phase in self.phases.values():
            self._rich_task(phase)
        self._refresh()
        return True

    def _rich_task(self, phase: Phase) -> None:
        if self._progress is None or phase.task is not None:
            return
        phase.task = self._progress.add_task(
            self._label(phase), total=phase.total, start=phase.state != "waiting", status=""
        )

    def _label(self, phase: Phase) -> str:
        words = {"waiting": "waiting", "skipped": "skipped"}.get(phase.state, phase.detail)
        return f"  {phase.name}" + (f" ({words})" if words else "")

    def _refresh(self, status: str = "") -> None:
        if self._progress is None:
            return
        for phase in self.phases.values():
            self._rich_task(phase)
            fields: dict[str, Any] = {
                "description": self._label(phase),
                "status": "",
                "visible": phase.state != "skipped",
            }
            if phase.state == "running" and phase is self._current():
                fields["status"] = status
            if phase.state == "done":
                fields["total"] = phase.total or 1
                fields["completed"] = phase.total or 1
            else:
                fields["total"] = phase.total
                fields["completed"] = phase.completed
            self._progress.update(phase.task, **fields)
        self._progress.update(
            self._overall, total=self._total() or None, completed=self._done(), status=""
        )

    # ----------------------------------------------------------------- accounting

    def _current(self) -> Phase | None:
        running = [p for p in self.phases.values() if p.state == "running"]
        return running[-1] if running else None

    # A phase whose steps are not counted (the report) weighs one step: the overall bar is
    # done when every phase is.
    def _total(self) -> int:
        return sum(p.total or 1 for p in self.phases.values() if p.state != "skipped")

    def _done(self) -> int:
        return sum(
            (p.total or 1) if p.state == "done" else min(p.completed, p.total or 0)
            for p in self.phases.values()
            if p.state != "skipped"
        )

    def fraction(self) -> float:
        """The share of the overall steps done, in ``[0, 1]``."""
        total = self._total()
        return min(1.0, self._done() / total) if total else 0.0

    def remaining(self) -> float:
        """Seconds left at the rate since the first step (``inf`` before any step)."""
        done = self._done()
        if self._first_step is None or done <= self._first_step[1]:
            return math.inf
        since, start = self._first_step
        rate = (done - start) / max(time.perf_counter() - since, 1e-9)
        return (self._total() - done) / rate

    # ----------------------------------------------------------------- phases

    def add(self, name: str, total: int | None, detail: str = "") -> Phase:
        """Declare a phase (waiting) with ``total`` steps (None: not counted)."""
        phase = self.phases.get(name)
        if phase is None:
            phase = self.phases[name] = Phase(name, total, detail)
        else:
            phase.total, phase.detail = total, detail or phase.detail
        self._rich_task(phase)
        self._refresh()
        return phase

    def start(self, name: str, total: int | None = None, detail: str = "") -> Phase:
        """Start a phase (declaring it if needed); earlier phases still waiting are skipped."""
        phase = self.phases.get(name)
        if phase is None:
            phase = self.add(name, total, detail)
        elif total is not None or detail:
            phase = self.add(name, phase.total if total is None else total, detail)
        if phase.state in ("running", "done"):
            return phase
        for other in self.phases.values():
            if other is phase:
                break
            if other.state == "waiting":
                other.state = "skipped"
            elif other.state == "running":
                self.finish(other.name)
        phase.state = "running"
        phase.started = time.perf_counter()
        if self._first_step is None:
            self._first_step = (phase.started, self._done())
        if self._progress is not None and phase.task is not None:
            self._progress.start_task(phase.task)
        shown = f" ({phase.total} {self.unit})" if phase.total else ""
        if phase.detail:
            shown = f" ({phase.detail})"
        if self.display == "plain":
            self._write(f"{name} started{shown}")
        self._refresh()
        return phase

    def update(self, name: str, completed: int, status: str = "") -> None:
        """Set a phase's steps done (starting it if needed); ``status`` shows after its bar."""
        phase = self.phases.get(name)
        if phase is None or phase.state == "waiting":
            phase = self.start(name)
        if phase.state != "running":
            return
        phase.completed = completed
        if self.display == "rich":
            if self._rich_started():
                self._refresh(status)
        elif self.display == "plain":
            self._plain_line(phase, status)

    def advance(self, name: str, steps: int = 1, status: str = "") -> None:
        """Count ``steps`` more steps of a phase."""
        phase = self.phases.get(name)
        done = phase.completed if phase is not None else 0
        self.update(name, done + steps, status)

    def _plain_line(self, phase: Phase, status: str) -> None:
        now = time.perf_counter()
        tenth = int(10 * self.fraction())
        if now - self._last_line < self.interval and tenth <= self._last_tenth:
            return
        self._last_line, self._last_tenth = now, tenth
        count = f"{phase.completed}/{phase.total}" if phase.total else f"{phase.completed}"
        left = self.remaining()
        when = f"{duration(now - self._created)} elapsed" + (
            f", about {duration(left)} left" if math.isfinite(left) else ""
        )
        extra = f" · {status}" if status else ""
        self._write(
            f"{phase.name} {count} {self.unit}{extra} · overall {self.fraction():.0%} · {when}"
        )

    def finish(self, name: str, note: str = "") -> None:
        """End a phase (starting it first if it was waiting: a phase with no steps)."""
        phase = self.phases.get(name)
        if phase is None or phase.state == "waiting":
            phase = self.start(name)
        if phase.state == "done":
            return
        phase.state = "done"
        phase.completed = phase.total or phase.completed
        phase.ended = time.perf_counter()
        took = duration(phase.ended - (phase.started or phase.ended))
        if self.display == "plain":
            self._write(f"{name} done in {took}" + (f"; {note}" if note else ""))
        elif self.display == "rich":
            if self._rich_started() and note:
                self._write(f"{name}: {note}")
            self._refresh()

    def note(self, text: str) -> None:
        """A line above the bars (or among the plain lines)."""
        self._write(text)

    def close(self) -> None:
        """Stop the display (the bars stay on screen unless ``transient``)."""
        self._closed = True
        if self._progress is not None:
            self._refresh()
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ProgressBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- adapters

    def epoch_callback(self, name: str) -> Callable[[int, dict[str, Any]], None]:
        """An estimator's ``fit(progress=...)`` hook that drives phase ``name``.

        The status after the bar is the epoch's loss and scores.
        """

        def report(epoch: int, row: dict[str, Any]) -> None:
            self.update(name, epoch, _epoch_status(row))

        return report

    def search_callback(self, where: str = "the checkpoint directory") -> Callable[[Any], None]:
        """A :meth:`~shrinkage.search.SearchCV.fit` ``progress`` hook driving its phases.

        Each event (a :class:`~shrinkage.search.Progress`: stage, chunk, epoch) updates the
        phase named by its stage: ``chunks done × epochs + the current chunk's epoch``. The
        chunks a resumed search read back (``reused`` events) count as done, and a note
        says how many there were.

        Args:
            where: where the reused chunks were read from, for the note.
        """
        finished: dict[str, set[int]] = {}
        reused: dict[str, int] = {}
        noted: set[str] = set()

        def tell(stage: str, n_chunks: int) -> None:
            if reused.get(stage) and stage not in noted:
                noted.add(stage)
                self.reused[stage] = (reused[stage], n_chunks)
                self.note(
                    f"{stage}: reused {reused[stage]} of {n_chunks} chunks from {where} "
                    f"(--resume); {n_chunks - reused[stage]} to train"
                )

        def report(event: Any) -> None:
            stage, n_chunks = event.stage, event.n_chunks
            start = getattr(event, "start", 0)  # a halving rung goes on from there
            epochs = event.epochs - start
            phase = self.phases.get(stage)
            if phase is None or phase.state == "waiting":
                self.start(stage, n_chunks * epochs)
            done = finished.setdefault(stage, set())
            if getattr(event, "reused", False):
                done.add(event.chunk)
                reused[stage] = reused.get(stage, 0) + 1
            else:
                tell(stage, n_chunks)
                if event.epoch >= event.epochs:
                    done.add(event.chunk)
            current = 0 if event.chunk in done else max(0, event.epoch - start)
            status = f"chunk {event.chunk}/{n_chunks}" if n_chunks > 1 else ""
            self.update(stage, len(done) * epochs + current, status)
            if len(done) >= n_chunks:
                tell(stage, n_chunks)
                self.finish(stage)

        return report


def _epoch_status(row: dict[str, Any]) -> str:
    parts = []
    for key, label in (("data_loss", "loss"), ("penalty", "penalty"), ("train_score", "train")):
        value = row.get(key)
        if isinstance(value, float) and math.isfinite(value):
            parts.append(f"{label} {value:.4g}")
    value = row.get("val_score")
    if isinstance(value, float) and math.isfinite(value):
        parts.append(f"validation {value:.4g}")
    return ", ".join(parts)
