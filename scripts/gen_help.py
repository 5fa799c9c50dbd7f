"""Writes ``conf/hydra/help/<page>.yaml``, the text of ``--help`` of train.py, evaluate.py, export.py and
tune.py, from the comments of their configs (``conf/config.yaml``, ``evaluate.yaml``, ``export.yaml``,
``tune.yaml``).

Usage::

    python scripts/gen_help.py           # rewrite the stale help files, and README.md's copy of train.py --help
    python scripts/gen_help.py --check   # exit status 1 when one is stale (tests/test_help.py checks them)

The help lists the config groups with the comment of their line in ``config.yaml``'s defaults list
and the default option; Hydra fills in every group's options (``$APP_CONFIG_GROUPS``, read from
``conf/`` when ``--help`` runs). Hydra's list also has the folders of ``conf/`` that are not groups a
run chooses (``INTERNAL_GROUPS``: ``train.py experiment_base=...`` or ``tune=...`` is refused as an
unknown key), so the line after it names them as such. Then every top-level key and ``trainer.*`` key
with its default and its one-line comment. The other pages list their config's keys (tune.py's: its
``tune.*`` keys). Edit the comments in the configs, not the generated files.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_DEFAULT = re.compile(r"^  - (?:optional )?(?P<group>[\w/]+): (?P<option>\S+)\s*#\s*(?P<comment>.*)$")
_KEY = re.compile(r"^(?P<indent> *)(?P<key>\w+):(?: +(?P<value>[^#]*?))?\s*(?:#\s*(?P<comment>.*))?$")
_COLUMN = 33  # where the comments start (further right after a longer key=value)

#: The folders of conf/ that Hydra lists among train.py's groups but a run cannot choose, with what
#: they hold (tests/test_help.py checks that every other folder is a group of config.yaml).
INTERNAL_GROUPS = {
    "experiment_base": "the shared bases of the experiment files",
    "tune": "tune.py's search spaces, conf/tune/<algo>.yaml",
}


def groups_and_keys(text: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The (group, default option, comment) of each defaults-list entry (not Hydra's own groups) and the
    (dotted key, default, comment) of each key of ``text`` (a ``config.yaml``) outside ``defaults`` and
    ``hydra``, nested keys under their section.

    Examples:
        >>> import sys; sys.path.insert(0, "scripts")
        >>> from gen_help import groups_and_keys
        >>> groups_and_keys("defaults:\\n  - algo: dqn  # the algorithm\\nseed: 0  # seeds all\\n"
        ...                 "trainer:\\n  log_interval: 2000  # frames between rows\\n")
        ([('algo', 'dqn', 'the algorithm')], [('seed', '0', 'seeds all'), ('trainer.log_interval', '2000', 'frames between rows')])
    """
    groups: list[tuple[str, str, str]] = []
    keys: list[tuple[str, str, str]] = []
    section: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if section == "defaults" and line.startswith("  - "):
            match = _DEFAULT.match(line)
            if match and not match["group"].startswith("hydra/"):
                groups.append((match["group"], match["option"], match["comment"].strip()))
            continue
        match = _KEY.match(line)
        if match is None:
            continue
        if not match["indent"]:
            section = match["key"] if not match["value"] else None
            if match["value"]:
                keys.append((match["key"], match["value"], (match["comment"] or "").strip()))
        elif section not in (None, "defaults", "hydra") and len(match["indent"]) == 2 and match["value"]:
            keys.append((f"{section}.{match['key']}", match["value"], (match["comment"] or "").strip()))
    return groups, keys


def _plain(text: str) -> str:
    # The template goes through OmegaConf (${...}) and then string.Template ($NAME): a comment with a
    # dollar sign would be read as either; none needs one.
    if "$" in text:
        raise ValueError(f"a comment shown by --help cannot contain '$': {text!r}")
    return text


@dataclass(frozen=True)
class Page:
    """One entry point's ``--help``: its config file, the help file generated from it, and the text
    around the generated lists."""

    config: str  #: the config file, relative to conf/
    help: str  #: the help option (conf/hydra/help/<help>.yaml), chosen in the config's defaults list
    app_name: str
    header: str
    footer: str
    groups: bool = False  #: whether the page lists config groups (train.py's)


