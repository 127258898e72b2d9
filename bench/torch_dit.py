"""PyTorch reference for `npm run bench`: the benchmark's DiT configs doing the kit's training step.

Same architecture as the kit's DiT (the official DiT models.py, adaLN-Zero): patch embed,
sin-cos positions, timestep and label embedders, N blocks of adaLN-Zero attention + MLP
(GELU tanh), final adaLN layer, unpatchify to 2C channels (learned sigma).

One training step does what the kit's trainStep (lib/train/trainer.ts) does: the batch in
epoch order, horizontal flips (p = 0.5), label dropout to the null class (p = 0.1),
uniform timesteps, q_sample, the learned-sigma hybrid loss of ADM/DiT gaussian_diffusion
training_losses (MSE on eps + the vb term on [eps.detach(), v], LEARNED_RANGE variance,
linear schedule over 1000 steps), backward, AdamW (lr 1e-4, no weight decay), the DiT EMA
update (decay 0.9999), and the loss terms read back. The forward is one no-grad pass.

Run it with OPENBLAS_NUM_THREADS=1 (bench/index.ts does): torch.set_num_threads does not
limit Debian's OpenBLAS. Modes:
  python3 bench/torch_dit.py [--depth 6 --hidden 128 --heads 4 --batch 32 --input-size 16 --patch 2]
      warm-up, then repeats; prints one JSON object.
  ... --serve   the bench's interleaved mode: prints {"ready": ...} with the BLAS actually
      used, then answers one JSON line per request line: {"op": "train"|"forward", "steps": k}
      -> per-step seconds of k consecutive steps; {"op": "sgemm", "n": 1024, "calls": k}.
Needs torch (Debian: python3-torch) and numpy.
"""
import argparse
import json
import math
import re
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from blas_info import blas_info, env_threads


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
        self.y_table = nn.Embedding(num_classes + 1, dim)  # + the null class of label dropout
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


# ---- ADM / DiT gaussian_diffusion.py, the training path ------------------------------------


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + ((mean1 - mean2) ** 2) * torch.exp(-logvar2))


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered_x + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_stdv * (centered_x - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))))


def mean_flat(x):
    return x.mean(dim=list(range(1, x.ndim)))


class Diffusion:
    """GaussianDiffusion(linear betas, EPSILON, LEARNED_RANGE, MSE): constants in float64, gathered as float32."""

    def __init__(self, steps=1000):
        scale = 1000 / steps
        betas = np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)
        alphas = 1.0 - betas
        ac = np.cumprod(alphas)
        ac_prev = np.append(1.0, ac[:-1])
        post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
        self.num_timesteps = steps
        f = lambda a: torch.from_numpy(a)  # noqa: E731
        self.sqrt_ac = f(np.sqrt(ac))
        self.sqrt_1m_ac = f(np.sqrt(1.0 - ac))
        self.sqrt_recip_ac = f(np.sqrt(1.0 / ac))
        self.sqrt_recipm1_ac = f(np.sqrt(1.0 / ac - 1))
        self.log_betas = f(np.log(betas))
        self.post_log_var_clipped = f(np.log(np.append(post_var[1], post_var[1:])))
        self.post_coef1 = f(betas * np.sqrt(ac_prev) / (1.0 - ac))
        self.post_coef2 = f((1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac))

    @staticmethod
    def ex(arr, t):
        return arr[t].float()[:, None, None, None]

    def training_losses(self, model, x0, t, y, noise):
        ex = self.ex
        xt = ex(self.sqrt_ac, t) * x0 + ex(self.sqrt_1m_ac, t) * noise
        out = model(xt, t, y)
        C = x0.shape[1]
        eps, v = torch.split(out, C, dim=1)
        # The vb term trains only the variance: the mean part is detached (stop-gradient).
        frozen_eps = eps.detach()
        true_mean = ex(self.post_coef1, t) * x0 + ex(self.post_coef2, t) * xt
        true_log_var = ex(self.post_log_var_clipped, t)
        frac = (v + 1) / 2
        model_log_var = frac * ex(self.log_betas, t) + (1 - frac) * ex(self.post_log_var_clipped, t)
        pred_x0 = ex(self.sqrt_recip_ac, t) * xt - ex(self.sqrt_recipm1_ac, t) * frozen_eps  # clip_denoised=False
        model_mean = ex(self.post_coef1, t) * pred_x0 + ex(self.post_coef2, t) * xt
        kl = mean_flat(normal_kl(true_mean, true_log_var, model_mean, model_log_var)) / math.log(2.0)
        nll = -mean_flat(discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var)) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        mse = mean_flat((noise - eps) ** 2)
        return (mse + vb).mean(), mse.mean(), vb.mean()


