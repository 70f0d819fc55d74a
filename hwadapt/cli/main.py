"""``hwadapt``: profile devices, build and check LUTs, adapt networks."""
from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Hardware-aware neural-network adaptation.")
lut_app = typer.Typer(no_args_is_help=True, help="Inspect and validate latency lookup tables.")
app.add_typer(lut_app, name="lut")

# Sub-command modules register themselves on `app` / `lut_app` when imported.
from hwadapt.cli import lut_commands  # noqa: E402,F401
from hwadapt.cli import search_commands  # noqa: E402,F401
from hwadapt.cli import device_commands  # noqa: E402,F401
from hwadapt.cli import adapt_commands  # noqa: E402,F401