PAGES = (
    Page("config.yaml", "rlkit", "train.py",
         """rlkit: DQN, C51 and A2C training on torch + tensordict, configured with Hydra.

python train.py [group=option ...] [key=value ...]     one run, in outputs/<date>/<time>_<algo>_<env>_s<seed>_<id>/
python train.py -m key=a,b [key=value ...]             a sweep: one job per combination
python train.py resume=<run dir> [key=value ...]       continue a run from its last checkpoint
""",
         """Nested keys of a group: algo.optim.lr=1e-3, env.id=Acrobot-v1, ... (each commented in conf/<group>/<option>.yaml).
The composed config: python train.py [overrides] --cfg job. Hydra's own flags: python train.py --hydra-help
""", groups=True),
    Page("evaluate.yaml", "evaluate", "evaluate.py",
         """rlkit: play a trained run's policy and write the returns (README "Evaluating, recording and exporting").

python evaluate.py run=<run dir or checkpoint file> [key=value ...]
""",
         """The run's own config (algorithm, env, normalisation) is read from its config.yaml: these keys are all
evaluate.py takes. Hydra's own flags: python evaluate.py --hydra-help
"""),
    Page("export.yaml", "export", "export.py",
         """rlkit: write a trained run's greedy policy as a standalone file (README "Evaluating, recording and exporting").

python export.py run=<run dir or checkpoint file> [format=torchscript|pt2|onnx] [key=value ...]
""",
         """The run's own config (algorithm, env, normalisation) is read from its config.yaml: these keys are all
export.py takes. Hydra's own flags: python export.py --hydra-help
"""),
    Page("tune.yaml", "tune", "tune.py",
         """rlkit: hyperparameter search with Optuna over train.py's config (README "Tuning").

python tune.py [group=option ...] [key=value ...] [tune.key=value ...]   one study, in outputs/tune/<study>/
""",
         """Every group and key of train.py applies to each trial (python train.py --help); the search space is
tune.space (conf/tune/<algo>.yaml). Hydra's own flags: python tune.py --hydra-help
"""),
)


def _shown_value(value: str) -> str:
    """A default as the help shows it: an interpolated one (``${...}``) as ``(derived)``, which the
    key's comment explains (the template would read a dollar sign as its own)."""
    return "(derived)" if "$" in value else value


def render(config_text: str, page: Page = PAGES[0]) -> str:
    """The content of ``conf/hydra/help/<page.help>.yaml`` for the text of ``page``'s config file."""
    groups, keys = groups_and_keys(config_text)
    key_lines = [_plain(f"{f'{key}={_shown_value(value)}':<{_COLUMN}} {comment}") for key, value, comment in keys]
    lines = ["${hydra.help.header}"]
    if page.groups:
        group_lines = [_plain(f"{f'{group}={option}':<{_COLUMN}} {comment}") for group, option, comment in groups]
        lines += ["== Config groups (group=option; shown with the default option) ==",
                  *group_lines,
                  "",
                  "Options of each group (files in conf/<group>/):",
                  "$APP_CONFIG_GROUPS",
                  _plain("Not groups to choose (train.py refuses them): "
                         + "; ".join(f"{group} ({what})" for group, what in INTERNAL_GROUPS.items())),
                  "",
                  "== Top-level keys (key=value; shown with the default value) =="]
    else:
        lines += ["== Keys (key=value; shown with the default value) =="]
    body = "\n".join([*lines, *key_lines, "", "${hydra.help.footer}"])

    def block(text: str) -> str:
        return "\n".join("  " + line if line else "" for line in text.splitlines())

    return f"""# The text of `python {page.app_name} --help` (selected in conf/{page.config}: override hydra/help: {page.help}).
# GENERATED by scripts/gen_help.py from the comments of conf/{page.config}: edit those, then run
# `python scripts/gen_help.py` (tests/test_help.py fails while this file is stale).
app_name: {page.app_name}
header: |
{block(page.header)}
footer: |
{block(page.footer)}
template: |
{block(body)}
"""


def help_file(page: Page) -> Path:
    return ROOT / "conf" / "hydra" / "help" / f"{page.help}.yaml"


#: Where README.md shows ``train.py --help`` as printed (a fenced block after this line).
README_HELP = "$ python train.py --help\n"


def readme_with_help(readme: str, help_text: str) -> str:
    r"""``readme`` with its copy of ``train.py --help`` (the fenced block after :data:`README_HELP`)
    replaced by ``help_text``.

    Examples:
        >>> import sys; sys.path.insert(0, "scripts")
        >>> from gen_help import readme_with_help
        >>> readme_with_help("# x\n```\n$ python train.py --help\nold\n```\nrest\n", "new\nhelp\n")
        '# x\n```\n$ python train.py --help\nnew\nhelp\n```\nrest\n'
    """
    start = readme.index(README_HELP) + len(README_HELP)
    end = readme.index("```", start)
    return readme[:start] + help_text.rstrip("\n") + "\n" + readme[end:]


def train_help() -> str:
    """What ``python train.py --help`` prints now (its group options are read from ``conf/``)."""
    import os
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], cwd=ROOT, text=True,
                          capture_output=True, timeout=300, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    if done.returncode != 0:
        raise SystemExit(f"python train.py --help failed (status {done.returncode}):\n{done.stderr}")
    return done.stdout


def main(argv: list[str]) -> int:
    if argv in (["--help"], ["-h"]):
        print(__doc__)
        return 0
    if argv not in ([], ["--check"]):
        print(f"gen_help.py: unknown arguments {argv}; usage: python scripts/gen_help.py [--check]", file=sys.stderr)
        return 2
    stale = []
    for page in PAGES:
        text = render((ROOT / "conf" / page.config).read_text(encoding="utf-8"), page)
        path = help_file(page)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not argv:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)}")
    # README's copy of train.py --help, from the help as printed with the files just written (the
    # options of each group come from conf/: a new algo file adds itself there).
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    refreshed = readme_with_help(text, train_help())
    if refreshed != text:
        stale.append(readme)
        if not argv:
            readme.write_text(refreshed, encoding="utf-8")
            print("wrote README.md's copy of train.py --help")
    if argv and stale:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python scripts/gen_help.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
