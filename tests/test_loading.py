"""Tests for turning model files and names into nn.Modules."""

import hashlib
import sys
import textwrap
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import pytest

from mlx_report.errors import InputSpecError, MlxReportError, ModelLoadError
from mlx_report.loading import FACTORY_NAMES, cast_floating, load_model, parse_model_arg, split_target

HEADER = "import mlx.core as mx\nimport mlx.nn as nn\n"

TWO_CLASSES = HEADER + textwrap.dedent(
    """
    class Encoder(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.proj = nn.Linear(dims, dims)

    class Decoder(nn.Module):
        def __init__(self, dims, heads=2):
            super().__init__()
            self.proj = nn.Linear(dims, dims)
    """
)


def write(folder: Path, name: str, body: str) -> Path:
    """Write a model file and return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def load_error(target, kwargs=None) -> str:
    """The message of the ModelLoadError that load_model raises."""
    with pytest.raises(ModelLoadError) as info:
        load_model(str(target), kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 3
    assert isinstance(info.value, MlxReportError)
    return message


# parse_model_arg


@pytest.mark.parametrize(
    "text, expected",
    [
        ("depth=50", ("depth", 50)),
        ("scale=0.5", ("scale", 0.5)),
        ("act=relu", ("act", "relu")),
        ("act='gelu approx'", ("act", "gelu approx")),
        ("dims=[64, 128]", ("dims", [64, 128])),
        ("shape=1,2", ("shape", (1, 2))),
        ("bias=False", ("bias", False)),
        ("norm=None", ("norm", None)),
        (" cfg = {'a': 1} ", ("cfg", {"a": 1})),
        ("path=weights/model.npz", ("path", "weights/model.npz")),
        ("name=llama-7b", ("name", "llama-7b")),
    ],
)
def test_parse_model_arg(text, expected):
    assert parse_model_arg(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("depth", "invalid --arg 'depth': expected key=value, e.g. depth=50 or act=relu"),
        ("=5", "invalid --arg '=5': expected key=value, e.g. depth=50 or act=relu"),
        ("1x=2", "invalid --arg '1x=2': expected key=value, e.g. depth=50 or act=relu"),
        ("x=foo bar", "invalid --arg 'x=foo bar': 'foo bar' is not a Python literal (quote strings: x='...')"),
        ("x=[1,2", "invalid --arg 'x=[1,2': '[1,2' is not a Python literal (quote strings: x='...')"),
        ("x=", "invalid --arg 'x=': '' is not a Python literal (quote strings: x='...')"),
    ],
)
def test_parse_model_arg_errors(text, message):
    with pytest.raises(InputSpecError) as info:
        parse_model_arg(text)
    assert str(info.value) == message


# split_target


@pytest.mark.parametrize(
    "target, expected",
    [
        ("samples/resnet.py:build_model", (Path("samples/resnet.py"), "build_model")),
        ("samples/resnet.py", (Path("samples/resnet.py"), None)),
        ("net.py:Net", (Path("net.py"), "Net")),
        ("a:b/net.py", (Path("a:b/net.py"), None)),
        ("a:b/net.py:model", (Path("a:b/net.py"), "model")),
        ("net.py:1abc", (Path("net.py:1abc"), None)),
    ],
)
def test_split_target(target, expected):
    assert split_target(target) == expected


@pytest.mark.parametrize(
    "target, message",
    [
        ("net.py:", "invalid model 'net.py:': missing name after ':' (use net.py:NAME)"),
        (":model", "invalid model ':model': missing file before ':model'"),
        ("", "no model given: expected a model file such as model.py or model.py:NAME"),
    ],
)
def test_split_target_errors(target, message):
    with pytest.raises(ModelLoadError) as info:
        split_target(target)
    assert str(info.value) == message


# discovery without NAME


def test_module_instance_named_model(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "model = nn.Linear(4, 2)\ndef build_model():\n    return nn.Linear(4, 3)\n")
    loaded = load_model(str(path))
    assert isinstance(loaded.model, nn.Linear) and loaded.model.weight.shape == (2, 4)
    assert loaded.name == "model"
    assert loaded.factory is None
    assert loaded.source == path.resolve() and loaded.source.is_absolute()
    assert loaded.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_factory_order(tmp_path):
    body = HEADER + "".join(f"def {n}():\n    return nn.Linear(4, {i + 1})\n" for i, n in enumerate(reversed(FACTORY_NAMES)))
    loaded = load_model(str(write(tmp_path, "net.py", body)))
    assert loaded.name == FACTORY_NAMES[0]
    assert loaded.factory == f"{FACTORY_NAMES[0]}()"


@pytest.mark.parametrize("factory", FACTORY_NAMES)
def test_each_factory_name(tmp_path, factory):
    path = write(tmp_path, "net.py", HEADER + f"def {factory}(dims=4):\n    return nn.Linear(dims, 2)\n")
    loaded = load_model(str(path), {"dims": 8})
    assert loaded.model.weight.shape == (2, 8)
    assert (loaded.name, loaded.factory) == (factory, f"{factory}(dims=8)")


def test_factory_preferred_over_class(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES + "\ndef build_model(dims=4):\n    return Encoder(dims)\n")
    loaded = load_model(str(path))
    assert type(loaded.model).__name__ == "Encoder"
    assert loaded.factory == "build_model()"


def test_factory_returning_tuple(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "def build_model():\n    return nn.Linear(4, 2), {'dims': 4}\n")
    assert isinstance(load_model(str(path)).model, nn.Linear)


@pytest.mark.parametrize(
    "returned, kind",
    [("3", "int"), ("None", "None"), ("({'a': 1}, 2)", "tuple of (dict, int)"), ("[]", "empty list")],
)
def test_factory_returning_non_module(tmp_path, returned, kind):
    path = write(tmp_path, "net.py", HEADER + f"def build_model():\n    return {returned}\n")
    assert load_error(path) == f"factory build_model() in {path} returned {kind}, not an nn.Module"


def test_single_buildable_class(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES + "\nclass Net(nn.Module):\n    def __init__(self, dims=4):\n"
                 "        super().__init__()\n        self.enc = Encoder(dims)\n")
    loaded = load_model(str(path))
    assert type(loaded.model).__name__ == "Net"
    assert (loaded.name, loaded.factory) == ("Net", "Net()")


def test_class_without_init(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "class Net(nn.Module):\n    def __call__(self, x):\n        return x\n")
    assert load_model(str(path)).name == "Net"


def test_base_classes_are_skipped(tmp_path):
    body = HEADER + textwrap.dedent(
        """
        class Base(nn.Module):
            def __call__(self, x):
                raise NotImplementedError

        class Net(Base):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)
        """
    )
    assert load_model(str(write(tmp_path, "net.py", body))).name == "Net"


def test_imported_classes_are_ignored(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "from mlx.nn import Linear, ReLU\nclass Net(nn.Module):\n    pass\n")
    assert load_model(str(path)).name == "Net"


def test_kwargs_pick_buildable_class(tmp_path):
    loaded = load_model(str(write(tmp_path, "net.py", TWO_CLASSES.replace("dims, heads=2", "dims, heads"))), {"dims": 6})
    assert (loaded.name, loaded.factory) == ("Encoder", "Encoder(dims=6)")
    assert loaded.model.proj.weight.shape == (6, 6)


def test_kwargs_skip_model_instance(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "model = nn.Linear(4, 2)\ndef build_model(dims=4):\n    return nn.Linear(dims, 2)\n")
    loaded = load_model(str(path), {"dims": 3})
    assert (loaded.name, loaded.factory) == ("build_model", "build_model(dims=3)")


def test_kwargs_with_only_instance(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "model = nn.Linear(4, 2)\n")
    assert load_error(path, {"dims": 3}) == (
        f"'model' in {path} is an nn.Module instance and takes no model arguments; add a build_model() "
        f"function or name one with {path}:NAME (candidates: instances model)"
    )


def test_no_model_found(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES)
    assert load_error(path) == (
        f"no model found in {path}: define 'model', a build_model() function, or name one with {path}:NAME "
        "(candidates: classes Encoder(dims), Decoder(dims))"
    )


def test_no_model_found_lists_everything(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES + "\nenc = Encoder(4)\ndef encoder(dims):\n    return Encoder(dims)\n")
    assert load_error(path).endswith(
        "(candidates: instances enc; functions encoder(dims); classes Encoder(dims), Decoder(dims))"
    )


def test_empty_file(tmp_path):
    path = write(tmp_path, "net.py", "x = 1\n")
    assert load_error(path) == (
        f"no model found in {path}: define 'model', a build_model() function, or name one with {path}:NAME "
        "(candidates: no nn.Module instances, classes or functions in the file)"
    )


def test_several_buildable_classes(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES.replace("(self, dims)", "(self, dims=4)").replace("dims, heads=2", "dims=4"))
    assert load_error(path) == (
        f"several models in {path}: name one with {path}:NAME (candidates: classes Encoder(), Decoder())"
    )


# named attribute


def test_named_instance(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "small = nn.Linear(2, 2)\nbig = nn.Linear(8, 8)\n")
    loaded = load_model(f"{path}:big")
    assert loaded.model.weight.shape == (8, 8)
    assert (loaded.name, loaded.factory) == ("big", None)


def test_named_instance_with_kwargs(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "big = nn.Linear(8, 8)\n")
    assert load_error(f"{path}:big", {"dims": 2}) == (
        f"'big' in {path} is an nn.Module instance and takes no model arguments (got dims); "
        "name a class or factory function instead"
    )


def test_named_class_with_kwargs(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES)
    loaded = load_model(f"{path}:Decoder", {"dims": 4, "heads": 1})
    assert type(loaded.model).__name__ == "Decoder"
    assert (loaded.name, loaded.factory) == ("Decoder", "Decoder(dims=4, heads=1)")


def test_named_function(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "def tiny(act='relu'):\n    return nn.Sequential(nn.Linear(2, 2), nn.ReLU())\n")
    loaded = load_model(f"{path}:tiny", {"act": "gelu"})
    assert loaded.factory == "tiny(act='gelu')"


def test_named_library_class(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "Linear = nn.Linear\n")
    assert load_model(f"{path}:Linear", {"input_dims": 2, "output_dims": 3}).model.weight.shape == (3, 2)


def test_named_missing_args(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES)
    assert load_error(f"{path}:Encoder") == (
        f"class Encoder() in {path} cannot be called: missing a required argument: 'dims' (parameters: dims)"
        " — pass --arg dims=VALUE"
    )


def test_named_unexpected_kwarg(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES)
    assert load_error(f"{path}:Decoder", {"dims": 2, "depth": 3}) == (
        f"class Decoder(dims=2, depth=3) in {path} cannot be called: "
        "got an unexpected keyword argument 'depth' (parameters: dims, heads=2)"
    )


def test_unknown_name(tmp_path):
    path = write(tmp_path, "net.py", TWO_CLASSES + "\nenc = Encoder(2)\n")
    assert load_error(f"{path}:Foo") == (
        f"no 'Foo' in {path} (available: instances enc; classes Encoder(dims), Decoder(dims))"
    )


def test_named_not_callable(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "CONFIG = {'dims': 4}\n")
    assert load_error(f"{path}:CONFIG") == f"'CONFIG' in {path} is dict, not an nn.Module, class or function"


# file and import errors


def test_missing_file(tmp_path):
    assert load_error(tmp_path / "x.py") == f"model file not found: {tmp_path / 'x.py'}"


def test_missing_file_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_error("x.py:build") == "model file not found: x.py"


def test_directory(tmp_path):
    assert load_error(tmp_path) == f"model path is a directory, not a .py file: {tmp_path}"


def test_not_python(tmp_path):
    path = write(tmp_path, "net.txt", "model = 1\n")
    assert load_error(path).startswith(f"{path} is not a model: MODEL is a .py file")


def test_import_error_names_line(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "\nx = 1\nraise ValueError('bad\\nvalue')\n")
    assert load_error(path) == f"error importing {path} (line 5): ValueError: bad value"


def test_import_error_inside_function(tmp_path):
    body = HEADER + "def helper():\n    return 1 / 0\n\nmodel = helper()\n"
    assert load_error(write(tmp_path, "net.py", body)) == (
        f"error importing {tmp_path / 'net.py'} (line 4): ZeroDivisionError: division by zero"
    )


def test_syntax_error(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "def f(:\n    pass\n")
    assert load_error(path) == f"error importing {path} (line 3): SyntaxError: invalid syntax"


def test_missing_dependency(tmp_path):
    path = write(tmp_path, "net.py", "import mlx_report_no_such_module\n")
    assert load_error(path) == (
        f"error importing {path} (line 1): ModuleNotFoundError: No module named 'mlx_report_no_such_module'"
    )


def test_sys_exit_in_file(tmp_path):
    path = write(tmp_path, "net.py", "import sys\nsys.exit(2)\n")
    assert load_error(path) == f"error importing {path} (line 2): SystemExit: 2"


def test_factory_raises(tmp_path):
    body = HEADER + "def build_model(depth=18):\n    if depth != 18:\n        raise ValueError(f'depth {depth} unsupported')\n"
    path = write(tmp_path, "net.py", body)
    assert load_error(path, {"depth": 50}) == (
        f"factory build_model(depth=50) in {path} failed (line 5): ValueError: depth 50 unsupported"
    )


def test_class_init_raises(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                 "        self.fc = nn.Linear(4)\n")
    message = load_error(path)
    assert message.startswith(f"class Net() in {path} failed (line 6): TypeError: ")


# import mechanics


def test_import_leaves_no_trace(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "model = nn.Linear(2, 2)\n")
    before_path, before_modules = list(sys.path), set(sys.modules)
    load_model(str(path))
    assert sys.path == before_path
    assert not [m for m in set(sys.modules) - before_modules if m.startswith("mlx_report_user_")]
    assert not (tmp_path / "__pycache__").exists()


def test_failed_import_leaves_no_trace(tmp_path):
    path = write(tmp_path, "net.py", "raise RuntimeError('x')\n")
    before_path, before_modules = list(sys.path), set(sys.modules)
    load_error(path)
    assert sys.path == before_path
    assert set(sys.modules) == before_modules


def test_sibling_import_and_dataclass(tmp_path):
    write(tmp_path, "mlxr_sibling_layers.py", HEADER + "class Block(nn.Module):\n    def __init__(self, d):\n"
          "        super().__init__()\n        self.fc = nn.Linear(d, d)\n")
    body = HEADER + textwrap.dedent(
        """
        from dataclasses import dataclass
        from mlxr_sibling_layers import Block

        @dataclass
        class Config:
            dims: int = 4

        class Net(nn.Module):
            def __init__(self, cfg: Config = Config()):
                super().__init__()
                self.block = Block(cfg.dims)
        """
    )
    try:
        loaded = load_model(str(write(tmp_path, "net.py", body)))
    finally:
        sys.modules.pop("mlxr_sibling_layers", None)
    assert loaded.name == "Net"  # Block is imported, not defined in net.py
    assert loaded.model.block.fc.weight.shape == (4, 4)


def test_same_file_loads_fresh(tmp_path):
    path = write(tmp_path, "net.py", HEADER + "model = nn.Linear(2, 2)\n")
    assert load_model(str(path)).model is not load_model(str(path)).model


# cast_floating


def test_cast_floating():
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 10, bias=True))
    model.layers[1].weight = model.layers[0].weight
    model.layers[1].steps = mx.arange(3)
    cast_floating(model, mx.float16)
    assert model.layers[0].weight.dtype == mx.float16
    assert model.layers[1].bias.dtype == mx.float16
    assert model.layers[1].weight is model.layers[0].weight
    assert model.layers[1].steps.dtype == mx.int32


def test_cast_floating_keeps_quantized_weights():
    model = nn.Sequential(nn.Linear(64, 64))
    nn.quantize(model, group_size=64, bits=4)
    cast_floating(model, mx.bfloat16)
    layer = model.layers[0]
    assert layer.weight.dtype == mx.uint32
    assert layer.scales.dtype == mx.bfloat16


def test_cast_floating_frozen_and_batchnorm():
    model = nn.BatchNorm(4)
    model.freeze()
    cast_floating(model, mx.float16)
    assert model.running_mean.dtype == mx.float16
    assert model.weight.dtype == mx.float16


def test_cast_floating_rejects_integer_dtype():
    with pytest.raises(InputSpecError) as info:
        cast_floating(nn.Linear(2, 2), mx.int8)
    assert str(info.value) == "--dtype int8 is not a floating-point type (use float32, float16, bfloat16 or float64)"
