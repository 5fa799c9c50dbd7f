"""ConsoleLogger: line content, throttling off a terminal, in-place redraw on a terminal."""
from __future__ import annotations

import io

import pytest

from rlkit.trainers.loggers import ConsoleLogger
from rlkit.trainers.loggers.console import format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TTYStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_line_shows_progress_rate_returns_and_times():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(1000, stream=out, clock=clock)
    clock.now = 2.0
    logger.log_metrics({"episode_return": 12.5, "eval_return": 200.0, "loss_value": 0.1}, step=500)
    # 500 frames in 2 s -> 250 frames/s; 500 frames left -> 2 s ETA.
    assert out.getvalue() == (
        "[##########..........] 500/1,000 (50.0%) | 250 frames/s | return 12.5 | eval 200 | 00:02<00:02\n"
    )


def test_returns_are_omitted_until_logged_and_eta_unknown_without_progress():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(10_000, stream=out, clock=clock)
    clock.now = 1.0
    logger.log_metrics({"loss_value": 1.0}, step=0)
    assert out.getvalue() == "[....................] 0/10,000 (0.0%) | 0 frames/s | 00:01<--:--\n"


def test_plain_stream_prints_at_most_once_per_interval_and_always_the_end():
    clock, out = FakeClock(), io.StringIO()
    logger = ConsoleLogger(1000, stream=out, min_interval_s=1.0, clock=clock)
    for t, step in [(0.0, 100), (0.5, 200), (0.99, 300), (1.0, 400), (1.5, 500)]:
        clock.now = t
        logger.log_metrics({"loss_value": 0.0}, step=step)
    lines = out.getvalue().splitlines()
    assert [line.split(" | ")[0].split("] ")[1] for line in lines] == ["100/1,000 (10.0%)", "400/1,000 (40.0%)"]
    clock.now = 1.6
    logger.log_metrics({"episode_return": 3.0}, step=1000)  # reaching the budget is always shown
    assert "1,000/1,000 (100.0%)" in out.getvalue().splitlines()[-1]
    n_lines = len(out.getvalue().splitlines())
    logger.close()  # nothing new since the last line: no duplicate
    assert len(out.getvalue().splitlines()) == n_lines
    assert "\r" not in out.getvalue()


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


def test_terminal_redraws_in_place_and_pads_shorter_lines():
    clock, out = FakeClock(), TTYStream()
    logger = ConsoleLogger(100, stream=out, clock=clock)
    assert logger.is_tty
    clock.now = 0.001
    logger.log_metrics({"episode_return": 123456.0, "eval_return": -2.5}, step=10)
    first = out.getvalue()
    assert "10,000 frames/s | return 123,456 | eval -2.5" in first
    clock.now = 0.05  # within the 0.1 s terminal redraw cap: skipped
    logger.log_metrics({}, step=20)
    assert out.getvalue() == first
    clock.now = 2.0
    logger.log_metrics({}, step=30)
    second = out.getvalue()[len(first):]
    assert first.startswith("\r") and second.startswith("\r") and "\n" not in first + second
    assert "| 15 frames/s |" in second
    assert len(second) == len(first) and second.endswith("   ")  # padded over the longer line
    logger.close()
    assert out.getvalue().endswith("\n")


def test_default_stream_is_stderr_at_construction(capsys):
    with ConsoleLogger(10) as logger:
        logger.log_metrics({}, step=10)
    captured = capsys.readouterr()
    assert "10/10 (100.0%)" in captured.err and captured.out == ""


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
        ({"total_frames": 10, "min_interval_s": -1.0}, r"min_interval_s must be >= 0, got -1.0"),
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
