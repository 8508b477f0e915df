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

try:  # typer >= 0.2x vendors click as typer._click; its exceptions are not click's
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer, on click itself
    from click import exceptions as _click_exceptions
_NO_ARGS_IS_HELP = getattr(_click_exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


def _one_line(text: str) -> str:
    """`text` on one line: newlines and runs of blanks become one space."""
    return " ".join(text.split())


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
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as e:  # `mlx-report` alone: the help
            typer.echo(e.ctx.get_help())
            sys.exit(e.exit_code)
        except _click_exceptions.ClickException as e:
            typer.echo(f"error: {_usage_message(e)}", err=True)
            sys.exit(e.exit_code)
        except _click_exceptions.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_message(e: Exception) -> str:
    """click's message, lower-cased as ours are, on one line, with where to find help."""
    message = _one_line(e.format_message()).replace(": Value error, ", ": ").rstrip(".")
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
