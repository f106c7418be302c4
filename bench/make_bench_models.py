#!/usr/bin/python3
"""Full-size archives and inputs for the model benchmark (bench/run_model_bench.sh), made with
Debian's PyTorch 1.13 (random weights, fixed seed, eval mode, torch.jit.trace).

    /usr/bin/python3 bench/make_bench_models.py OUT_DIR

Writes, for each model, OUT_DIR/NAME.pt and OUT_DIR/NAME.input.npy (one batch); existing archives are
kept. Models: torchvision resnet18 and mobilenet_v2 at batch 8 (3x224x224), vit_b_16 at batch 2, and
`gpt`: a GPT-style decoder (6 layers, width 512, 8 heads, 128 tokens, vocabulary 8192, tied LM head)
built from the conformance fixture's GPT blocks (tests/fixtures/make_fixtures.py), at batch 8.
"""
import os
import sys
import zlib

import numpy as np
import torch
import torchvision
from torch import Tensor, nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
from make_fixtures import CausalSelfAttention, GPTBlock  # noqa: E402


# The conformance fixture's GPT blocks (exact GELU). TorchScript names a class after its module: they
# keep the names they had when this script defined them (__torch__.GPTBlock, not
# __torch__.make_fixtures.GPTBlock), so the traced archive is the same.
for _cls in (CausalSelfAttention, GPTBlock):
    _cls.__module__ = __name__


class GPT(nn.Module):
    def __init__(self, vocab: int = 8192, block_size: int = 128, width: int = 512, heads: int = 8,
                 layers: int = 6):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, width)
        self.pos_emb = nn.Parameter(torch.randn(1, block_size, width) * 0.02)
        self.blocks = nn.Sequential(*[GPTBlock(width, heads, "none") for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.tok_emb.weight  # tied

    def forward(self, idx: Tensor) -> Tensor:
        t = idx.size(1)
        x = self.tok_emb(idx) + self.pos_emb[:, :t, :]
        x = self.blocks(x)
        return self.head(self.ln_f(x))


# name -> (constructor, example input for one batch)
def models(gen: torch.Generator):
    img = lambda b: torch.randn(b, 3, 224, 224, generator=gen)
    return {
        "resnet18": (lambda: torchvision.models.resnet18(weights=None), lambda: img(8)),
        "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None), lambda: img(8)),
        "vit_b_16": (lambda: torchvision.models.vit_b_16(weights=None), lambda: img(2)),
        "gpt": (GPT, lambda: torch.randint(0, 8192, (8, 128), generator=gen, dtype=torch.int64)),
    }


def randomize_batch_norm(model: nn.Module, gen: torch.Generator) -> None:
    """Fresh batch-norm statistics are mean 0, var 1, weight 1, bias 0: folding them is trivial. Give
    them values so the folded convolution is checked."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def fill_constant_parameters(model: nn.Module, gen: torch.Generator) -> None:
    """Constructors leave some parameters constant (vit_b_16's classifier head is all zeros, layer-norm
    weights ones, biases zeros): a zero head would make every output 0 and the benchmark's comparison
    with PyTorch vacuous. Add noise to every constant float parameter."""
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point() and p.numel() >= 2 and float(p.std()) == 0.0:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def main() -> None:
    out = sys.argv[1]
    only = sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name, (make, example) in models(torch.Generator().manual_seed(1)).items():
        if only and name not in only:
            continue
        pt, inp = os.path.join(out, f"{name}.pt"), os.path.join(out, f"{name}.input.npy")
        if os.path.exists(pt) and os.path.exists(inp):
            continue
        gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        x = example()
        model = make().eval()
        randomize_batch_norm(model, gen)
        fill_constant_parameters(model, gen)
        with torch.no_grad():
            traced = torch.jit.trace(model, (x,))
        traced.save(pt + ".tmp")
        os.replace(pt + ".tmp", pt)
        np.save(inp + ".tmp.npy", x.numpy())
        os.replace(inp + ".tmp.npy", inp)
        print(f"made {pt} ({os.path.getsize(pt) / 2**20:.1f} MiB), input {list(x.shape)} {x.dtype}",
              flush=True)


if __name__ == "__main__":
    main()
