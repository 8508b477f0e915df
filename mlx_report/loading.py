"""Turn ``PATH[:NAME]`` (a model file and an optional attribute) into an ``nn.Module``."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import inspect
import itertools
import keyword
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_map

from mlx_report.errors import InputSpecError, ModelLoadError
from mlx_report.inputs import dtype_name
from mlx_report.model_dir import is_model_dir, load_model_dir
from mlx_report.paths import probe, shown

FACTORY_NAMES = ("build", "build_model", "create_model", "get_model", "make_model")

_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_MAX_LISTED = 8
_WORD_LITERALS = {"true": True, "false": False, "none": None, "null": None}
_counter = itertools.count()


@dataclass
class LoadedModel:
    """A model built from a user's file, with where it came from."""

    model: nn.Module
    name: str
    source: Path
    source_sha256: str
    factory: str | None
    weight_files: list[Path] | None = None   # set for model directories: weights come with it


def parse_model_arg(text: str) -> tuple[str, object]:
    """Parse ``key=value``; the value is a Python literal or a bare word string."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not _is_name(key):
        raise InputSpecError(f"invalid --arg {text!r}: expected key=value, e.g. depth=50 or act=relu")
    if raw.lower() in _WORD_LITERALS:  # --arg bias=true, as shells and YAML users type it
        return key, _WORD_LITERALS[raw.lower()]
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if _BARE_WORD.fullmatch(raw):
            return key, raw
    raise InputSpecError(
        f"invalid --arg {text!r}: {raw!r} is not a Python literal (quote strings: {key}='...')"
    )


def split_target(target: str) -> tuple[Path, str | None]:
    """Split ``path.py:NAME`` at the last ':' when NAME is an identifier."""
    head, sep, tail = target.strip().rpartition(":")
    if sep and _is_name(tail):
        if not head:
            raise ModelLoadError(f"invalid model {target!r}: missing file before ':{tail}'")
        return Path(head), tail
    if sep and not tail:
        raise ModelLoadError(f"invalid model {target!r}: missing name after ':' (use {head}:NAME)")
    if not target.strip():
        raise ModelLoadError("no model given: expected a model file such as model.py or model.py:NAME")
    return Path(target.strip()), None


def load_model(target: str, kwargs: dict | None = None) -> LoadedModel:
    """Import the model file in ``target`` and build the model it names or defines."""
    if is_model_dir(Path(target)):
        if kwargs:
            raise ModelLoadError("--arg does not apply to a model directory (its config.json describes it)")
        model, config, files, digest = load_model_dir(Path(target))
        kind = config.get("model_type", type(model).__name__)
        return LoadedModel(model, type(model).__name__, Path(target).resolve() / "config.json",
                           digest, f"mlx-lm {kind}", weight_files=files)
    path, name = split_target(target)
    label = str(path)
    source = _check_file(path)
    try:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
    except OSError as e:
        raise ModelLoadError(f"cannot read model file {label}: {e.strerror or e}") from None
    with _importable(source.parent):
        module = _import_file(source, label)
        if name is not None:
            model, used, factory = _build_named(module, name, kwargs or {}, label)
        else:
            model, used, factory = _discover(module, kwargs or {}, label)
    return LoadedModel(model, used, source, digest, factory)


def cast_floating(model: nn.Module, dtype: mx.Dtype) -> None:
    """Cast the floating-point parameters of ``model`` to ``dtype``; tied arrays stay tied."""
    if not mx.issubdtype(dtype, mx.floating):
        name = dtype_name(dtype)
        raise InputSpecError(f"--dtype {name} is not a floating-point type (use float32, float16, bfloat16 or float64)")
    cast: dict[int, mx.array] = {}

    def convert(x: Any) -> Any:
        if not isinstance(x, mx.array) or not mx.issubdtype(x.dtype, mx.floating) or x.dtype == dtype:
            return x
        if id(x) not in cast:
            cast[id(x)] = x.astype(dtype)
        return cast[id(x)]

    params = model.parameters()
    model.update(tree_map(convert, params))


def check_model_target(target: str) -> None:
    """Refuse early (before asking for --input) a MODEL that is no model file or directory."""
    if not is_model_dir(Path(target)):
        _check_file(split_target(target)[0])


def _check_file(path: Path) -> Path:
    """Absolute path of an existing regular ``.py`` file; ModelLoadError otherwise."""
    kind = probe(path, "model file", ModelLoadError)
    if kind == "a directory":
        raise ModelLoadError(f"model path is a directory, not a .py file: {shown(path)}")
    if kind == "missing":
        raise ModelLoadError(f"model file not found: {shown(path)}")
    if path.suffix != ".py":
        raise ModelLoadError(f"{shown(path)} is not a model: MODEL is a .py file (model.py[:NAME]), a "
                             f"model directory with config.json, or an archived .json")
    if kind is not None:
        raise ModelLoadError(f"model file {shown(path)} is {kind}, not a regular file")
    return path.resolve()


@contextlib.contextmanager
def _importable(folder: Path) -> Iterator[None]:
    """Import from ``folder`` first, without bytecode; after, sys.path is as it was and the
    modules imported from ``folder`` (``from blocks import Block``) are gone from sys.modules.

    So two model files with same-named siblings (v1/blocks.py, v2/blocks.py) each get their
    own. Modules imported from elsewhere (mlx, numpy, ...) stay cached, as after any import.
    """
    saved_path, bytecode = list(sys.path), sys.dont_write_bytecode
    before = dict(sys.modules)
    sys.path.insert(0, str(folder))
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = bytecode
        sys.path[:] = saved_path
        root = folder.resolve()
        for name, module in list(sys.modules.items()):
            if before.get(name) is not module and _imported_from(module, root):
                if name in before:
                    sys.modules[name] = before[name]
                else:
                    del sys.modules[name]


def _imported_from(module: object, root: Path) -> bool:
    """True when a module's file (or a namespace package's folder) lies under ``root``."""
    places = [getattr(module, "__file__", None)] + list(getattr(module, "__path__", None) or [])
    for place in places:
        if isinstance(place, str):
            with contextlib.suppress(OSError, ValueError):
                if Path(place).resolve().is_relative_to(root):
                    return True
    return False


def _import_file(source: Path, label: str) -> ModuleType:
    """Execute the file as a fresh module registered in sys.modules only meanwhile."""
    stem = re.sub(r"\W", "_", source.stem)
    module_name = f"mlx_report_user_{stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(module_name, source)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import model file: {label}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:
        raise ModelLoadError(f"error importing {label}{_where(e, source)}: {_describe(e)}") from None
    finally:
        sys.modules.pop(module_name, None)
    return module


def _build_named(module: ModuleType, name: str, kwargs: dict, label: str) -> tuple[nn.Module, str, str | None]:
    """Use the attribute ``name``: a module instance as is, or a class/function called with kwargs."""
    if not hasattr(module, name):
        raise ModelLoadError(f"no {name!r} in {label} (available: {_candidates(module)})")
    obj = getattr(module, name)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ModelLoadError(
                f"{name!r} in {label} is an nn.Module instance and takes no model arguments "
                f"(got {', '.join(kwargs)}); name a class or factory function instead"
            )
        return obj, name, None
    if not callable(obj):
        raise ModelLoadError(f"{name!r} in {label} is {type(obj).__name__}, not an nn.Module, class or function")
    return _call(obj, name, kwargs, module, label)


def _discover(module: ModuleType, kwargs: dict, label: str) -> tuple[nn.Module, str, str | None]:
    """Find the model: a ``model`` instance, then a factory function, then one buildable class."""
    instance = getattr(module, "model", None)
    if isinstance(instance, nn.Module) and not kwargs:
        return instance, "model", None
    for name in FACTORY_NAMES:
        obj = getattr(module, name, None)
        if callable(obj) and not isinstance(obj, nn.Module):
            return _call(obj, name, kwargs, module, label)
    classes = _module_classes(module)
    bases = {base for cls in classes for base in cls.__mro__[1:]}
    buildable = [c for c in classes if c not in bases and _accepts(c, kwargs)]
    if len(buildable) == 1:
        return _call(buildable[0], buildable[0].__name__, kwargs, module, label)
    hint = f"name one with {label}:NAME (candidates: {_candidates(module)})"
    needing = [c for c in classes if c not in bases and _required(c)]
    if len(needing) == 1 and not buildable:
        args = " ".join(f"--arg {p}=VALUE" for p in _required(needing[0]).split(", "))
        hint += f"; build {needing[0].__name__} with {label}:{needing[0].__name__} {args}"
    if len(buildable) > 1:
        raise ModelLoadError(f"several models in {label}: {hint}")
    if isinstance(instance, nn.Module):
        raise ModelLoadError(
            f"'model' in {label} is an nn.Module instance and takes no model arguments; "
            f"add a build_model() function or {hint}"
        )
    raise ModelLoadError(f"no model found in {label}: define 'model', a build_model() function, or {hint}")


def _call(fn: Callable, name: str, kwargs: dict, module: ModuleType, label: str) -> tuple[nn.Module, str, str]:
    """Call a class or factory with kwargs and return the module it gives."""
    call = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    kind = "class" if isinstance(fn, type) else "factory"
    if not _accepts(fn, kwargs):
        needed = [p for p in _required(fn).split(", ") if p and p not in kwargs]
        hint = (" — pass " + " ".join(f"--arg {p}=VALUE" for p in needed)) if needed else ""
        raise ModelLoadError(f"{kind} {call} in {label} cannot be called: {_bind_error(fn, kwargs)}{hint}")
    try:
        result = fn(**kwargs)
    except (Exception, SystemExit) as e:
        where = _where(e, Path(module.__file__))
        raise ModelLoadError(f"{kind} {call} in {label} failed{where}: {_describe(e)}") from None
    if isinstance(result, (tuple, list)) and result and isinstance(result[0], nn.Module):
        result = result[0]
    if not isinstance(result, nn.Module):
        raise ModelLoadError(f"{kind} {call} in {label} returned {_kind_of(result)}, not an nn.Module")
    return result, name, call


def _module_classes(module: ModuleType) -> list[type]:
    """nn.Module subclasses defined in the file itself, in definition order."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
    ]


