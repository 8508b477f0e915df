"""Errors mlx-report reports to users; each carries a one-line message and an exit code."""

from __future__ import annotations


class MlxReportError(Exception):
    """Base error: ``str(e)`` is the one-line message shown to the user."""

    exit_code = 1


class InputSpecError(MlxReportError):
    """A malformed ``--input`` spec."""

    exit_code = 2


class ModelLoadError(MlxReportError):
    """The model file, name or factory could not give an ``nn.Module``."""

    exit_code = 3


class TraceError(MlxReportError):
    """The traced forward pass failed."""

    exit_code = 4


class CheckpointError(MlxReportError):
    """A checkpoint could not be read or does not match the model."""

    exit_code = 5


class RenderError(MlxReportError):
    """A diagram, plot or document could not be rendered."""

    exit_code = 6


class OutputError(MlxReportError):
    """An output file could not be written."""

    exit_code = 7


INTERNAL_ERROR_EXIT = 70
"""Exit code of an unexpected exception, a bug in mlx-report (EX_SOFTWARE of sysexits.h)."""

FOREIGN_EXIT_EXIT = 1
"""Exit code when the model's own code raised SystemExit (or another BaseException)."""
