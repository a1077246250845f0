"""ProgressBoard: one overall bar over named phases, rich or plain lines, resumed chunks."""

import io

import pytest

from shrinkage._progress import ProgressBoard, duration
from shrinkage.errors import ShrinkageError
from shrinkage.search import Progress


def _plain(**kwargs):
    board = ProgressBoard("tune", display="plain", interval=1e9, **kwargs)
    board.stream = io.StringIO()
    return board


def test_phases_make_the_overall_total_and_a_phase_never_started_is_skipped():
    board = _plain()
    board.add("grid", 40)
    board.add("refine", 20)
    board.add("refit", 10)
    board.add("report", None)
    board.update("grid", 20)
    assert board.fraction() == pytest.approx(20 / 71)  # an uncounted phase weighs one step
    board.finish("grid")
    board.update("refit", 5)  # refine never ran (the best strength was 0): skipped
    assert board.phases["refine"].state == "skipped"
    assert board.fraction() == pytest.approx(45 / 51)
    board.finish("refit")
    board.finish("report")
    assert board.fraction() == 1.0 and board.remaining() == 0.0
    lines = board.stream.getvalue().splitlines()
    assert lines[0] == "tune: grid started (40 epochs)"
    assert [line.split(" ")[1] for line in lines if " done in " in line] == [
        "grid",
        "refit",
        "report",
    ]
    assert not any("refine" in line for line in lines)


def test_plain_lines_come_each_tenth_of_the_work_or_interval():
    board = _plain()
    board.add("grid", 100)
    for epoch in range(1, 101):
        board.update("grid", epoch, "chunk 1/1")
    progress = [line for line in board.stream.getvalue().splitlines() if "overall" in line]
    assert len(progress) == 11  # the first epoch, then each tenth
    assert progress[-1].startswith("tune: grid 100/100 epochs · chunk 1/1 · overall 100%")
    often = ProgressBoard("fit", display="plain", interval=0.0)
    often.stream = io.StringIO()
    often.add("train", 1000)
    for epoch in range(1, 21):
        often.update("train", epoch)
    assert often.stream.getvalue().count("\n") == 21  # started + every update


def test_search_events_count_resumed_chunks_and_finish_the_stage():
    board = _plain()
    board.add("grid", 3 * 10)
    report = board.search_callback("out/chunks/")
    report(Progress("grid", 1, 3, 0, 10))  # the stage starts
    report(Progress("grid", 1, 3, 10, 10, reused=True))  # read back from the checkpoint
    report(Progress("grid", 2, 3, 10, 10, reused=True))
    for epoch in range(1, 11):
        report(Progress("grid", 3, 3, epoch, 10))
    assert board.reused == {"grid": (2, 3)}
    assert board.phases["grid"].state == "done" and board.phases["grid"].completed == 30
    text = board.stream.getvalue()
    assert "tune: grid: reused 2 of 3 chunks from out/chunks/ (--resume); 1 to train" in text
    assert text.count("reused") == 1


def test_rich_bars_show_each_phase_and_the_overall_task():
    board = ProgressBoard("tune", display="rich")
    board.add("grid", 10, "stacked")
    board.add("refit", 5)
    with board:
        board.update("grid", 4, "chunk 1/2")
        tasks = {task.description: task for task in board._progress.tasks}
        assert tasks["[bold]tune"].total == 15 and tasks["[bold]tune"].completed == 4
        assert tasks["  grid (stacked)"].fields["status"] == "chunk 1/2"
        assert not tasks["  refit (waiting)"].started
        board.finish("grid")
        board.update("refit", 5)
        board.finish("refit")
        assert board._progress.tasks[0].finished
    assert board._progress is None


def test_off_shows_nothing_and_bad_display_is_refused(capsys):
    board = ProgressBoard("x", display="off")
    board.add("a", 3)
    board.update("a", 3)
    board.note("hidden")
    board.finish("a")
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ShrinkageError) as err:
        ProgressBoard(display="fancy")
    assert str(err.value) == (
        "The 'display' parameter must be one of 'auto', 'rich', 'plain', 'off'. "
        "Got 'fancy' instead."
    )


def test_durations_read_as_clock_times():
    assert [duration(s) for s in (0, 7.4, 62, 3723, float("inf"))] == [
        "0:00",
        "0:07",
        "1:02",
        "1:02:03",
        "?",
    ]
