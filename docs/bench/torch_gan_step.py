#!/usr/bin/env python3
"""PyTorch version of host-trainer's default training step, for a throughput ratio.

The figure it prints is comparable to `host-trainer bench`: images per second through one
discriminator update and one generator update, the median over timed windows after three
warm-up steps, on batches of the real MNIST test set taken in order.

What one step does (host-trainer's `Trainer::step` with its default `TrainConfig`):

- Generator (generator-core's `Arch::DEFAULT`, widths 16, 16, 8): z (32, standard normal)
  concatenated with the one-hot label (10) -> linear 42 -> 16*7*7 without bias, batch norm,
  ReLU -> nearest 2x upsample, conv3x3 16->16 without bias, batch norm, ReLU -> nearest 2x
  upsample, conv3x3 16->8 without bias, batch norm, ReLU -> conv3x3 8->1 with bias, tanh.
- Projection discriminator (widths 16, 32): conv4x4 stride 2 padding 1, 1->16, LeakyReLU
  0.2 -> conv4x4/2 16->32, LeakyReLU 0.2 -> flatten (32*7*7) -> score = linear(h) +
  <embed(label), h>. The class logits are <embed(c), h> for every class c.
- Discriminator update: hinge loss on the real batch and on the detached fakes, plus 0.02
  times the cross-entropy of the real digits' class logits against their labels.
- Generator update on the same fakes (one generator forward per step): minus the mean
  score of the updated discriminator, plus 0.02 times the cross-entropy of the fakes' class
  logits against their labels. The discriminator's parameters are constants here, so only
  the input gradient flows through it (host-trainer runs it with `no_grad` parameters).
- Adam for both nets: lr 4e-4, betas (0.5, 0.999), epsilon 1e-5 (Burn's default).
- Exponential moving average (decay 0.999) of every float tensor of the generator,
  batch-norm running statistics included.

Usage (torch is not a dependency of the project; install it in a virtual environment):

    python3 docs/bench/torch_gan_step.py --threads 2
    python3 docs/bench/torch_gan_step.py --threads 1 --batch 64 --windows 5 --steps 10

Run it in turn with `host-trainer bench --threads N` and take the ratio pair by pair.
"""

import argparse
import gzip
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

Z_DIM = 32
CLASSES = 10
SIDE = 28
BASE = 7  # side of the linear layer's map: 28 / 4

REPO = Path(__file__).resolve().parents[2]


