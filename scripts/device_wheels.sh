#!/usr/bin/env bash
# The wheels a lent GPU machine lacks, downloaded here into .whl/ (git-ignored) for the one call that
# checks rlkit there (README, "Checking a GPU"). Its image holds Python 3.12, a CUDA torch, numpy,
# pytest, OpenCV and matplotlib, but not rlkit's other needs, and nothing can be fetched there.
# Versions are constraints.txt's; antlr4-python3-runtime (omegaconf's parser) has no wheel on the
# index, so one is built from its source here (pure Python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pin() { grep -i -m1 "^$1==" constraints.txt || { echo "device_wheels: $1 is not pinned in constraints.txt" >&2; exit 2; }; }
platforms=()
for tag in manylinux_2_17 manylinux2014 manylinux_2_24 manylinux_2_27 manylinux_2_28 manylinux_2_31 manylinux_2_34; do
  platforms+=(--platform "${tag}_x86_64")
done
rm -rf .whl && mkdir .whl
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "$(pin tensordict)" "$(pin pyvers)" "$(pin gymnasium)" "$(pin farama-notifications)" \
  "$(pin hydra-core)" "$(pin omegaconf)" "$(pin ale-py)" "$(pin minatar)"
"$PY" -m pip wheel --quiet --no-deps -w .whl "$(pin antlr4-python3-runtime)"
du -sh .whl && ls .whl
