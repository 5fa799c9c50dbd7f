"""``python train.py --help``: the config groups with their options and descriptions, and every
top-level key with its default and the one-line comment it has in conf/config.yaml. The help file is
generated from those comments (scripts/gen_help.py) and must be up to date."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gen_help", ROOT / "scripts" / "gen_help.py")
gen_help = importlib.util.module_from_spec(_spec)
sys.modules["gen_help"] = gen_help  # (its dataclasses look their module up)
_spec.loader.exec_module(gen_help)


@pytest.fixture(scope="module")
def help_text() -> str:
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_help_files_are_generated_from_the_current_comments():
    for page in gen_help.PAGES:
        config = (ROOT / "conf" / page.config).read_text()
        assert gen_help.help_file(page).read_text() == gen_help.render(config, page), (
            f"{gen_help.help_file(page)} is stale: run python scripts/gen_help.py")
        # and the config selects it
        assert f"override hydra/help: {page.help} " in config, page.config
    config = (ROOT / "conf" / "config.yaml").read_text()
    changed = config.replace("# frame budget over all envs", "# a new comment on the budget")
    assert "total_frames=500000               a new comment on the budget" in gen_help.render(changed)


def test_help_lists_every_group_with_its_options_and_description(help_text):
    groups, _ = gen_help.groups_and_keys((ROOT / "conf" / "config.yaml").read_text())
    assert {group for group, _, _ in groups} == {"algo", "env", "value_estimator", "logger", "experiment"}
    lines = help_text.splitlines()
    for group, option, comment in groups:
        assert any(line.startswith(f"{group}={option} ") and line.endswith(comment) for line in lines), group
        options = sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in lines
    assert "logger: csv, none, tensorboard, wandb" in lines


def test_help_lists_every_top_level_key_with_its_default_and_comment(help_text):
    _, keys = gen_help.groups_and_keys((ROOT / "conf" / "config.yaml").read_text())
    names = [key for key, _, _ in keys]
    assert names[:5] == ["seed", "num_seeds", "device", "num_threads", "total_frames"]
    assert "trainer.eval_interval" in names and not any(key.startswith("hydra") for key in names)
    lines = help_text.splitlines()
    for key, value, comment in keys:
        assert comment, f"conf/config.yaml: {key} has no comment"
        assert any(line.startswith(f"{key}={value} ") and line.endswith(f" {comment}") for line in lines), key
    assert "seed=0                            seeds torch, numpy, python and the training env; the eval env uses " \
           "seed + 10000" in lines


def test_a_dollar_in_a_comment_is_refused():
    with pytest.raises(ValueError, match="cannot contain"):
        gen_help.render("seed: 0  # costs $5\n")


def test_the_other_entry_points_list_their_own_keys():
    """evaluate.py, export.py and tune.py printed train.py's help (or Hydra's default one, offering
    the training groups, which they refuse)."""
    for script, config in (("evaluate.py", "evaluate.yaml"), ("export.py", "export.yaml"), ("tune.py", "tune.yaml")):
        done = subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=ROOT, text=True, capture_output=True,
                              timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
        assert done.returncode == 0, done.stderr
        page = next(p for p in gen_help.PAGES if p.config == config)
        _, keys = gen_help.groups_and_keys((ROOT / "conf" / config).read_text())
        lines = done.stdout.splitlines()
        assert lines[0] == page.header.splitlines()[0]
        for key, value, comment in keys:
            assert any(line.startswith(f"{key}=") and line.endswith(f" {comment}") for line in lines), (script, key)
        assert "algo=dqn " not in done.stdout and "Compose your configuration" not in done.stdout
    assert "tune.study=(derived)" in done.stdout


def test_the_readme_shows_the_help_as_printed(help_text):
    readme = (ROOT / "README.md").read_text()
    start = readme.index("$ python train.py --help\n") + len("$ python train.py --help\n")
    shown = readme[start:readme.index("```", start)]
    assert shown == help_text.rstrip("\n") + "\n", ("README.md's train.py --help block is stale: run python "
                                                    "scripts/gen_help.py")
    assert gen_help.readme_with_help(readme, help_text) == readme  # (what gen_help.py writes)


def test_the_internal_folders_of_conf_are_not_offered_as_groups(help_text):
    """Hydra lists every folder of conf/ among the groups, experiment_base and tune included, but
    `train.py tune=dqn` or `experiment_base=dqn_minatar` is refused (unknown key): the help names them
    as not groups to choose, and each other folder is a group of config.yaml."""
    groups, _ = gen_help.groups_and_keys((ROOT / "conf" / "config.yaml").read_text())
    chosen = {group for group, _, _ in groups}
    folders = {p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name != "hydra"}
    assert set(gen_help.INTERNAL_GROUPS) == folders - chosen and not chosen & set(gen_help.INTERNAL_GROUPS)
    lines = help_text.splitlines()
    offered = lines[lines.index("== Config groups (group=option; shown with the default option) =="):
                    lines.index("Options of each group (files in conf/<group>/):")]
    note = next(line for line in lines if line.startswith("Not groups to choose (train.py refuses them): "))
    assert lines.index(note) < lines.index("== Top-level keys (key=value; shown with the default value) ==")
    for group, what in gen_help.INTERNAL_GROUPS.items():
        assert not any(line.startswith(f"{group}=") for line in offered), group
        assert f"{group} ({what})" in note
    assert "experiment_base (the shared bases of the experiment files)" in note and "tune (tune.py's" in note


@pytest.mark.parametrize("override", ["tune=dqn", "experiment_base=dqn_minatar"])
def test_an_internal_group_is_refused_as_the_help_says(override, tmp_path):
    group = override.partition("=")[0]
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), override, "total_frames=1000",
                           "trainer.progress=false", f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert done.returncode == 2 and f"unknown key {group};" in done.stderr, done.stderr
    assert not (tmp_path / "run").exists()