def read_idx(path: Path):
    """An MNIST IDX file of unsigned bytes (gzip or raw): its shape and its values."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    values = raw[4 + 4 * dims :]
    count = 1
    for d in shape:
        count *= d
    if len(values) != count:
        raise ValueError(f"{path}: {len(values)} values, header says {shape}")
    return shape, values


def find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{folder / stem}(.gz) not found")


def mnist_test(folder: Path):
    """The 10k test images as float32 in [-1, 1] (`p / 127.5 - 1`) and their labels."""
    shape, pixels = read_idx(find(folder, "t10k-images-idx3-ubyte"))
    _, classes = read_idx(find(folder, "t10k-labels-idx1-ubyte"))
    x = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).float() / 127.5 - 1.0
    y = torch.frombuffer(bytearray(classes), dtype=torch.uint8).long()
    return x.reshape(shape[0], 1, SIDE, SIDE), y


class Generator(nn.Module):
    def __init__(self, c0=16, c1=16, c2=8):
        super().__init__()
        self.c0 = c0
        self.fc = nn.Linear(Z_DIM + CLASSES, c0 * BASE * BASE, bias=False)
        self.bn0 = nn.BatchNorm2d(c0)
        self.conv1 = nn.Conv2d(c0, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.conv3 = nn.Conv2d(c2, 1, 3, padding=1, bias=True)

    def forward(self, z, onehot):
        x = self.fc(torch.cat([z, onehot], dim=1))  # [b, c0 * 49]
        x = F.relu(self.bn0(x.view(-1, self.c0, BASE, BASE)))  # [b, c0, 7, 7]
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.relu(self.bn1(self.conv1(x)))  # [b, c1, 14, 14]
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.relu(self.bn2(self.conv2(x)))  # [b, c2, 28, 28]
        return torch.tanh(self.conv3(x))  # [b, 1, 28, 28]


class Discriminator(nn.Module):
    def __init__(self, c1=16, c2=32):
        super().__init__()
        features = c2 * BASE * BASE
        self.conv1 = nn.Conv2d(1, c1, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 4, stride=2, padding=1)
        self.out = nn.Linear(features, 1)
        self.embed = nn.Embedding(CLASSES, features)
        nn.init.normal_(self.embed.weight, mean=0.0, std=0.02)

    def forward(self, x, labels):
        """Scores `[b]` and class logits `[b, 10]`."""
        h = F.leaky_relu(self.conv1(x), 0.2)  # [b, c1, 14, 14]
        h = F.leaky_relu(self.conv2(h), 0.2).flatten(1)  # [b, c2 * 49]
        projection = (self.embed(labels) * h).sum(dim=1)  # [b]
        score = self.out(h).squeeze(1) + projection
        logits = h @ self.embed.weight.t()
        return score, logits


class Step:
    """Models, optimisers and the EMA generator; `__call__` is one training step."""

    def __init__(self, a):
        torch.manual_seed(a.seed)
        self.a = a
        self.g = Generator(*a.g_widths)
        self.d = Discriminator(*a.d_widths)
        self.ema = Generator(*a.g_widths)
        self.ema.load_state_dict(self.g.state_dict())
        self.ema.requires_grad_(False)
        adam = dict(lr=a.lr, betas=(0.5, 0.999), eps=1e-5)
        self.opt_g = torch.optim.Adam(self.g.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.d.parameters(), **adam)
        # Pairs of float tensors (parameters and batch-norm running statistics).
        self.ema_pairs = [
            (e, s)
            for e, s in zip(self.ema.state_dict().values(), self.g.state_dict().values())
            if e.dtype.is_floating_point
        ]

    def __call__(self, real, labels):
        a = self.a
        onehot = F.one_hot(labels, CLASSES).float()
        fake = self.g(torch.randn(labels.shape[0], Z_DIM), onehot)

        # Discriminator: hinge on real and detached fakes, class loss on real digits.
        real_score, real_logits = self.d(real, labels)
        fake_score, _ = self.d(fake.detach(), labels)
        d_loss = F.relu(1.0 - real_score).mean() + F.relu(1.0 + fake_score).mean()
        if a.aux_weight > 0:
            d_loss = d_loss + a.aux_weight * F.cross_entropy(real_logits, labels)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        # Generator: the updated discriminator scores the same fakes.
        if not a.d_grads_in_g_step:
            self.d.requires_grad_(False)
        score, logits = self.d(fake, labels)
        g_loss = -score.mean()
        if a.aux_weight > 0:
            g_loss = g_loss + a.aux_weight * F.cross_entropy(logits, labels)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)

        with torch.no_grad():
            for e, s in self.ema_pairs:
                e.mul_(a.ema).add_(s, alpha=1.0 - a.ema)
        return d_loss.item(), g_loss.item()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="intra-op threads (default: all cores, as host-trainer)")
    p.add_argument("--batch", type=int, default=64, help="images per step")
    p.add_argument("--windows", type=int, default=5, help="timed windows")
    p.add_argument("--steps", type=int, default=10, help="steps per window")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--d-widths", type=int, nargs=2, default=[16, 32])
    p.add_argument("--g-widths", type=int, nargs=3, default=[16, 16, 8])
    p.add_argument("--lr", type=float, default=4e-4, help="Adam learning rate of both nets")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay")
    p.add_argument("--aux-weight", type=float, default=0.02,
                   help="weight of the auxiliary class loss (0 = hinge only)")
    p.add_argument("--d-grads-in-g-step", action="store_true",
                   help="also compute D's weight gradients in the G step (PyTorch's "
                        "behaviour unless D is frozen; host-trainer does not)")
    p.add_argument("--data", type=Path, default=REPO / "data" / "mnist",
                   help="folder with t10k-images-idx3-ubyte(.gz) and its labels")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.batch < 1 or a.windows < 1 or a.steps < 1 or a.threads < 1:
        p.error("--batch, --windows, --steps and --threads must be at least 1")

    torch.set_num_threads(a.threads)
    images, labels = mnist_test(a.data)
    step = Step(a)
    n = images.shape[0]
    k = 0

    def one():
        nonlocal k
        idx = (torch.arange(a.batch) + k * a.batch) % n
        k += 1
        step(images[idx], labels[idx])

    for _ in range(a.warmup):
        one()
    rates = []
    for _ in range(a.windows):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            one()
        rates.append(a.steps * a.batch / (time.perf_counter() - t0))
    rates.sort()
    print(
        f"backend pytorch {torch.__version__}, batch {a.batch}, "
        f"D widths [{a.d_widths[0]}, {a.d_widths[1]}], threads {torch.get_num_threads()}: "
        f"median {rates[len(rates) // 2]:.0f} images/s "
        f"(min {rates[0]:.0f}, max {rates[-1]:.0f}, {a.windows} windows of {a.steps} steps)"
    )


if __name__ == "__main__":
    main()
