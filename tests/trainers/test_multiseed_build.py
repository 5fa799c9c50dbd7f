"""How :func:`rlkit.factories.build_multiseed_trainer` builds a multi-seed run: the optimiser's
layout (stacked tensors, per-seed views, or refused), the refusals' hints, the W&B runs' names."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlkit.builders import validate_config
from rlkit.errors import NotStackableError
from rlkit.factories import build_multiseed_trainer
from rlkit.run import run
from rlkit.trainers import read_metrics_csv

from test_multiseed import ALGO, CONF, TINY, batched  # (tests/trainers/test_multiseed.py: its short runs)

DQN = ALGO["dqn"]
ADAFACTOR = ["algo.optim._target_=torch.optim.Adafactor", "algo.optim.fused=null", "algo.optim.lr=0.01"]


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=overrides)


def trained(tmp: Path, num_seeds: int, extra: list[str]) -> dict[str, torch.Tensor]:
    """The stacked parameters after a short run of ``num_seeds`` seeds from seed 0."""
    return batched(tmp, "dqn", 0, num_seeds, frames=800, extra=tuple(extra))[1]


def test_a_seed_trained_with_adafactor_does_not_depend_on_the_other_seeds(tmp_path):
    """Adafactor factors its second moment over a tensor's last two dims: over the stacked [N, out]
    biases, across the seeds, so seed 0 trained differently beside one seed than beside two."""
    two = trained(tmp_path / "two", 2, ADAFACTOR)
    three = trained(tmp_path / "three", 3, ADAFACTOR)
    for k in (0, 1):
        for name, value in two.items():
            assert torch.equal(value[k], three[name][k]), (k, name)
        rows_two, rows_three = ([{c: v for c, v in row.items() if c != "fps"}
                                 for row in read_metrics_csv(tmp_path / n / f"seed_{k}")] for n in ("two", "three"))
        assert rows_two == rows_three
        losses = [row["loss_value"] for row in rows_two if "loss_value" in row]
        assert len(losses) >= 2 and len(set(losses)) == len(losses)  # (it trained)


def test_an_optimiser_not_known_to_keep_the_seeds_apart_is_refused_before_anything_is_written(tmp_path):
    run_dir = tmp_path / "run"
    cfg = compose_cfg([*DQN, *TINY, "total_frames=400", "num_seeds=2", "algo.optim._target_=torch.optim.LBFGS",
                       "algo.optim.fused=null"])
    with pytest.raises(NotStackableError, match=r"^num_seeds=2: algo\.optim\._target_='torch\.optim\.LBFGS' is not an "
                                                r"optimiser the batched multi-seed trainer knows to update each seed "
                                                r"from that seed's numbers alone; supported: \['torch\.optim\.Adam', "
                                                r".*'rlkit\.optim\.RMSpropTF', 'torch\.optim\.Adafactor'.*\]; or use "
                                                r"num_seeds=1"):
        run(cfg, run_dir)
    assert not run_dir.exists()


@pytest.mark.parametrize(("extra", "hint"), [
    ([], "; algo.distribution=tanh_normal trains with num_seeds, or use num_seeds=1"),
    (["algo.entropy_coeff=0.01"], "; algo.distribution=tanh_normal with algo.entropy_coeff=0 trains with num_seeds, "
                                  "or use num_seeds=1"),
    # The user's network is not stacked whatever the distribution: no hint.
    (["algo.network={_target_: examples.nets.TwoLayer, width: 12}"], "; use num_seeds=1"),
])
def test_a_gaussian_a2c_refused_by_num_seeds_says_whether_tanh_normal_would_train(tmp_path, extra, hint):
    """The refusal named the log-std and advised num_seeds=1 only, though a tanh_normal policy trains."""
    s = validate_config(compose_cfg(["algo=a2c", "env=Pendulum", *TINY, "total_frames=400", "num_seeds=2", *extra]))
    with pytest.raises(NotStackableError, match=r"^num_seeds=2: .* has parameters outside them \(\[.*log_std'.*\]\)"
                                                 + hint.replace("(", r"\(").replace(".", r"\.")) as refused:
        build_multiseed_trainer(s, tmp_path / "run")
    assert str(refused.value).count("num_seeds=1") == 1
    assert not (tmp_path / "run").exists()
    if "tanh_normal" in hint:  # (and it does train)
        fixed = ["algo.distribution=tanh_normal", *(["algo.entropy_coeff=0"] if "entropy" in hint else [])]
        s = validate_config(compose_cfg(["algo=a2c", "env=Pendulum", *TINY, "total_frames=400", "num_seeds=2",
                                         *extra, *fixed]))
        build_multiseed_trainer(s, tmp_path / "run").close()
