"""EGreedyPolicy: same action distribution as policy + EGreedyModule, the policy only called when used."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from rlkit.data import Categorical, OneHot
from rlkit.modules import EGreedyModule, EGreedyPolicy, ExplorationType, QValueActor, set_exploration_type


class CountingNet(torch.nn.Module):
    """Q-values that make action 1 greedy; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.stack([obs[..., 0] * 0, obs[..., 0] * 0 + 1], -1)


def make(eps: float, spec=None, mask_key=None):
    spec = spec or Categorical(2)
    net = CountingNet()
    actor = QValueActor(net, spec=spec, action_mask_key=mask_key)
    explore = EGreedyModule(spec, eps_init=eps, eps_end=eps, annealing_num_steps=1, action_mask_key=mask_key)
    return net, EGreedyPolicy(actor, explore)


def obs_td(n: int) -> TensorDict:
    return TensorDict(observation=torch.randn(n, 4), batch_size=[n])


def test_eps_one_never_calls_the_policy_and_draws_uniform_actions():
    net, policy = make(1.0)
    actions = torch.cat([policy(obs_td(50))["action"] for _ in range(20)])
    assert net.calls == 1  # only the first call, which reads the batch dims off the greedy action
    assert abs(actions.float().mean().item() - 0.5) < 0.05  # 1000 uniform draws of {0, 1}


def test_eps_zero_is_the_greedy_policy():
    net, policy = make(0.0)
    out = policy(obs_td(7))
    assert net.calls == 1
    assert out["action"].tolist() == [1] * 7


def test_mixed_batch_matches_the_coin_then_random_reference():
    net, policy = make(0.3)
    obs = obs_td(400)
    torch.manual_seed(3)
    got = policy(obs.clone())["action"]
    torch.manual_seed(3)  # the documented order: coins, then random actions for the batch
    coin = torch.rand(400) < 0.3
    random = Categorical(2).rand(torch.Size([400]))
    assert torch.equal(got, torch.where(coin, random, torch.ones(400, dtype=torch.int64)))
    assert 0.2 < coin.float().mean() < 0.4


def test_writes_only_the_action():
    _, policy = make(0.5)
    out = policy(obs_td(3))
    assert sorted(out.keys()) == ["action", "observation"]
    assert policy.out_keys == ["action"]


@pytest.mark.parametrize("mode", [ExplorationType.DETERMINISTIC, ExplorationType.MODE])
def test_greedy_outside_random_mode(mode):
    net, policy = make(1.0)
    with set_exploration_type(mode):
        assert policy(obs_td(5))["action"].tolist() == [1] * 5
    assert net.calls == 1


def test_act_is_the_tensordict_call_on_tensors():
    _, policy = make(0.5)
    obs = torch.randn(64, 4)
    torch.manual_seed(0)
    expected = policy(TensorDict(observation=obs, batch_size=[64]))["action"]
    torch.manual_seed(0)
    got = policy.act(obs)
    assert len(got) == 1 and torch.equal(got[0], expected)


def test_random_actions_respect_the_mask():
    spec = OneHot(3)
    actor = QValueActor(torch.nn.Linear(4, 3), spec=spec, action_mask_key="action_mask")
    policy = EGreedyPolicy(actor, EGreedyModule(spec, eps_init=1.0, eps_end=1.0, action_mask_key="action_mask"))
    mask = torch.tensor([[True, False, True]] * 200)
    td = TensorDict(observation=torch.randn(200, 4), action_mask=mask, batch_size=[200])
    actions = policy(td)["action"]
    assert actions[:, 1].sum() == 0
    assert actions[:, 0].sum() > 0 and actions[:, 2].sum() > 0
    assert policy.in_keys == ["observation", "action_mask"]
    assert policy.act(torch.randn(200, 4), mask)[0][:, 1].sum() == 0


def test_errors():
    spec = Categorical(2)
    actor = QValueActor(CountingNet(), spec=spec)
    explore = EGreedyModule(spec)
    with pytest.raises(TypeError, match="needs an EGreedyModule as explore, got QValueActor"):
        EGreedyPolicy(actor, actor)
    writes_other = TensorDictModule(torch.nn.Identity(), in_keys=["observation"], out_keys=["features"])
    with pytest.raises(ValueError, match=r"the policy writes \['features'\], not the action key 'action'"):
        EGreedyPolicy(writes_other, explore)
    with pytest.raises(KeyError, match=r"EGreedyPolicy reads the input from 'observation', which is missing; keys "
                                       r"present: \['obs'\]"):
        EGreedyPolicy(actor, explore)(TensorDict(obs=torch.zeros(1, 4), batch_size=[1]))


