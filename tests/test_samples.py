"""Ground truth for samples/: plain-MLX parameter counts and lazy output shapes (no mlx_report).

Every model is built lazily and called without evaluation: weights stay unmaterialised random
arrays and `.shape` of the output is known from the graph alone, so the 6.7B Llama costs nothing.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def load_sample(name: str) -> ModuleType:
    """Import samples/<name>.py by path, the way the tool loads a user's model file."""
    spec = importlib.util.spec_from_file_location(
        f"sample_{name}", SAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_params(model: nn.Module) -> int:
    """Elements of unique parameter arrays (deduplicated by id, so tied weights count once)."""
    unique = {id(a): a.size for _, a in tree_flatten(model.parameters())}
    return sum(unique.values())


def batchnorm_running_stats(model: nn.Module) -> int:
    """Elements of BatchNorm running_mean/running_var: frozen parameters in MLX, buffers in torch."""
    return sum(
        m.running_mean.size + m.running_var.size
        for _, m in model.named_modules()
        if isinstance(m, nn.BatchNorm) and "running_mean" in m
    )


# torchvision model docs, "num_params" of the IMAGENET1K_V1 weights, e.g.
# https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet18.html (11,689,512)
# https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet50.html (25,557,032)
# torch counts parameters only, so BatchNorm running stats (torch buffers) are subtracted.
TORCHVISION_RESNET = {
    18: 11_689_512,
    34: 21_797_672,
    50: 25_557_032,
    101: 44_549_160,
    152: 60_192_808,
}


@pytest.mark.parametrize("depth", sorted(TORCHVISION_RESNET))
def test_resnet_param_count_matches_torchvision(depth):
    model = load_sample("resnet").build_model(depth=depth)
    running = batchnorm_running_stats(model)
    assert running > 0
    assert count_params(model) - running == TORCHVISION_RESNET[depth]
    # Same figure from the trainable side: running stats are the only frozen parameters.
    trainable = {id(a): a.size for _, a in tree_flatten(model.trainable_parameters())}
    assert sum(trainable.values()) == TORCHVISION_RESNET[depth]


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_forward_shape(depth):
    model = load_sample("resnet").build_model(depth=depth, num_classes=10)
    assert model(mx.zeros((2, 3, 224, 224))).shape == (2, 10)
    assert model(mx.zeros((1, 3, 64, 96))).shape == (
        1,
        10,
    )  # global pool: any image size


def test_resnet_nhwc_input_names_the_fix():
    model = load_sample("resnet").build_model(depth=18)
    with pytest.raises(ValueError) as err:
        model(mx.zeros((1, 224, 224, 3)))
    message = str(err.value)
    assert "NCHW" in message and "NHWC" in message
    assert "--input 1,3,224,224" in message
    assert "channels_last=True" in message


def test_resnet_channels_last_accepts_nhwc():
    model = load_sample("resnet").build_model(depth=18, channels_last=True)
    assert model(mx.zeros((1, 224, 224, 3))).shape == (1, 1000)


def test_resnet_rejects_unknown_depth():
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        load_sample("resnet").build_model(depth=42)


def test_vit_b16_param_count_and_shape():
    # torchvision docs, vit_b_16 IMAGENET1K_V1 "num_params": 86,567,656
    # https://pytorch.org/vision/stable/models/generated/torchvision.models.vit_b_16.html
    model = load_sample("vit").build_model()
    assert count_params(model) == 86_567_656
    assert model.encoder.pos_embedding.shape == (1, 197, 768)
    assert model(mx.zeros((2, 3, 224, 224))).shape == (2, 1000)


def test_vit_nhwc_input_names_the_fix():
    model = load_sample("vit").build_model()
    with pytest.raises(ValueError, match="--input 1,3,224,224"):
        model(mx.zeros((1, 224, 224, 3)))


def test_gpt2_param_count_tied_once_and_shape():
    # Hugging Face `gpt2` (config: n_layer 12, n_head 12, n_embd 768, vocab_size 50257,
    # n_positions 1024); GPT2LMHeadModel.from_pretrained("gpt2").num_parameters() = 124,439,808
    # with lm_head tied to wte. (The GPT-2 paper, Radford et al. 2019, Table 2, says "117M".)
    model = load_sample("gpt2").build_model()
    assert count_params(model) == 124_439_808
    weights = [
        a for _, a in tree_flatten(model.parameters()) if a.shape == (50257, 768)
    ]
    assert (
        len(weights) == 1
    )  # the output projection reuses wte, it has no matrix of its own
    assert model(mx.zeros((2, 16), dtype=mx.int32)).shape == (2, 16, 50257)


def test_llama2_7b_param_count_and_shape():
    # Hugging Face meta-llama/Llama-2-7b-hf (config.json: hidden_size 4096, 32 layers, 32 heads,
    # intermediate_size 11008, vocab_size 32000, untied); num_parameters() = 6,738,415,616.
    # Llama 2 paper: Touvron et al. 2023, "7B".
    llama = load_sample("llama")
    mx.reset_peak_memory()
    model = llama.build_model()
    assert count_params(model) == 6_738_415_616
    assert model(mx.zeros((1, 32), dtype=mx.int32)).shape == (1, 32, 32000)
    # No weight was materialised (27 GB in float32); only PRNG keys and scalars (a few KB) are.
    assert mx.get_peak_memory() < 1 << 20


def test_llama_tiny_and_overrides():
    llama = load_sample("llama")
    tiny = llama.build_model(size="tiny")
    assert tiny.args.n_kv_heads < tiny.args.n_heads  # exercises grouped-query attention
    assert tiny(mx.zeros((2, 8), dtype=mx.int32)).shape == (2, 8, tiny.args.vocab_size)

    model = llama.build_model(
        n_layers=2, dim=64, n_heads=4, hidden_dim=128, vocab_size=100
    )
    assert len(model.layers) == 2 and model.args.n_kv_heads == 4
    # embed + lm_head + final norm + 2 x (attention 4*d*d + SwiGLU 3*d*h + two RMSNorms)
    d, h, v = 64, 128, 100
    assert count_params(model) == 2 * v * d + d + 2 * (4 * d * d + 3 * d * h + 2 * d)
    assert model(mx.zeros((1, 5), dtype=mx.int32)).shape == (1, 5, 100)

    gqa = llama.build_model(
        n_layers=1, dim=64, n_heads=8, n_kv_heads=2, hidden_dim=128, vocab_size=50
    )
    assert gqa.layers[0].self_attn.k_proj.weight.shape == (16, 64)
    assert gqa(mx.zeros((1, 4), dtype=mx.int32)).shape == (1, 4, 50)

    with pytest.raises(ValueError, match="unknown Llama arguments"):
        llama.build_model(n_layer=2)


def test_mlp_param_count_and_shape():
    model = load_sample("mlp").build_model()
    # 784*512 + 512  +  512*512 + 512  +  512*10 + 10
    assert count_params(model) == 669_706
    assert model(mx.zeros((64, 784))).shape == (64, 10)


def test_encoder_param_count_and_shape():
    model = load_sample("encoder").build_model()
    L, d, ff = 4, 256, 1024
    attention = 4 * d * d  # q, k, v, out projections, no bias (nn.MultiHeadAttention)
    layer_norms = 2 * (2 * d)  # ln1, ln2: weight + bias
    feed_forward = (d * ff + ff) + (ff * d + d)  # linear1, linear2 with bias
    final_norm = 2 * d
    expected = L * (attention + layer_norms + feed_forward) + final_norm
    assert expected == 3_155_456
    assert count_params(model) == expected
    assert model(mx.zeros((2, 10, d))).shape == (2, 10, d)


def test_every_sample_exposes_build_model():
    for path in sorted(SAMPLES.glob("*.py")):
        module = load_sample(path.stem)
        assert callable(getattr(module, "build_model", None)), path.name
        assert isinstance(module.build_model(), nn.Module), path.name


# tests/models/edge_cases.py: each case builds and runs lazily on its declared inputs.
EDGE_COUNTS = {  # unique parameter elements, trainable elements
    "reused_module": (16 * 16 + 16, 16 * 16 + 16),  # one Linear under two names
    "tied_weights": (
        100 * 32 + 32 * 32 + 32,
        100 * 32 + 32 * 32 + 32,
    ),  # shared matrix once
    "frozen": (16 * 32 + 32 + 32 * 4 + 4, 32 * 4 + 4),
    "batchnorm": (3 * 3 * 3 * 8 + 4 * 8, 3 * 3 * 3 * 8 + 2 * 8),
    "no_params": (0, 0),
    "functional_ops": (32 * 32, 32 * 32),
}


@pytest.mark.parametrize(
    "name",
    [
        "reused_module",
        "tied_weights",
        "frozen",
        "batchnorm",
        "quantized",
        "multi_io",
        "multi_io_dict",
        "kwargs_input",
        "no_params",
        "deep_nesting",
        "repeated_blocks",
        "functional_ops",
    ],
)
def test_edge_case_models_run(name):
    from tests.models.edge_cases import EDGE_CASES, make_inputs

    factory, _, _ = EDGE_CASES[name]
    model = factory()
    args, kwargs = make_inputs(name)
    out = model(*args, **kwargs)
    outputs = (
        list(out.values())
        if isinstance(out, dict)
        else list(out)
        if isinstance(out, tuple)
        else [out]
    )
    assert all(isinstance(o, mx.array) for o in outputs)
    if name in EDGE_COUNTS:
        trainable = {
            id(a): a.size for _, a in tree_flatten(model.trainable_parameters())
        }
        assert (count_params(model), sum(trainable.values())) == EDGE_COUNTS[name]
