"""Frame replay at Atari scale: fill a replay buffer of N transitions of 4 stacked 84x84 uint8 frames
(:class:`rlkit.data.frames.FrameStorage`, each frame stored once), then sample batches of 32.

Prints the peak resident memory (the frames alone take N x 84 x 84 bytes, 7.06 GB for a million),
the fill rate and the sampling rate (batches/s, stacks and next stacks rebuilt), next to the update
rate sampling has to feed (DQN on Atari does one update of 32 per 4 env steps: measured here for
the Nature CNN with ``--measure-update``).

With ``--device cuda`` the buffer lives on the GPU (what ``device=cuda`` training does: the replay
is on the run's device), the update is timed there, and ``--host-copy`` also times the alternative:
the same buffer in host memory with each sampled batch copied to the GPU.

Usage: python scripts/bench_frames.py [--transitions 1000000] [--episode 1000] [--seconds 10]
                                      [--measure-update] [--device cpu|cuda] [--host-copy]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

import torch
from tensordict import TensorDict

from rlkit import keys
from rlkit.data import ReplayBuffer
from rlkit.data.frames import FrameStorage
from rlkit.utils.devices import device_problem
from rlkit.script_args import interruptible, positive_float, positive_int

STACK, SIZE = 4, 84


def peak_rss_gib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def fill(buffer: ReplayBuffer, transitions: int, episode: int, batch: int) -> float:
    """Writes ``transitions`` steps of one env (episodes of ``episode`` steps) in batches; seconds taken."""
    generator = torch.Generator().manual_seed(0)
    stack = torch.randint(0, 256, (STACK, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    traj, t = 0, 0
    start = time.perf_counter()
    written = 0
    while written < transitions:
        n = min(batch, transitions - written)
        obs, nxt, dones, trajs, steps = [], [], [], [], []
        for _ in range(n):
            frame = torch.randint(0, 256, (1, SIZE, SIZE), dtype=torch.uint8, generator=generator)
            following = torch.cat([stack[1:], frame])
            done = t == episode - 1
            obs.append(stack)
            nxt.append(following)
            dones.append(done)
            trajs.append(traj)
            steps.append(t)
            if done:
                traj, t = traj + 1, 0
                stack = following[-1:].expand(STACK, SIZE, SIZE).clone()
            else:
                stack, t = following, t + 1
        buffer.extend(TensorDict({
            keys.OBSERVATION: torch.stack(obs), keys.ACTION: torch.zeros(n, dtype=torch.int64),
            keys.TRAJ_ID: torch.tensor(trajs), keys.STEP_COUNT: torch.tensor(steps),
            keys.NEXT: {keys.OBSERVATION: torch.stack(nxt), keys.REWARD: torch.zeros(n, 1),
                        keys.DONE: torch.tensor(dones)[:, None], keys.TERMINATED: torch.tensor(dones)[:, None]},
        }, batch_size=[n]))
        written += n
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sample_rate(buffer: ReplayBuffer, seconds: float, batch_size: int = 32, to: torch.device | None = None) -> float:
    """Batches of ``batch_size`` sampled per second (stacks rebuilt); with ``to``, each batch is then
    copied there (a host buffer feeding a GPU)."""
    device = to or buffer.storage.device or torch.device("cpu")
    buffer.sample(batch_size)
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = buffer.sample(batch_size)
        if to is not None:
            batch.to(to)
        count += 1
    _sync(device)
    return count / (time.perf_counter() - start)


def update_rate(seconds: float = 10.0, device: torch.device = torch.device("cpu")) -> float:
    """DQN updates per second of the Nature CNN on batches of 32 (forward, target forward, backward, Adam)."""
    from rlkit.modules import NatureCNN

    net, target = NatureCNN((STACK, SIZE, SIZE), 4).to(device), NatureCNN((STACK, SIZE, SIZE), 4).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    obs = torch.randint(0, 256, (32, STACK, SIZE, SIZE), dtype=torch.uint8, device=device)
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        with torch.no_grad():
            y = target(obs).max(-1).values
        loss = torch.nn.functional.mse_loss(net(obs).max(-1).values, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        count += 1
    _sync(device)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transitions", type=positive_int, default=1_000_000)
    parser.add_argument("--episode", type=positive_int, default=1000, help="steps per episode (its start and end are links)")
    parser.add_argument("--batch", type=positive_int, default=4, help="transitions per extend (DQN on Atari: 4)")
    parser.add_argument("--seconds", type=positive_float, default=10.0)
    parser.add_argument("--measure-update", action="store_true")
    parser.add_argument("--device", default="cpu", help="where the buffer lives and the update runs (cpu, cuda)")
    parser.add_argument("--host-copy", action="store_true",
                        help="with --device cuda: also time a host buffer whose batches are copied to the device")
    args = parser.parse_args()
    problem = device_problem(args.device)
    if problem is not None:
        parser.error(f"--device {args.device}: {problem}")
    torch.set_num_threads(1)
    device = torch.device(args.device)
    buffer = _buffer(args.transitions, device)
    before = peak_rss_gib()
    seconds = fill(buffer, args.transitions, args.episode, args.batch)
    _sync(device)
    frames_gib = args.transitions * SIZE * SIZE / 2**30
    naive_gib = 2 * STACK * frames_gib
    rate = sample_rate(buffer, args.seconds)
    where = "on this CPU (1 thread)" if device.type == "cpu" else f"on {device} ({torch.cuda.get_device_name(device)})"
    print(f"transitions {len(buffer):,} of {STACK} x {SIZE}x{SIZE} uint8 frames, episodes of {args.episode} steps, "
          f"buffer {where}")
    print(f"fill: {seconds:.1f} s ({len(buffer) / seconds:,.0f} transitions/s, {args.batch} per extend)")
    print(f"peak RSS: {peak_rss_gib():.2f} GiB (before the buffer: {before:.2f} GiB); the frames alone: "
          f"{frames_gib:.2f} GiB = {frames_gib * 2**30 / 1e9:.2f} GB; both stacks stored whole: {naive_gib:.1f} GiB")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    print(f"sampling: {rate:,.0f} batches of 32 per second ({rate * 32:,.0f} transitions/s)")
    if args.host_copy and device.type != "cpu":
        del buffer
        host = _buffer(args.transitions, torch.device("cpu"))
        fill(host, args.transitions, args.episode, args.batch)
        copied = sample_rate(host, args.seconds, to=device)
        print(f"host buffer, each batch copied to {device}: {copied:,.0f} batches of 32 per second")
    if args.measure_update:
        updates = update_rate(args.seconds, device=device)
        print(f"Nature CNN DQN updates {where}: {updates:.1f}/s; sampling is {rate / updates:.1f}x that")


def _buffer(transitions: int, device: torch.device) -> ReplayBuffer:
    keep = [keys.ACTION, keys.TRAJ_ID, keys.STEP_COUNT, keys.next_(keys.REWARD), keys.next_(keys.DONE),
            keys.next_(keys.TERMINATED)]
    storage = FrameStorage(transitions, stack=STACK, frame_shape=(SIZE, SIZE), keys=keep, device=device)
    return ReplayBuffer(transitions, storage=storage, device=device,
                        generator=torch.Generator(device=device).manual_seed(1))


if __name__ == "__main__":
    sys.exit(interruptible(main, "bench_frames.py"))
