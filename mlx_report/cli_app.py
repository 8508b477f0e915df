"""The typer app behind `mlx-report`: plain click help and one-line usage errors.

Typer's Rich help shows a `<bool>` placeholder on every flag, writes required arguments
as `{model}` and cuts long words at 80 columns; its usage errors are boxed panels. The
classes here keep click's plain conventions instead, so cli.py only declares commands.
"""

from __future__ import annotations

import functools
import sys

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from .errors import INTERNAL_ERROR_EXIT, MlxReportError
from .escape import one_line_safe
from .versions import check_mlx

# typer >= 0.26 vendors click; from 0.28 its usage errors derive from the public
# typer.TyperException (not click's ClickException): only public names are used here.
_USAGE_ERROR = typer.TyperException
BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`


class _Command(TyperCommand):
    """A command whose usage line reads `mlx-report summary [OPTIONS] MODEL`.

    Typer writes a required argument as `{model}` in the usage line and adds a `<str>`
    placeholder to it in the Arguments section; click's convention is the bare metavar.
    """

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx, formatter) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                args.append(((param.metavar or param.name or "").upper(), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class _Group(TyperGroup):
    """The app: every usage error is one line, `error: ...`, with click's exit code 2.

    Typer prints click's usage errors as a boxed panel after the usage line; the app runs
    click in non-standalone mode and prints the message itself.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        args = sys.argv[1:] if args is None else list(args)
        if not args:  # `mlx-report` alone: the help, with click's exit code for it
            args, help_code = ["--help"], 2
        else:
            help_code = None
        _safe_streams()
        try:
            check_mlx()
        except MlxReportError as e:
            typer.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _USAGE_ERROR as e:
            typer.echo(f"error: {_usage_message(e)}", err=True)
            sys.exit(getattr(e, "exit_code", 2))
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except BrokenPipeError:
            quiet_broken_pipe()
        except Exception as e:  # a bug that escaped the command's own handler
            report_internal_error(e, debug="--debug" in args)
            sys.exit(INTERNAL_ERROR_EXIT)
        if help_code is not None:
            sys.exit(help_code)
        sys.exit(code if isinstance(code, int) else 0)


def _safe_streams() -> None:
    """Never fail on a name stdout cannot encode (LANG=C, PYTHONIOENCODING=ascii, lone
    surrogates): such characters are written as `\\u2713` escapes instead."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a closed or foreign stream
                pass


def quiet_broken_pipe() -> None:
    """The reader of stdout went away (`| head -1`): stop quietly, as other tools do.

    Python would report the failed flush at exit; pointing stdout at /dev/null first
    prevents that (see the `signal` module's documentation on SIGPIPE).
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass
    sys.exit(BROKEN_PIPE_EXIT)


def internal_error_line(e: BaseException) -> str:
    """The one line for an exception mlx-report did not expect: a bug to report."""
    return (f"error: internal error: {one_line_safe(f'{type(e).__name__}: {e}')} "
            "(please report; rerun with --debug for the traceback)")


def report_internal_error(e: BaseException, debug: bool) -> None:
    """Print the traceback with --debug, then the one-line internal error."""
    if debug:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__)
    typer.echo(internal_error_line(e), err=True)


def _usage_message(e: Exception) -> str:
    """click's message, lower-cased as ours are, on one line, with where to find help."""
    message = one_line_safe(e.format_message()).replace(": Value error, ", ": ").rstrip(".")
    if len(message) > 1 and message[0].isupper() and message[1].islower():
        message = message[0].lower() + message[1:]
    ctx = getattr(e, "ctx", None)
    if ctx is not None:
        message += f"; see '{ctx.command_path} --help'"
    return message


app = typer.Typer(
    name="mlx-report", cls=_Group, add_completion=False, no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: typer's Rich help shows a `<bool>` placeholder on every flag and cuts
    # long words (lists of choices) with an ellipsis at 80 columns.
    rich_markup_mode=None,
    help="See an MLX model: shapes, parameters, MACs and memory of one lazy forward pass.",
)
command = functools.partial(app.command, cls=_Command)
