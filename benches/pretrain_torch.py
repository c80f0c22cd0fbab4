"""PyTorch twin of the default encoder's training step, for the ratio in `cargo bench --bench pretrain`.

The same architecture, sizes and loss as benches/pretrain.rs: 64 channel tokens of 55 features,
d = 64, 2 pre-LayerNorm layers of 4-head attention biased by the covariance and a GELU MLP of 128,
position MLP, covariance pooling, class and reconstruction heads; masked reconstruction +
cross-entropy; one AdamW step (learning rate 1e-3, weight decay 0.01, candle's defaults) per
batch of 64.

Run: python benches/pretrain_torch.py [THREADS [D_MODEL D_FF]]
(needs torch; prints threads, trained parameters, steps/s, epochs/s)
"""

import math
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

# Dropout 0, as eegadapt pretrains (PretrainConfig::new): candle's CPU dropout cannot be seeded.
B, C, FEATURES, HEADS, LAYERS, DROPOUT = 64, 64, 55, 4, 2, 0.0
D = int(sys.argv[2]) if len(sys.argv) > 3 else 64
D_FF = int(sys.argv[3]) if len(sys.argv) > 3 else 128


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(D)
        self.query, self.key, self.value, self.out = (nn.Linear(D, D) for _ in range(4))
        self.cov_scale = nn.Parameter(torch.randn(HEADS) * 0.1)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x, cov):
        b, c, d = x.shape
        h = self.norm(x)
        split = lambda t: t.view(b, c, HEADS, d // HEADS).transpose(1, 2)
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        logits = q @ k.transpose(-1, -2) / math.sqrt(d // HEADS)
        logits = logits + self.cov_scale.view(1, HEADS, 1, 1) * cov.unsqueeze(1)
        mixed = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, c, d)
        return x + self.drop(self.out(mixed))


class FeedForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(D)
        self.fc1, self.fc2 = nn.Linear(D, D_FF), nn.Linear(D_FF, D)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x):
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm(x)))))


class Mlp(nn.Module):
    def __init__(self, d_in):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_in, D), nn.Linear(D, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(FEATURES, D)
        self.mask_token = nn.Parameter(torch.randn(D) * 0.02)
        self.position = Mlp(3)
        self.layers = nn.ModuleList(nn.ModuleList([Attention(), FeedForward()]) for _ in range(LAYERS))
        self.norm = nn.LayerNorm(D)
        self.covariance = Mlp(6)
        self.embedding_norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, 2)
        self.reconstruction = nn.Linear(D, FEATURES)

    def forward(self, tokens, positions, cov, mask):
        m = mask.unsqueeze(2)
        x = self.proj(tokens) * (1 - m) + m * self.mask_token
        x = x + self.position(positions * 10.0)
        for attention, feed_forward in self.layers:
            x = feed_forward(attention(x, cov))
        x = self.norm(x)
        c = positions.shape[0]
        p = positions * 10.0
        pairs = torch.cat([p.unsqueeze(1).expand(c, c, 3), p.unsqueeze(0).expand(c, c, 3)], 2)
        kernel = self.covariance(pairs.reshape(c * c, 6))
        pooled = x.mean(1) + cov.reshape(-1, c * c) @ kernel / c
        return x, self.embedding_norm(pooled)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    model = Model()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    tokens = torch.randn(B, C, FEATURES)
    positions = torch.rand(C, 3) * 0.1
    cov = torch.randn(B, C, C) * 0.1
    labels = torch.arange(B) % 2
    mask = (torch.arange(B * C).view(B, C) % 3 == 0).float()
    model.train()

    def step():
        tok, emb = model(tokens, positions, cov, mask)
        pred = model.reconstruction(tok)
        recon = (((pred - tokens) ** 2) * mask.unsqueeze(2)).sum() / (mask.sum() * FEATURES)
        loss = F.cross_entropy(model.head(emb), labels) + recon
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n = 30
    t = time.perf_counter()
    for _ in range(n):
        step()
    s = time.perf_counter() - t
    print(f"{threads} {params} {n / s:.3f} {n * B / s:.1f}")


if __name__ == "__main__":
    main()