def _candidates(module: ModuleType) -> str:
    """One-line list of module instances, factory-like functions and Module classes in the file."""
    instances = [k for k, v in vars(module).items() if isinstance(v, nn.Module) and not k.startswith("_")]
    functions = [
        f"{k}({_required(v)})"
        for k, v in vars(module).items()
        if inspect.isfunction(v) and v.__module__ == module.__name__ and not k.startswith("_")
    ]
    classes = [f"{c.__name__}({_required(c)})" for c in _module_classes(module)]
    groups = [("instances", instances), ("functions", functions), ("classes", classes)]
    parts = [f"{kind} {_listing(names)}" for kind, names in groups if names]
    return "; ".join(parts) or "no nn.Module instances, classes or functions in the file"


def _listing(names: list[str]) -> str:
    """Comma-separated names, shortened after a few."""
    more = len(names) - _MAX_LISTED
    return ", ".join(names[:_MAX_LISTED]) + (f", ... ({more} more)" if more > 0 else "")


def _required(fn: Callable) -> str:
    """Names of the parameters ``fn`` requires, comma separated."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return "..."
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return ", ".join(p.name for p in params if p.default is p.empty and p.kind in kinds)


def _accepts(fn: Callable, kwargs: dict) -> bool:
    """True when ``fn(**kwargs)`` binds to its signature (or it has none we can read)."""
    return _bind_error(fn, kwargs) is None


def _bind_error(fn: Callable, kwargs: dict) -> str | None:
    """Why ``fn(**kwargs)`` would not bind, or None."""
    try:
        inspect.signature(fn).bind(**kwargs)
    except (ValueError, RuntimeError):
        return None
    except TypeError as e:
        return f"{e} (parameters: {_parameters(fn)})"
    return None


def _parameters(fn: Callable) -> str:
    """The signature's parameters, comma separated."""
    return ", ".join(map(str, inspect.signature(fn).parameters.values())) or "none"


def _where(error: BaseException, source: Path) -> str:
    """`` (line N)`` for the deepest traceback frame in ``source``, else empty.

    A SyntaxError in another file (a helper the model imports) names that file.
    """
    if isinstance(error, SyntaxError) and error.filename and error.lineno and \
            Path(error.filename).resolve() != source:
        return f" ({Path(error.filename).name} line {error.lineno})"
    line = None
    if isinstance(error, SyntaxError) and error.filename and Path(error.filename).resolve() == source:
        line = error.lineno
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve() == source:
            line = frame.lineno
    return f" (line {line})" if line else ""


def _describe(error: BaseException) -> str:
    """``Type: message`` on one line."""
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    message = " ".join(str(message).split())
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _kind_of(value: Any) -> str:
    """Short description of a returned value, e.g. ``int`` or ``tuple of (dict, int)``."""
    if isinstance(value, (tuple, list)):
        items = ", ".join(type(v).__name__ for v in value[:4])
        return f"{type(value).__name__} of ({items})" if value else f"empty {type(value).__name__}"
    return "None" if value is None else type(value).__name__


def _is_name(text: str) -> bool:
    """True for a Python identifier that is not a keyword."""
    return text.isidentifier() and not keyword.iskeyword(text)
