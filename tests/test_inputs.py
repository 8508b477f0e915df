"""Tests for --input spec parsing and example inputs."""

import keyword

import mlx.core as mx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlx_report.errors import InputSpecError, MlxReportError
from mlx_report.inputs import (
    ACCEPTED_FORMS,
    DTYPES,
    InputSpec,
    check_input_specs,
    dtype_name,
    make_inputs,
    parse_dtype,
    parse_input_spec,
    parse_input_specs,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,3,224,224", InputSpec((1, 3, 224, 224))),
        ("1,128:int32", InputSpec((1, 128), "int32")),
        ("1x 3 X4", InputSpec((1, 3, 4))),
        ("name=1,128:int32", InputSpec((1, 128), "int32", "name")),
        ("(1,3,224,224)", InputSpec((1, 3, 224, 224))),
        ("[1, 3]", InputSpec((1, 3))),
        ("1x3x224x224", InputSpec((1, 3, 224, 224))),
        ("1X3", InputSpec((1, 3))),
        ("1 3 224 224", InputSpec((1, 3, 224, 224))),
        ("  1 , 3 x 4  ", InputSpec((1, 3, 4))),
        ("7", InputSpec((7,))),
        ("(7,)", InputSpec((7,))),
        ("()", InputSpec(())),
        ("mask = (2, 5) : bool", InputSpec((2, 5), "bool", "mask")),
        ("t=():int64", InputSpec((), "int64", "t")),
        ("1,2:FP16", InputSpec((1, 2), "float16")),
        ("1,2:bf16", InputSpec((1, 2), "bfloat16")),
        ("1,2:mx.uint8", InputSpec((1, 2), "uint8")),
        ("1,2:float32", InputSpec((1, 2))),
    ],
)
def test_parse_forms(text, expected):
    assert parse_input_spec(text) == expected


@pytest.mark.parametrize(
    "spec, text",
    [
        (InputSpec((1, 3, 224, 224)), "1,3,224,224"),
        (InputSpec((1, 128), "int32"), "1,128:int32"),
        (InputSpec((1, 128), "int32", "ids"), "ids=1,128:int32"),
        (InputSpec((1, 8), name="x"), "x=1,8"),
        (InputSpec(()), "()"),
        (InputSpec((), "bool", "flag"), "flag=():bool"),
    ],
)
def test_str_is_canonical(spec, text):
    assert str(spec) == text
    assert parse_input_spec(text) == spec


names = st.none() | st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))


@given(
    shape=st.lists(st.integers(1, 10**6), max_size=6).map(tuple),
    dtype=st.sampled_from(sorted(DTYPES)),
    name=names,
)
def test_str_round_trip(shape, dtype, name):
    spec = InputSpec(shape, dtype, name)
    assert parse_input_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty spec"),
        ("   ", "empty spec"),
        ("1,a", "dimension 'a' is not a positive integer"),
        ("1,0", "dimension '0' is not a positive integer"),
        ("1,-3", "dimension '-3' is not a positive integer"),
        ("1.5,2", "dimension '1.5' is not a positive integer"),
        # 'x' separates dimensions only between two numbers: a stray one is a bad dimension
        ("1,3,x", "dimension 'x' is not a positive integer"),
        ("1,3,X", "dimension 'X' is not a positive integer"),
        ("x,3", "dimension 'x' is not a positive integer"),
        ("1 x", "dimension 'x' is not a positive integer"),
        ("1,3,224,224x", "dimension '224x' is not a positive integer"),
        ("1xx3", "dimension '1xx3' is not a positive integer"),
        ("1,,3", "empty dimension"),
        ("1,3,", "empty dimension"),
        ("(,)", "empty dimension"),
        ("1,3:int33", "unknown dtype 'int33'; valid dtypes: float32, float16, bfloat16"),
        ("1,3:", "missing dtype after ':'"),
        ("1:int32:x", "more than one ':'"),
        ("9x=1,2", "name '9x' is not a Python identifier"),
        ("class=1,2", "name 'class' is not a Python identifier"),
        ("=1,2", "name '' is not a Python identifier"),
        ("x=", "empty shape (use () for a scalar)"),
        (":int32", "empty shape (use () for a scalar)"),
        ("(1,3", "unbalanced brackets"),
        ("1,3)", "unbalanced brackets"),
        ("(1,3]", "unbalanced brackets"),
    ],
)
def test_parse_errors(text, reason):
    with pytest.raises(InputSpecError) as info:
        parse_input_spec(text)
    message = str(info.value)
    assert reason in message
    assert message.startswith(f"invalid --input {text!r}: ")
    assert message.endswith(f"(accepted forms: {ACCEPTED_FORMS})")
    assert "\n" not in message
    assert info.value.exit_code == 2
    assert isinstance(info.value, MlxReportError)


