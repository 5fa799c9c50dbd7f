"""Videos of evaluation episodes, recorded with gymnasium's ``RecordVideo`` (needs ``moviepy``: the
optional extra ``pip install -e ".[video]"``).

:func:`check_video_support` refuses, in one line, what cannot record (moviepy missing, an env
without ``rgb_array`` rendering) before anything is written. :func:`video_wrappers` wraps each
sub-env of an evaluation env in a :class:`NamedRecordVideo` that records only when armed, so the
episodes an env plays while it is built or between evaluations are never recorded.
:class:`VideoRecorder` records one evaluation episode on demand (``trainer.video_interval``).
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import RecordVideo

from rlkit.errors import EnvError, RlkitError

__all__ = ["VIDEO_EXTRA", "NamedRecordVideo", "VideoRecorder", "check_video_support", "video_wrappers"]

#: How to install what recording needs.
VIDEO_EXTRA = 'pip install -e ".[video]"'


def check_video_support(env_id: str, setting: str = "video=true") -> None:
    """Refuses to record when ``moviepy`` is missing or the env cannot render ``rgb_array`` frames.

    Raises:
        RlkitError: moviepy is not installed (the message names the extra).
        EnvError: the env declares no ``rgb_array`` render mode.
    """
    if importlib.util.find_spec("moviepy") is None:
        raise RlkitError(f"{setting} records videos with gymnasium's RecordVideo, which needs moviepy (not installed): "
                         f"{VIDEO_EXTRA}")
    from rlkit.envs import find_env_spec

    spec = find_env_spec(env_id)
    entry = spec.entry_point
    try:
        creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    except (ImportError, AttributeError, ValueError):
        return  # building the env will say why it cannot be built
    modes = list(getattr(creator, "metadata", {}).get("render_modes", []))
    if "rgb_array" not in modes:
        raise EnvError(f"{setting}: env {env_id!r} cannot render frames to record (its render modes: {modes}; a video "
                       "needs 'rgb_array')")


class NamedRecordVideo(RecordVideo):
    """gymnasium's ``RecordVideo`` writing ``<video_folder>/<name_prefix>.mp4`` (no episode number
    appended: the caller names each video), recording the episodes its trigger selects."""

    def start_recording(self, video_name: str) -> None:
        super().start_recording(self.name_prefix)


class _ArmedTrigger:
    """An episode trigger that selects the first episode started after :meth:`arm`, once."""

    def __init__(self) -> None:
        self.armed = False

    def arm(self) -> None:
        self.armed = True

    def __call__(self, episode_id: int) -> bool:  # noqa: ARG002 (gymnasium's trigger signature)
        selected, self.armed = self.armed, False
        return selected


class VideoWrappers:
    """The sub-env wrapper factory of :func:`video_wrappers` and the recorders it made."""

    def __init__(self, folder: Path, prefix: Callable[[int], str]) -> None:
        self.folder = folder
        self.prefix = prefix
        self.recorders: list[NamedRecordVideo] = []
        self.triggers: list[_ArmedTrigger] = []

    def __call__(self, env: gym.Env) -> gym.Env:
        trigger = _ArmedTrigger()
        with warnings.catch_warnings():
            # the folder is shared by the sub-envs (each writes its own files)
            warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
            recorder = NamedRecordVideo(env, str(self.folder), episode_trigger=trigger,
                                        name_prefix=self.prefix(len(self.recorders)), disable_logger=True)
        self.recorders.append(recorder)
        self.triggers.append(trigger)
        return recorder

    def arm(self) -> None:
        """Records the next episode each sub-env starts."""
        for trigger in self.triggers:
            trigger.arm()

    def stop(self) -> None:
        """Writes the videos still being recorded (an episode cut short by a step cap)."""
        for recorder in self.recorders:
            if recorder.recording:
                recorder.stop_recording()

    def discard(self) -> None:
        """Drops the videos still being recorded without writing them (an interrupted evaluation,
        whose unfinished videos would be removed anyway: encoding them took seconds on the way out)."""
        for recorder in self.recorders:
            recorder.recorded_frames = []
            recorder.recording = False


def video_wrappers(folder: str | os.PathLike[str], prefix: Callable[[int], str]) -> VideoWrappers:
    """A wrapper for every sub-env of an env (pass it in ``make_env(..., extra_wrappers=[...])``):
    sub-env ``i`` records into ``folder/<prefix(i)>.mp4`` each episode it starts after
    :meth:`VideoWrappers.arm`."""
    return VideoWrappers(Path(folder), prefix)


def warn_no_video(what: str) -> None:
    """Warns that a recording wrote no file: the env's ``render()`` returned no frames."""
    warnings.warn(f"{what} was not written: the env's render() returned no frames (None) in 'rgb_array' mode",
                  RuntimeWarning, stacklevel=3)


class VideoRecorder:
    """Records one evaluation episode into ``<folder>/frame-<frames>.mp4`` per call.

    Args:
        make: builds, on the first call (nothing is written before), an
            :class:`~rlkit.trainers.Evaluator` on a one-sub-env env whose sub-env is wrapped by the
            :func:`video_wrappers` it returns with it.
    """

    def __init__(self, make: Callable[[], tuple[Any, VideoWrappers]]) -> None:
        self.make = make
        self.evaluator: Any = None
        self.wrappers: VideoWrappers | None = None

    def __call__(self, frames: int) -> Path:
        """Plays and records one evaluation episode; returns the video's path."""
        if self.evaluator is None:
            self.evaluator, self.wrappers = self.make()
        assert self.wrappers is not None  # (made with the evaluator)
        name = f"frame-{frames}"
        for recorder in self.wrappers.recorders:
            recorder.name_prefix = name
        self.wrappers.arm()
        self.evaluator.episodes()
        self.wrappers.stop()
        path = self.wrappers.folder / f"{name}.mp4"
        if not path.exists():
            warn_no_video(f"the video at {frames:,} frames")
        return path

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()