@pytest.mark.parametrize("eps", [1.0, 0.5, 0.0])
def test_actions_have_the_spec_dtype(eps):
    spec = Categorical(3, dtype=torch.int32)
    actor = QValueActor(torch.nn.Linear(4, 3), spec=spec)  # its greedy actions are int64
    policy = EGreedyPolicy(actor, EGreedyModule(spec, eps_init=eps, eps_end=eps, annealing_num_steps=1))
    for _ in range(3):
        assert policy(obs_td(8))["action"].dtype == torch.int32
    assert policy.act(torch.randn(8, 4))[0].dtype == torch.int32


@pytest.mark.parametrize("eps", [1.0, 0.5])
def test_batch_dims_come_from_the_input_not_the_root_batch_size(eps):
    spec = Categorical(2)
    nested = TensorDictModule(lambda obs: (obs[..., 0] > 0).long(), in_keys=[("agents", "observation")],
                              out_keys=[("agents", "action")])
    policy = EGreedyPolicy(nested, EGreedyModule(spec, eps_init=eps, eps_end=eps, action_key=("agents", "action")))
    td = TensorDict(agents=TensorDict(observation=torch.randn(5, 2, 4), batch_size=[5, 2]), batch_size=[5])
    for _ in range(2):
        assert policy(td)["agents", "action"].shape == (5, 2)
    _, flat = make(eps)
    unbatched_root = TensorDict(observation=torch.randn(6, 4), batch_size=[])
    for _ in range(2):
        assert flat(unbatched_root.clone())["action"].shape == (6,)


def test_image_observations_on_the_tensor_call():
    spec = Categorical(2)
    net = torch.nn.Sequential(torch.nn.Flatten(-3), torch.nn.Linear(3 * 5 * 5, 2))
    policy = EGreedyPolicy(QValueActor(net, spec=spec), EGreedyModule(spec, eps_init=1.0, eps_end=1.0))
    for _ in range(3):
        assert policy.act(torch.randn(8, 3, 5, 5))[0].shape == (8,)


def _reference_actions(eps_values: list[float], sizes: list[int], seed: int) -> list[torch.Tensor]:
    """The documented draws, one call at a time: ``torch.rand`` coins, then (if any entry explores)
    ``Categorical.rand`` for the batch; greedy action 1."""
    torch.manual_seed(seed)
    out = []
    for eps, n in zip(eps_values, sizes):
        coin = torch.rand(n) < torch.tensor(eps)
        if coin.any():
            random = Categorical(2).rand(torch.Size([n]))
            out.append(torch.where(coin, random, torch.ones(n, dtype=torch.int64)))
        else:
            out.append(torch.ones(n, dtype=torch.int64))
    return out


@pytest.mark.parametrize("tensor_call", [False, True])
def test_reused_coin_buffer_draws_the_numbers_of_fresh_coins(tensor_call):
    # The coins go into a buffer kept between calls; the numbers must stay those of torch.rand, also
    # when eps moves between calls and the batch size changes (the buffer is then replaced).
    _, policy = make(0.5)
    policy(obs_td(1))  # the first call reads the batch dims off the greedy action
    eps_values = [1.0, 0.5, 0.5, 0.0, 0.7, 0.3, 1.0, 0.2, 0.9]
    sizes = [1, 1, 3, 3, 1, 5, 5, 1, 1]
    got = []
    torch.manual_seed(11)
    for eps, n in zip(eps_values, sizes):
        policy.explore.eps.fill_(eps)
        if tensor_call:
            got.append(policy.act(torch.randn(n, 4, generator=torch.Generator().manual_seed(n)))[0])
        else:
            got.append(policy(TensorDict(observation=torch.zeros(n, 4), batch_size=[n]))["action"])
    for g, want in zip(got, _reference_actions(eps_values, sizes, 11)):
        assert torch.equal(g, want)