def test_example_message():
    with pytest.raises(InputSpecError) as info:
        parse_input_spec("1,a")
    assert str(info.value) == (
        "invalid --input '1,a': dimension 'a' is not a positive integer "
        "(accepted forms: 1,3,224,224 | 1,128:int32 | name=1,128:int32)"
    )


def test_newline_in_spec_stays_one_line():
    with pytest.raises(InputSpecError) as info:
        parse_input_spec("1,\na")
    assert "\n" not in str(info.value)


def test_parse_dtype():
    assert parse_dtype("float16") == mx.float16
    assert parse_dtype("Int8") == mx.int8
    assert parse_dtype("bool") == mx.bool_
    assert parse_dtype("half") == mx.float16
    with pytest.raises(InputSpecError) as info:
        parse_dtype("float8")
    assert str(info.value) == f"unknown dtype 'float8'; valid dtypes: {', '.join(DTYPES)}"


def test_dtype_name():
    assert dtype_name(mx.bfloat16) == "bfloat16"
    assert dtype_name(mx.bool_) == "bool"


def test_spec_validates_fields():
    assert InputSpec([2, 3]).shape == (2, 3)
    assert InputSpec((2,), "fp16").dtype == "float16"
    with pytest.raises(InputSpecError, match="dimensions must be positive integers"):
        InputSpec((2, 0))
    with pytest.raises(InputSpecError, match="dimensions must be positive integers"):
        InputSpec((2, 1.5))
    with pytest.raises(InputSpecError, match="unknown dtype"):
        InputSpec((2,), "float8")
    with pytest.raises(InputSpecError, match="not a Python identifier"):
        InputSpec((2,), name="a-b")


def test_check_input_specs():
    check_input_specs([InputSpec((1,), name="a"), InputSpec((2,)), InputSpec((3,), name="b")])
    with pytest.raises(InputSpecError) as info:
        check_input_specs([InputSpec((1,), name="a"), InputSpec((2,), name="a")])
    assert str(info.value) == "duplicate --input name 'a': give each keyword input once"


def test_parse_input_specs_checks_duplicates():
    assert parse_input_specs(["1,2", "m=1,2:bool"]) == [InputSpec((1, 2)), InputSpec((1, 2), "bool", "m")]
    with pytest.raises(InputSpecError, match="duplicate --input name 'm'"):
        parse_input_specs(["m=1", "m=2"])


def test_make_inputs():
    specs = [InputSpec((1, 3, 4, 4)), InputSpec((1, 5), "int32", "ids"), InputSpec((2,), "bfloat16"), InputSpec(())]
    args, kwargs = make_inputs(specs)
    assert [a.shape for a in args] == [(1, 3, 4, 4), (2,), ()]
    assert [a.dtype for a in args] == [mx.float32, mx.bfloat16, mx.float32]
    assert list(kwargs) == ["ids"]
    assert kwargs["ids"].shape == (1, 5) and kwargs["ids"].dtype == mx.int32
    assert mx.all(kwargs["ids"] == 0).item()


def test_make_inputs_big_shape_is_lazy():
    args, _ = make_inputs([InputSpec((1024, 1024, 1024))])
    assert args[0].shape == (1024, 1024, 1024)


def test_make_inputs_rejects_duplicates():
    with pytest.raises(InputSpecError, match="duplicate"):
        make_inputs([InputSpec((1,), name="a"), InputSpec((1,), name="a")])
