"""trainer.video_interval: one evaluation episode recorded every N frames into <run dir>/videos/ (gymnasium's
RecordVideo; moviepy); refused before the run directory exists when it cannot record; configs saved before
the key existed still validate."""
from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import rlkit
from rlkit.builders import validate_config
from rlkit.cli import CONF_DIR
from rlkit.errors import ConfigError, EnvError, RlkitError

HAS_MOVIEPY = importlib.util.find_spec("moviepy") is not None
TINY = ["total_frames=400", "algo.learning_starts=100", "trainer.eval_episodes=2", "trainer.eval_interval=0",
        "trainer.progress=false", "logger=none"]


@pytest.mark.skipif(not HAS_MOVIEPY, reason='moviepy is not installed (pip install -e ".[video]")')
def test_one_episode_is_recorded_every_interval(tmp_path):
    result = rlkit.train([*TINY, "trainer.video_interval=200"], output_dir=tmp_path / "run")
    videos = sorted(p.name for p in (result.run_dir / "videos").iterdir())
    assert videos == ["frame-200.mp4", "frame-400.mp4"]
    assert all((result.run_dir / "videos" / v).stat().st_size > 0 for v in videos)


def test_without_moviepy_the_start_is_refused_naming_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "moviepy" else real(name, *a))
    with pytest.raises(RlkitError, match=r'trainer.video_interval=200 records videos .* pip install -e "\.\[video\]"'):
        rlkit.train([*TINY, "trainer.video_interval=200"], output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not HAS_MOVIEPY, reason='moviepy is not installed (pip install -e ".[video]")')
def test_an_env_that_cannot_render_is_refused(tmp_path):
    with pytest.raises(EnvError, match="cannot render frames"):
        rlkit.train([*TINY, "env=gym", "env.id=corridor_env:MaskedCorridor-v0", "trainer.video_interval=200"],
                    output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_interval_is_checked_and_optional_in_saved_configs():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["trainer.video_interval=0"])
    with pytest.raises(ConfigError, match="trainer.video_interval=0 is invalid: expected a positive number"):
        validate_config(cfg)
    saved = OmegaConf.to_container(cfg, resolve=True)
    del saved["trainer"]["video_interval"]  # a run saved before the key existed
    assert validate_config(OmegaConf.create(saved)).root.trainer.video_interval is None


@pytest.mark.skipif(not HAS_MOVIEPY, reason='moviepy is not installed (pip install -e ".[video]")')
def test_an_interrupted_recording_is_dropped_without_encoding(tmp_path, monkeypatch):
    """Ctrl-C during evaluate.py video=true took 5-6 s to exit: every sub-env's unfinished video was
    encoded on close, then removed."""
    from rlkit.trainers.video import NamedRecordVideo

    result = rlkit.train(TINY, output_dir=tmp_path / "run")
    encoded, steps = [], []
    monkeypatch.setattr(NamedRecordVideo, "stop_recording", lambda self: encoded.append(self.name_prefix))
    step = NamedRecordVideo.step

    def interrupted_at_the_fifth_step(self, action):
        steps.append(None)
        if len(steps) == 5:
            raise KeyboardInterrupt
        return step(self, action)

    monkeypatch.setattr(NamedRecordVideo, "step", interrupted_at_the_fifth_step)
    with pytest.raises(KeyboardInterrupt):
        rlkit.evaluate(result.run_dir, episodes=2, video=True, output_dir=tmp_path / "eval")
    assert encoded == [] and not (tmp_path / "eval").exists()
