"""Cross-check bench/truth.py with PyTorch's own counters on the PyTorch twins.

Runs in the peers' environment; prints one JSON object, name -> {"params", "macs"}:

- params: `sum(p.numel() for p in model.parameters())` (PyTorch de-duplicates tied and
  shared parameters, and BatchNorm running statistics are buffers, not parameters);
- macs: `torch.utils.flop_counter.FlopCounterMode` over one forward pass in train mode,
  FLOPs / 2 (it counts a multiply-accumulate as two FLOPs).

The forward pass runs on the `meta` device: shapes only, no memory, so the
Llama-2-7B twin is checked at full size in well under a second. That is also why
its attention counts. On the CPU, `F.scaled_dot_product_attention` dispatches to the
fused kernel `aten._scaled_dot_product_flash_attention_for_cpu`, for which torch 2.13's
FlopCounterMode has no formula (it knows the CUDA flash/efficient/cudnn kernels only),
so it silently drops both attention products: on the CPU it reports 16,848,500,736
MACs for ViT-B/16 and 402,653,184 for the encoder, short of the truth by exactly
their Q·Kᵀ and A·V terms (truth.py prints them). On `meta` SDPA takes the math path
(two batched matmuls), which it does count, and then it agrees with every truth value.

Train mode is used because in eval mode, under no_grad, nn.MultiheadAttention and
nn.TransformerEncoderLayer may take fused inference kernels that FlopCounterMode
does not count either.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_models  # noqa: E402


def count(name: str) -> dict:
    factory, shape, dtype = torch_models.MODELS[name]
    with torch.device("meta"):
        model = factory()
        x = torch.zeros(shape, dtype=dtype)
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(x)
    return {"params": sum(p.numel() for p in model.parameters()),
            "macs": counter.get_total_flops() // 2}


if __name__ == "__main__":
    print(json.dumps({name: count(name) for name in torch_models.MODELS}))
