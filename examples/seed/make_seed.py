"""Makes the seed example exactly as the note in shared/seed writes it: a traced `TestScript` whose
scripted `my_abs` branches on `x.sum() > 0`, saved as jit.pt and loadable without its class.
Also writes inputs whose micro-batches (batch_size 3) take both branches, and PyTorch's own outputs
per micro-batch in expected_0.npy. Run with Debian's PyTorch: /usr/bin/python3 make_seed.py"""
import os

import numpy as np
import torch
from torch import nn


class TestScript(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.relu = torch.nn.ReLU()

    @torch.jit.script
    def my_abs(x):
        if x.sum() > 0:
            return x
        else:
            return -x

    def forward(self, x, h):
        x = self.my_abs(x)
        x = self.linear(x)
        x = x + h
        x = self.relu(x)
        return x


here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
model = TestScript()
traced_model = torch.jit.trace(model, (torch.rand(3, 4), torch.rand(3, 2)))
traced_model.save(os.path.join(here, "jit.pt"))

x = torch.randn(12, 4)
x[3:6] = -x[3:6].abs()  # micro-batch 1 sums below zero: the `else` branch
x[0:3] = x[0:3].abs()   # micro-batch 0 sums above zero: the `if` branch
h = torch.randn(12, 2)
np.save(os.path.join(here, "x.npy"), x.numpy())
np.save(os.path.join(here, "h.npy"), h.numpy())
loaded = torch.jit.load(os.path.join(here, "jit.pt"))
outs = [loaded(x[i:i + 3], h[i:i + 3]) for i in range(0, 12, 3)]
np.save(os.path.join(here, "expected_0.npy"), torch.cat(outs).detach().numpy())
for i in range(0, 12, 3):
    print("micro-batch", i // 3, "takes the", "if" if x[i:i + 3].sum() > 0 else "else", "branch")