@torch.no_grad()
def update_ema(ema_model, model, decay=0.9999):
    """DiT train.py update_ema."""
    ema = dict(ema_model.named_parameters())
    for name, p in model.named_parameters():
        ema[name].mul_(decay).add_(p.data, alpha=1 - decay)


class Bench:
    def __init__(self, a):
        torch.manual_seed(0)
        self.num_classes = 10
        self.model = DiT(input_size=a.input_size, patch=a.patch, dim=a.hidden, depth=a.depth, heads=a.heads, num_classes=self.num_classes)
        self.ema = DiT(input_size=a.input_size, patch=a.patch, dim=a.hidden, depth=a.depth, heads=a.heads, num_classes=self.num_classes)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0)
        self.diffusion = Diffusion(1000)
        B, I = a.batch, a.input_size
        # The kit's bench source: B random samples, labels i % 10; one epoch is one batch.
        self.data = torch.randn(B, 4, I, I)
        self.labels = torch.arange(B) % self.num_classes
        self.batch = B
        self.x = torch.randn(B, 4, I, I)
        self.t = torch.arange(B) * 37 % 1000
        self.y = torch.arange(B) % self.num_classes

    def train_step(self):
        B = self.batch
        idx = torch.randperm(B)
        x, y = self.data[idx], self.labels[idx]
        flip = torch.rand(B) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        y = torch.where(torch.rand(B) < 0.1, torch.full_like(y, self.num_classes), y)
        t = torch.randint(0, self.diffusion.num_timesteps, (B,))
        noise = torch.randn_like(x)
        loss, mse, vb = self.diffusion.training_losses(self.model, x, t, y, noise)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        update_ema(self.ema, self.model)
        return loss.item(), mse.item(), vb.item()

    def forward(self):
        with torch.no_grad():
            self.model(self.x, self.t, self.y)


def per_call(f, calls):
    """Mean wall and process-CPU seconds per call over `calls` consecutive calls."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        f()
    return {"wall_s": (time.perf_counter() - t0) / calls, "cpu_s": (time.process_time() - c0) / calls}


def sgemm(n, calls):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return per_call(lambda: a @ b, calls)


def describe():
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    return {
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_blas_info": m.group(1) if m else "unknown",
        "blas": blas_info(),
        "env": env_threads(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=16)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="consecutive steps per repeat")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    bench = Bench(a)
    ops = {"train": bench.train_step, "forward": bench.forward}
    if a.serve:
        print(json.dumps({"ready": True, **describe()}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            try:
                if cmd["op"] == "quit":
                    break
                if cmd["op"] == "sgemm":
                    out = sgemm(int(cmd.get("n", 1024)), int(cmd.get("calls", 5)))
                else:
                    out = per_call(ops[cmd["op"]], int(cmd.get("steps", 1)))
            except Exception as err:  # reported to the bench, which stops with it
                out = {"error": f"{type(err).__name__}: {err}"}
            print(json.dumps(out), flush=True)
        return
    result = describe()
    for name, f in ops.items():
        per_call(f, a.warmup)
        reps = [per_call(f, a.steps) for _ in range(a.reps)]
        for k in ("wall_s", "cpu_s"):
            result[f"torch_{name}_{k}"] = statistics.median(r[k] for r in reps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
