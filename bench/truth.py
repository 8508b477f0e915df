"""The benchmark's ground truth: parameters and MACs of every architecture, by formula.

Plain arithmetic on the architectures' hyper-parameters, with no framework imported,
so every value can be checked by hand. `python bench/truth.py` prints them.

Conventions (the same for every tool and every row):

- **Params** are the learnable parameters, each distinct tensor counted once: a tied
  weight or a module registered under two names counts once. BatchNorm running
  statistics are buffers, not parameters (torchvision's documented 25,557,032 for
  ResNet-50). A 4-bit quantized weight counts its logical (unpacked) elements, i.e.
  the count of the model it was quantized from; its scales and zero-point biases are
  quantization metadata and are not counted.
- **MACs** are the multiply-accumulates of the forward pass at the stated input:
  every matrix product and convolution, including the two attention products
  (Q·Kᵀ and A·V) and the language-model head. A Linear/Conv bias add, norms,
  activations, softmax, pooling and residual adds are elementwise work, not MACs.
  Attention is counted dense (L × S scores), also when causal: the kernels compute
  the full score matrix and mask it.
- MACs of a module called twice count twice (it runs twice).

`bench/crosscheck.py` checks every value against PyTorch's `FlopCounterMode`
(train mode, FLOPs / 2) and `sum(p.numel() for p in model.parameters())` on the
PyTorch twins (bench/torch_models.py): they agree on every model. They agree only on
the `meta` device; on the CPU FlopCounterMode drops the two attention products (no
formula for the fused CPU attention kernel): its docstring has the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Truth:
    params: int
    macs: int
    input: str
    terms: dict[str, int] = field(default_factory=dict)  # MACs broken down, for auditing


def linear_params(d_in: int, d_out: int, bias: bool = True) -> int:
    return d_in * d_out + (d_out if bias else 0)


def norm_params(d: int, bias: bool = True) -> int:
    """LayerNorm (weight + bias), RMSNorm (weight only), BatchNorm (weight + bias)."""
    return 2 * d if bias else d


def conv_macs(h_out: int, w_out: int, c_out: int, k: int, c_in: int) -> int:
    """Each output element is a k x k x c_in dot product."""
    return h_out * w_out * c_out * k * k * c_in


# --------------------------------------------------------------------------- ResNet-50


def resnet50(image: int = 224, num_classes: int = 1000) -> Truth:
    """ResNet-50 v1.5 (stride on the 3x3 conv), input (1, 3, image, image)."""
    params, terms = 0, {}
    # Stem: conv 7x7/2 (3 -> 64, no bias), BN, ReLU, maxpool 3x3/2.
    h = image // 2                                         # 112
    params += 7 * 7 * 3 * 64 + norm_params(64)
    terms["stem conv 7x7"] = conv_macs(h, h, 64, 7, 3)
    h //= 2                                                # 56 after maxpool
    cin = 64
    for stage, (c, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
        stage_macs = 0
        for b in range(blocks):
            s = stride if b == 0 else 1
            h_out = h // s
            # conv1 1x1 (cin -> c) at the input resolution, conv2 3x3/s (c -> c),
            # conv3 1x1 (c -> 4c); a BN (weight + bias) after each.
            params += cin * c + 9 * c * c + c * 4 * c + norm_params(c) * 2 + norm_params(4 * c)
            stage_macs += conv_macs(h, h, c, 1, cin) + conv_macs(h_out, h_out, c, 3, c) \
                + conv_macs(h_out, h_out, 4 * c, 1, c)
            if b == 0:  # projection shortcut: conv 1x1/s (cin -> 4c) + BN
                params += cin * 4 * c + norm_params(4 * c)
                stage_macs += conv_macs(h_out, h_out, 4 * c, 1, cin)
            cin, h = 4 * c, h_out
        terms[f"layer{stage}"] = stage_macs
    # Global average pool (no MACs), then fc 2048 -> classes.
    params += linear_params(cin, num_classes)
    terms["fc"] = cin * num_classes
    return Truth(params, sum(terms.values()), f"(1, 3, {image}, {image})", terms)


# --------------------------------------------------------------------------- ViT-B/16


def vit_b_16(image: int = 224, patch: int = 16, d: int = 768, depth: int = 12, heads: int = 12,
             mlp: int = 3072, num_classes: int = 1000) -> Truth:
    """torchvision vit_b_16, input (1, 3, image, image)."""
    n = (image // patch) ** 2                              # 196 patches
    L = n + 1                                              # + class token = 197 tokens
    params = (
        linear_params(3 * patch * patch, d)                # conv_proj (a 16x16/16 conv = a Linear per patch)
        + d                                                # class_token
        + L * d                                            # pos_embedding
        + depth * (
            norm_params(d) * 2                             # ln_1, ln_2
            + linear_params(d, 3 * d) + linear_params(d, d)  # attention in_proj (q, k, v) + out_proj, with bias
            + linear_params(d, mlp) + linear_params(mlp, d)  # MLP
        )
        + norm_params(d)                                   # final ln
        + linear_params(d, num_classes)                    # head
    )
    per_layer = {
        "qkv": L * d * 3 * d,
        "scores QK^T": heads * L * L * (d // heads),
        "A·V": heads * L * L * (d // heads),
        "out_proj": L * d * d,
        "mlp": 2 * L * d * mlp,
    }
    terms = {"patch conv": n * d * 3 * patch * patch}
    terms.update({f"{depth} x {k}": depth * v for k, v in per_layer.items()})
    terms["head (class token only)"] = d * num_classes
    return Truth(params, sum(terms.values()), f"(1, 3, {image}, {image})", terms)


# --------------------------------------------------------------------------- Encoder


def encoder(layers: int = 4, d: int = 256, heads: int = 8, ff: int = 1024, L: int = 128) -> Truth:
    """MLX nn.TransformerEncoder: pre-LN, attention projections without bias, final LayerNorm."""
    params = layers * (
        4 * linear_params(d, d, bias=False)                # q, k, v, out projections
        + norm_params(d) * 2                               # ln1, ln2
        + linear_params(d, ff) + linear_params(ff, d)      # linear1, linear2
    ) + norm_params(d)                                     # final ln
    per_layer = {
        "q, k, v, out": 4 * L * d * d,
        "scores QK^T": heads * L * L * (d // heads),
        "A·V": heads * L * L * (d // heads),
        "ff": 2 * L * d * ff,
    }
    terms = {f"{layers} x {k}": layers * v for k, v in per_layer.items()}
    return Truth(params, sum(terms.values()), f"(1, {L}, {d})", terms)


# --------------------------------------------------------------------------- GPT-2 124M


def gpt2(n_layer: int = 12, d: int = 768, heads: int = 12, vocab: int = 50257, n_ctx: int = 1024,
         L: int = 128) -> Truth:
    """GPT-2 small; the LM head reuses wte (tied): its weight counts once, its MACs count."""
    params = (
        vocab * d + n_ctx * d                              # wte, wpe
        + n_layer * (
            norm_params(d) * 2                             # ln_1, ln_2
            + linear_params(d, 3 * d) + linear_params(d, d)  # c_attn, attn.c_proj
            + linear_params(d, 4 * d) + linear_params(4 * d, d)  # c_fc, mlp.c_proj
        )
        + norm_params(d)                                   # ln_f
        + 0                                                # lm_head: tied to wte
    )
    per_layer = {
        "c_attn": L * d * 3 * d,
        "scores QK^T (dense, causal-masked)": heads * L * L * (d // heads),
        "A·V": heads * L * L * (d // heads),
        "attn c_proj": L * d * d,
        "mlp": 2 * L * d * 4 * d,
    }
    terms = {f"{n_layer} x {k}": n_layer * v for k, v in per_layer.items()}
    terms["lm_head (tied)"] = L * d * vocab
    return Truth(params, sum(terms.values()), f"(1, {L}) int", terms)


def gpt2_q4(L: int = 128) -> Truth:
    """GPT-2 small after `nn.quantize(bits=4, group_size=64)`: logical counts unchanged.

    The MACs are the same products (MLX's quantized matmul dequantizes on the fly).
    """
    t = gpt2(L=L)
    return Truth(t.params, t.macs, t.input, dict(t.terms))


# --------------------------------------------------------------------------- reused + tied


def shared_tied(vocab: int = 1000, d: int = 256, L: int = 32) -> Truth:
    """embed -> fc -> ReLU -> fc (the same Linear again) -> out (weight tied to embed)."""
    params = vocab * d + linear_params(d, d)               # embed (= out's weight), fc (once)
    terms = {"fc, called twice": 2 * L * d * d, "out (tied)": L * d * vocab}
    return Truth(params, sum(terms.values()), f"(1, {L}) int", terms)


# --------------------------------------------------------------------------- Llama-2


def llama(n_layers: int = 32, d: int = 4096, heads: int = 32, kv_heads: int = 32, hidden: int = 11008,
          vocab: int = 32000, L: int = 128) -> Truth:
    """Llama-2 (7B by default): untied lm_head, RMSNorm (weight only), SwiGLU, no biases."""
    hd = d // heads
    params = (
        vocab * d                                          # embed_tokens
        + n_layers * (
            2 * d * d + 2 * d * kv_heads * hd              # q, o (d x d); k, v (d x kv*hd)
            + 3 * d * hidden                               # gate, up, down
            + norm_params(d, bias=False) * 2               # input / post-attention RMSNorm
        )
        + norm_params(d, bias=False)                       # final norm
        + d * vocab                                        # lm_head
    )
    per_layer = {
        "q, o": 2 * L * d * d,
        "k, v": 2 * L * d * kv_heads * hd,
        "scores QK^T (dense, causal-masked)": heads * L * L * hd,
        "A·V": heads * L * L * hd,
        "mlp": 3 * L * d * hidden,
    }
    terms = {f"{n_layers} x {k}": n_layers * v for k, v in per_layer.items()}
    terms["lm_head"] = L * d * vocab
    return Truth(params, sum(terms.values()), f"(1, {L}) int", terms)


TRUTH: dict[str, Truth] = {
    "resnet50": resnet50(),
    "vit_b_16": vit_b_16(),
    "encoder": encoder(),
    "gpt2": gpt2(),
    "shared_tied": shared_tied(),
    "gpt2_q4": gpt2_q4(),
    "llama7b": llama(),
}


if __name__ == "__main__":
    for name, t in TRUTH.items():
        print(f"{name:12s} input {t.input:18s} params {t.params:>15,}  MACs {t.macs:>19,}")
        for k, v in t.terms.items():
            print(f"{'':14s}{k:40s} {v:>19,}")
