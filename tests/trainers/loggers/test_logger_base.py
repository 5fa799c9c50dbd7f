"""Logger base contract: value conversion, step checks, closing, fan-out."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from rlkit.trainers.loggers import Logger, MultiLogger, NoneLogger, to_scalar_metrics


class RecordingLogger(Logger):
    def __init__(self, fail_on_close: bool = False) -> None:
        self.metrics: list[tuple[dict[str, float], int]] = []
        self.configs: list[Mapping[str, Any]] = []
        self.close_calls = 0
        self.fail_on_close = fail_on_close

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.metrics.append((metrics, step))

    def _log_config(self, config: Mapping[str, Any]) -> None:
        self.configs.append(config)

    def _close(self) -> None:
        self.close_calls += 1
        if self.fail_on_close:
            raise OSError("disk gone")


def test_values_become_python_floats():
    out = to_scalar_metrics(
        {
            "loss_value": torch.tensor(0.25),
            "one_elem": torch.tensor([[3.0]]),
            "frames": 7,
            "flag": True,
            "np32": np.float32(1.5),
            "np_int": np.int64(4),
        }
    )
    assert out == {"loss_value": 0.25, "one_elem": 3.0, "frames": 7.0, "flag": 1.0, "np32": 1.5, "np_int": 4.0}
    assert all(type(v) is float for v in out.values())


def test_int_tensor_and_grad_tensor_are_converted():
    x = torch.tensor(2.0, requires_grad=True) * 3
    assert to_scalar_metrics({"a": x, "b": torch.tensor(5)}) == {"a": 6.0, "b": 5.0}


@pytest.mark.parametrize(
    ("metrics", "match"),
    [
        ({"loss_value": torch.ones(3)}, r"metric 'loss_value' must be a scalar.*shape \(3,\)"),
        ({"name": "dqn"}, r"metric 'name' must be a float.*got str"),
        ({"c": torch.tensor(1 + 2j)}, r"metric 'c' must be real"),
        ({1: 0.5}, r"metric keys must be strings, got 1"),
    ],
)
def test_bad_metric_values_name_the_key(metrics, match):
    with pytest.raises(TypeError, match=match):
        to_scalar_metrics(metrics)


def test_step_is_checked_and_numpy_ints_accepted():
    logger = RecordingLogger()
    logger.log_metrics({"a": 1.0}, step=np.int64(12))
    assert logger.metrics == [({"a": 1.0}, 12)] and type(logger.metrics[0][1]) is int
    with pytest.raises(ValueError, match="non-negative int.*got -1"):
        logger.log_metrics({"a": 1.0}, step=-1)
    with pytest.raises(TypeError, match="non-negative int.*got float: 1.5"):
        logger.log_metrics({"a": 1.0}, step=1.5)
    with pytest.raises(TypeError, match="non-negative int.*got True"):
        logger.log_metrics({"a": 1.0}, step=True)


def test_close_is_idempotent_and_refuses_later_use():
    logger = RecordingLogger()
    with logger as entered:
        assert entered is logger
        entered.log_config({"algo": {"name": "dqn"}})
    assert logger.closed and logger.close_calls == 1
    logger.close()
    assert logger.close_calls == 1
    with pytest.raises(RuntimeError, match="RecordingLogger is closed"):
        logger.log_metrics({"a": 1.0}, step=0)
    with pytest.raises(RuntimeError, match="RecordingLogger is closed"):
        logger.log_config({})


def test_log_config_requires_a_mapping():
    with pytest.raises(TypeError, match="config must be a mapping.*got list"):
        RecordingLogger().log_config([("lr", 1e-3)])


def test_multi_logger_fans_out_converted_values():
    a, b = RecordingLogger(), RecordingLogger()
    multi = MultiLogger([a, b])
    multi.log_metrics({"loss_value": torch.tensor(0.5)}, step=100)
    multi.log_config({"seed": 0})
    for logger in (a, b):
        assert logger.metrics == [({"loss_value": 0.5}, 100)]
        assert logger.configs == [{"seed": 0}]
    multi.close()
    assert a.closed and b.closed


def test_multi_logger_closes_all_then_reraises_first_error():
    failing, ok = RecordingLogger(fail_on_close=True), RecordingLogger()
    with pytest.raises(OSError, match="disk gone"):
        MultiLogger([failing, ok]).close()
    assert ok.close_calls == 1 and failing.close_calls == 1


def test_multi_logger_rejects_non_loggers_and_accepts_empty():
    with pytest.raises(TypeError, match="item 1 is str"):
        MultiLogger([NoneLogger(), "csv"])
    with MultiLogger([]) as empty:
        empty.log_metrics({"a": 1.0}, step=0)


def test_none_logger_accepts_everything():
    with NoneLogger() as logger:
        logger.log_metrics({"a": torch.tensor(1.0)}, step=3)
        logger.log_config({"x": {"y": 1}})
    assert logger.closed