def test_coins_of_one_call_are_not_changed_by_the_next():
    # The mixed case compares the buffer with eps after the greedy call: a greedy policy that itself
    # draws numbers must not disturb the coins of the call in progress.
    class DrawingNet(CountingNet):
        def forward(self, obs):
            torch.rand(3)  # a policy with its own randomness
            return super().forward(obs)

    spec = Categorical(2)
    actor = QValueActor(DrawingNet(), spec=spec)
    policy = EGreedyPolicy(actor, EGreedyModule(spec, eps_init=0.5, eps_end=0.5, annealing_num_steps=1))
    policy(obs_td(64))
    obs = obs_td(64)
    torch.manual_seed(5)
    got = policy(obs)["action"]
    torch.manual_seed(5)
    coin = torch.rand(64) < 0.5
    torch.rand(3)
    random = Categorical(2).rand(torch.Size([64]))
    assert torch.equal(got, torch.where(coin, random, torch.ones(64, dtype=torch.int64)))


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
def test_explore_seeds_gives_each_seed_the_draws_and_actions_of_act_with_its_generator(eps):
    """A multi-seed collector's step: seed k's actions (and the state its generator is left in) are
    those of ``act`` run alone with that generator's state as the global one, step after step."""
    torch.manual_seed(0)
    actor = QValueActor(torch.nn.Linear(4, 3), in_keys=["observation"], spec=Categorical(3))
    together = EGreedyPolicy(actor, EGreedyModule(Categorical(3), eps_init=eps, eps_end=eps))
    alone = EGreedyPolicy(actor, EGreedyModule(Categorical(3), eps_init=eps, eps_end=eps))
    seeds = [11, 12, 13, 14]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    states = [torch.Generator().manual_seed(s).get_state() for s in seeds]
    calls = []

    def greedy(obs):
        calls.append(1)
        return actor.action(obs)

    with set_exploration_type(ExplorationType.RANDOM):
        for step in range(30):
            obs = torch.randn(len(seeds), 5, 4)
            calls.clear()
            actions = together.explore_seeds(obs, lambda obs=obs: greedy(obs), generators)
            assert len(calls) <= 1 and (eps < 1.0 or step == 0 or not calls)  # (the first call learns the event dims)
            for k in range(len(seeds)):
                torch.set_rng_state(states[k])
                expected = alone.act(obs[k])[0]
                states[k] = torch.get_rng_state()
                assert torch.equal(actions[k], expected) and actions[k].dtype == expected.dtype
                assert torch.equal(generators[k].get_state(), states[k])


def test_explore_seeds_refuses_a_masked_policy():
    actor = QValueActor(torch.nn.Linear(4, 3), in_keys=["observation"], spec=Categorical(3))
    policy = EGreedyPolicy(actor, EGreedyModule(Categorical(3), action_mask_key="action_mask"))
    assert not policy.explores_seeds
    with pytest.raises(ValueError, match="explore_seeds needs index actions without an action mask"):
        policy.explore_seeds(torch.zeros(2, 1, 4), lambda: torch.zeros(2, 1, dtype=torch.long), [torch.Generator()] * 2)


def test_an_exploration_spec_that_draws_other_actions_than_the_policy_takes_is_refused():
    """EGreedyModule(Categorical(5)) beside a 2-action actor drew random actions 2..4."""

    actor = QValueActor(torch.nn.Linear(4, 2), spec=Categorical(2))
    for spec in (Categorical(5), OneHot(2)):
        with pytest.raises(ValueError, match="the exploration module's spec .* draws other actions than the policy's spec"):
            EGreedyPolicy(actor, EGreedyModule(spec, eps_init=1.0))
    EGreedyPolicy(actor, EGreedyModule(Categorical(2), eps_init=1.0))


def test_a_mask_forbidding_every_action_and_a_bad_step_are_named():
    module = EGreedyModule(Categorical(3), eps_init=1.0, action_mask_key="action_mask")
    td = TensorDict({"action": torch.zeros(2, dtype=torch.int64),
                     "action_mask": torch.tensor([[True, False, False], [False, False, False]])}, batch_size=[2])
    with pytest.raises(ValueError, match="the action mask forbids every action in at least one row"):
        module(td)
    for frames in (-5, 2.7, True):
        with pytest.raises(ValueError, match=rf"EGreedyModule.step: frames={frames!r} is invalid; expected an integer >= 0"):
            module.step(frames)
    module.step(0)
    assert int(module.frames) == 0


