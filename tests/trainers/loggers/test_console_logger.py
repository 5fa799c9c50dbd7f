"""ConsoleLogger: plain lines off a terminal (format, label, interval, stop announcement), the tqdm bar
on a terminal (fitted to its width, redrawn in place), and the field fitting on its own."""
from __future__ import annotations

import io
import re

import pytest

from rlkit.trainers.loggers import ConsoleLogger
from rlkit.trainers.loggers.console import PLAIN_INTERVAL_S, ProgressState, format_duration, progress_fields

LABEL = "[job 3 lr=0.001 seed=1]"
# A plain line: label, exact frames and %, frames/s, the returns once logged, elapsed<ETA.
PLAIN = re.compile(r"^(?P<label>\[job \d+[^\]]*\] )?(?P<frames>[\d,]+)/(?P<total>[\d,]+) frames \((?P<pct>[\d.]+)%\) "
                   r"\| (?P<rate>[\d,]+) frames/s( \| return (?P<ret>\S+))?( \| eval (?P<eval>\S+))? "
                   r"\| (?P<elapsed>[\d:]+)<(?P<eta>[\d:]+|--:--)$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TTYStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_line_shows_label_progress_rate_returns_and_times():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(1000, stream=out, clock=clock, label=LABEL)
    assert logger.plain
    clock.now = 2.0
    logger.log_metrics({"episode_return": 12.5, "eval_return": 200.0, "loss_value": 0.1}, step=500)
    # 500 frames in 2 s -> 250 frames/s; 500 frames left -> 2 s ETA.
    assert out.getvalue() == (
        "[job 3 lr=0.001 seed=1] 500/1,000 frames (50.0%) | 250 frames/s | return 12.5 | eval 200 | 00:02<00:02\n"
    )
    match = PLAIN.match(out.getvalue().rstrip("\n"))
    assert match and match["label"] == LABEL + " " and match["ret"] == "12.5" and match["eval"] == "200"


def test_returns_are_omitted_until_logged_and_eta_unknown_without_progress():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(10_000, stream=out, clock=clock)
    clock.now = 1.0
    logger.log_metrics({"loss_value": 1.0}, step=0)
    assert out.getvalue() == "0/10,000 frames (0.0%) | 0 frames/s | 00:01<--:--\n"


def test_plain_lines_come_every_interval_and_always_at_the_end():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(1000, stream=out, clock=clock)
    assert logger.interval_s == PLAIN_INTERVAL_S == 10.0
    for t, step in [(0.0, 100), (5.0, 200), (9.9, 300), (10.0, 400), (15.0, 500)]:
        clock.now = t
        logger.log_metrics({"loss_value": 0.0}, step=step)
    lines = out.getvalue().splitlines()
    assert [PLAIN.match(line)["frames"] for line in lines] == ["100", "400"]
    clock.now = 16.0
    logger.log_metrics({"episode_return": 3.0}, step=1000)  # the budget reached: shown once, at the end
    clock.now = 17.0
    logger.log_metrics({"eval_return": 9.0}, step=1000)  # (the closing evaluation's own row)
    assert len(out.getvalue().splitlines()) == 2
    logger.log_end("budget", "done: 1,000 frames", step=1000)  # the budget needs no announcement
    logger.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "1,000/1,000 frames (100.0%)" in lines[-1] and "| eval 9 |" in lines[-1], lines
    assert "\r" not in out.getvalue()


@pytest.mark.parametrize(("reason", "message"), [
    ("target", "stopped early at frame 500: greedy eval return 480 reached the target 475"),
    ("non_finite", "stopped: non-finite loss at update 30 (frame 500): loss_value=nan"),
    ("interrupted", "interrupted by SIGINT at frame 500; checkpoint written"),
])
def test_a_stop_is_announced_in_one_line_after_the_last_state(reason, message):
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(1000, stream=out, clock=clock, label=LABEL)
    logger.log_metrics({"episode_return": 1.0}, step=100)
    clock.now = 0.5
    logger.log_metrics({"episode_return": 2.0, "eval_return": 480.0}, step=500)  # throttled
    logger.log_end(reason, message, step=520)  # a stop after the last row: the frame it stopped at is shown
    logger.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert PLAIN.match(lines[1])["frames"] == "520" and PLAIN.match(lines[1])["eval"] == "480"
    assert lines[2] == f"{LABEL} {message}"


def test_unknown_end_reason_is_refused():
    with pytest.raises(ValueError, match="unknown end reason 'done'; valid reasons: budget, target, callback, non_finite, "
                                         "interrupted"):
        ConsoleLogger(10, stream=io.StringIO()).log_end("done", "x", step=0)  # type: ignore[arg-type]


def test_close_prints_the_latest_state_if_it_was_throttled():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(1000, stream=out, clock=clock)
    logger.log_metrics({}, step=10)
    clock.now = 0.2
    logger.log_metrics({"episode_return": -4.0}, step=20)
    assert len(out.getvalue().splitlines()) == 1
    logger.close()
    last = out.getvalue().splitlines()[-1]
    assert "20/1,000" in last and "return -4" in last


def _redraws(text: str) -> list[str]:
    """The states a terminal showed: the text between carriage returns and newlines, less tqdm's
    padding over a longer previous state."""
    return [part.rstrip(" ") for part in re.split(r"[\r\n]", text) if part.strip()]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_terminal_bar_fits_the_width_and_redraws_in_place(width):
    out = TTYStream()
    logger = ConsoleLogger(500_000, stream=out, ncols=width, label=LABEL if width == 120 else "")
    assert not logger.plain
    for step in range(10_000, 500_001, 10_000):
        logger.log_metrics({"episode_return": step / 1000, "eval_return": 500.0 if step >= 250_000 else 20.0},
                           step=step)
    logger.close()
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1  # one line, redrawn with \r, ended once
    states = _redraws(text)
    assert len(states) >= 2
    assert all(len(state) <= width - 1 for state in states), [len(s) for s in states]
    final = states[-1]
    assert "500k/500k" in final and "100%|" in final and ("frames/s" in final or "fps" in final)
    assert "eval 500" in final and "ret" in final
    if width >= 120:
        assert final.startswith(LABEL if width == 120 else "100%")


def test_terminal_stop_message_comes_after_the_bar():
    out = TTYStream()
    logger = ConsoleLogger(1000, stream=out, ncols=80)
    logger.log_metrics({"eval_return": 480.0}, step=500)
    logger.log_end("target", "stopped early at frame 500: greedy eval return 480 reached the target 475", step=500)
    logger.close()
    bar_line, message, rest = out.getvalue().rsplit("\n", 2)
    assert "500/1.00k" in bar_line and rest == ""
    assert message == "stopped early at frame 500: greedy eval return 480 reached the target 475"


@pytest.mark.parametrize("width", [40, 60, 80, 100, 160])
def test_fitted_fields_never_reach_the_last_column(width):
    state = ProgressState(123_456, 10_000_000, 12_345.6, 3725.0, -12_345.6, 98_765.4)
    left, right, bar = progress_fields(state, width, LABEL)
    assert len(left) + bar + len(right) <= width - 1
    if width >= 100:  # every field, with a bar
        assert bar >= 8 and "ret" in right and "eval 98.8k" in right and "123k/10.0M" in right


def test_unknown_width_keeps_every_field():
    left, right, bar = progress_fields(ProgressState(10, 100, 5.0, 2.0, 1.0, None), None)
    assert (left, bar) == (" 10%|", 20) and right == "| 10/100 frames [00:02<00:18, 5 frames/s, return 1]"


def test_default_stream_is_stderr_at_construction(capsys):
    with ConsoleLogger(10) as logger:
        logger.log_metrics({}, step=10)
    captured = capsys.readouterr()
    assert "10/10 frames (100.0%)" in captured.err and captured.out == ""


def test_resumed_run_counts_rate_from_start_frames():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(2000, stream=out, start_frames=1000, clock=clock)
    clock.now = 4.0
    logger.log_metrics({}, step=1400)
    assert "| 100 frames/s |" in out.getvalue() and "00:04<00:06" in out.getvalue()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"total_frames": 0}, "total_frames must be a positive int, got 0"),
        ({"total_frames": 10.5}, "total_frames must be a positive int, got 10.5"),
        ({"total_frames": 10, "interval_s": -1.0}, r"interval_s must be >= 0, got -1.0"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConsoleLogger(**kwargs)


def test_format_duration():
    assert format_duration(0) == "00:00"
    assert format_duration(59.6) == "01:00"
    assert format_duration(3600 + 2 * 60 + 5) == "1:02:05"
    assert format_duration(float("inf")) == "--:--"
    assert format_duration(float("nan")) == "--:--"
