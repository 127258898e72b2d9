"""PyTorch reference for `npm run bench`: the benchmark's reference mini DiT on one CPU thread.

Same architecture as the kit's DiT (the official DiT models.py, adaLN-Zero): patch embed,
sin-cos positions, timestep and label embedders, N blocks of adaLN-Zero attention + MLP
(GELU tanh), final adaLN layer, unpatchify to 2C channels. Times one AdamW training step
(forward, MSE loss, backward, update) and one no-grad forward. bench/dit_step.ts times the
kit's real training step, which does more (label dropout, the hybrid loss's vb term, EMA),
so the train ratio errs against the kit. Prints one JSON object. Needs torch (Debian:
python3-torch).

  python3 bench/torch_dit.py [--depth 6 --hidden 128 --heads 4 --batch 32 --reps 5]
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q * hd ** -0.5) @ k.transpose(-2, -1)
        out = att.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), sh1, sc1))
        h = self.fc2(F.gelu(self.fc1(modulate(self.norm2(x), sh2, sc2)), approximate="tanh"))
        return x + g2.unsqueeze(1) * h


def sincos_2d(dim, grid):
    def one(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2))
        out = pos.reshape(-1, 1).double() * omega
        return torch.cat([out.sin(), out.cos()], dim=1)

    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([one(dim // 2, xs), one(dim // 2, ys)], dim=1).float()


class DiT(nn.Module):
    def __init__(self, input_size=16, patch=2, in_ch=4, dim=128, depth=6, heads=4, num_classes=10):
        super().__init__()
        self.patch, self.in_ch, self.out_ch = patch, in_ch, 2 * in_ch
        self.x_embed = nn.Conv2d(in_ch, dim, patch, stride=patch)
        self.register_buffer("pos", sincos_2d(dim, input_size // patch).unsqueeze(0))
        self.t_mlp = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.y_table = nn.Embedding(num_classes + 1, dim)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.final = nn.Linear(dim, patch * patch * self.out_ch)
        for b in self.blocks:  # adaLN-Zero
            nn.init.zeros_(b.ada[-1].weight)
            nn.init.zeros_(b.ada[-1].bias)
        for m in (self.final_ada[-1], self.final):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x, t, y):
        n = x.shape[0]
        h = self.x_embed(x).flatten(2).transpose(1, 2) + self.pos
        half = 128
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        c = self.t_mlp(torch.cat([args.cos(), args.sin()], dim=1)) + self.y_table(y)
        for b in self.blocks:
            h = b(h, c)
        shift, scale = self.final_ada(c).chunk(2, dim=1)
        h = self.final(modulate(self.norm_final(h), shift, scale))
        g, p = int(h.shape[1] ** 0.5), self.patch
        h = h.reshape(n, g, g, p, p, self.out_ch).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(n, self.out_ch, g * p, g * p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = DiT(dim=a.hidden, depth=a.depth, heads=a.heads)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    x = torch.randn(a.batch, 4, 16, 16)
    target = torch.randn(a.batch, 8, 16, 16)
    t = torch.arange(a.batch) * 37 % 1000
    y = torch.arange(a.batch) % 10

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.mse_loss(model(x, t, y), target).backward()
        opt.step()

    def forward():
        with torch.no_grad():
            model(x, t, y)

    def timed(f):
        """Median wall and process-CPU seconds per call."""
        for _ in range(a.warmup):
            f()
        wall, cpu = [], []
        for _ in range(a.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return statistics.median(wall), statistics.median(cpu)

    train, train_cpu = timed(train_step)
    fwd, fwd_cpu = timed(forward)
    print(json.dumps({
        "torch_version": torch.__version__, "threads": torch.get_num_threads(),
        "torch_train_step_s": train, "torch_forward_s": fwd,
        "torch_train_step_cpu_s": train_cpu, "torch_forward_cpu_s": fwd_cpu,
    }))


if __name__ == "__main__":
    main()