def _record_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the device type of every tensor read back with ``Tensor.tolist`` (on CUDA, a read of
    a device tensor waits for the device)."""
    devices: list[str] = []
    original = torch.Tensor.tolist

    def tolist(self: torch.Tensor):
        devices.append(self.device.type)
        return original(self)

    monkeypatch.setattr(torch.Tensor, "tolist", tolist)
    return devices


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
def test_acting_on_a_device_reads_back_cpu_coins_only_and_draws_the_numbers_of_the_cpu_run(eps, monkeypatch):
    # The coins used to be drawn on the input's device and read back at every step (on CUDA, a wait
    # for the device). They are drawn on the CPU, from the CPU generator, whatever the device: a run
    # on a device explores with the numbers of the CPU run of its seed. A meta tensor stands in for
    # a device tensor: reading any of its values raises.
    spec = Categorical(3)

    def make(device: str) -> EGreedyPolicy:
        torch.manual_seed(0)
        actor = QValueActor(torch.nn.Linear(4, 3).to(device), spec=spec)
        return EGreedyPolicy(actor, EGreedyModule(spec, eps_init=eps, eps_end=eps))

    on_cpu, on_device = make("cpu"), make("meta")
    devices = _record_reads(monkeypatch)
    for step, n in enumerate([6, 6, 1, 6, 3]):  # (the first call runs _act, the others _index_step)
        obs = torch.randn(n, 4)
        torch.manual_seed(step)
        expected = on_cpu.act(obs)[0]
        state = torch.get_rng_state()
        torch.manual_seed(step)
        got = on_device.act(obs.to("meta"))[0]
        assert got.device.type == "meta" and got.shape == expected.shape and got.dtype == expected.dtype
        assert torch.equal(torch.get_rng_state(), state)  # the CPU run's draws, no more, no fewer
    assert devices and set(devices) == {"cpu"}


def test_masked_acting_on_a_device_reads_back_cpu_coins_only(monkeypatch):
    spec = OneHot(3)
    actor = QValueActor(torch.nn.Linear(4, 3).to("meta"), spec=spec, action_mask_key="action_mask")
    policy = EGreedyPolicy(actor, EGreedyModule(spec, eps_init=0.5, eps_end=0.5, action_mask_key="action_mask"))
    devices = _record_reads(monkeypatch)
    mask = torch.tensor([[True, False, True]] * 8, device="meta")
    greedy = torch.zeros(8, 3, dtype=torch.int64, device="meta")  # (the caller's greedy actions)
    for _ in range(3):
        action = policy.explore_around(torch.randn(8, 4, device="meta"), lambda: greedy, mask)
        assert action.device.type == "meta" and action.shape == (8, 3)
    assert devices and set(devices) == {"cpu"}


@pytest.mark.parametrize("eps", [0.3, 1.0])
def test_explore_seeds_on_a_device_draws_on_the_cpu_from_each_seeds_cpu_generator(eps, monkeypatch):
    # A multi-seed collector on CUDA explores with each seed's CPU generator (the draws of the CPU
    # run of that seed), reading back CPU coins only; meta tensors stand in for CUDA ones.
    spec = Categorical(3)
    torch.manual_seed(0)
    cpu_actor = QValueActor(torch.nn.Linear(4, 3), in_keys=["observation"], spec=spec)
    device_actor = QValueActor(torch.nn.Linear(4, 3).to("meta"), in_keys=["observation"], spec=spec)
    on_cpu = EGreedyPolicy(cpu_actor, EGreedyModule(spec, eps_init=eps, eps_end=eps))
    on_device = EGreedyPolicy(device_actor, EGreedyModule(spec, eps_init=eps, eps_end=eps))
    assert on_device.explores_seeds
    cpu_generators = [torch.Generator().manual_seed(s) for s in (11, 12)]
    generators = [torch.Generator().manual_seed(s) for s in (11, 12)]
    devices = _record_reads(monkeypatch)
    for _ in range(5):
        obs = torch.randn(2, 5, 4)
        expected = on_cpu.explore_seeds(obs, lambda obs=obs: cpu_actor.action(obs), cpu_generators)
        meta = obs.to("meta")
        got = on_device.explore_seeds(meta, lambda meta=meta: device_actor.action(meta), generators)
        for k in range(2):
            assert got[k].device.type == "meta" and got[k].shape == expected[k].shape
            assert torch.equal(generators[k].get_state(), cpu_generators[k].get_state())
    assert devices and set(devices) == {"cpu"}


def test_explore_seeds_needs_random_actions_drawn_on_the_cpu():
    actor = QValueActor(torch.nn.Linear(4, 3), in_keys=["observation"], spec=Categorical(3))
    policy = EGreedyPolicy(actor, EGreedyModule(Categorical(3, device="meta")))
    assert not policy.explores_seeds  # (its CPU generators could not draw the random actions)
    with pytest.raises(ValueError, match="explore_seeds needs index actions without an action mask, drawn on the CPU"):
        policy.explore_seeds(torch.zeros(2, 1, 4), lambda: torch.zeros(2, 1, dtype=torch.long), [torch.Generator()] * 2)
