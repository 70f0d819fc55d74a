"""``hwadapt``: profile devices, build and check LUTs, adapt networks.

The command modules hold plain functions; this module is the only one that knows the
command tree, and wraps every command so that errors are one line and a non-zero exit.
"""
from __future__ import annotations

import typer

from hwadapt.cli import (adapt_commands, device_commands, graft_commands, lottery_commands, lut_commands, rm_commands,
                         search_commands, stripe_commands)
from hwadapt.cli.common import friendly_errors
from hwadapt.cli.method_options import with_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Hardware-aware neural-network adaptation.")
lut_app = typer.Typer(no_args_is_help=True, help="Inspect and validate latency lookup tables.")
device_app = typer.Typer(no_args_is_help=True, help="A loopback ADB device to try the phone path without a phone.")
app.add_typer(lut_app, name="lut")
app.add_typer(device_app, name="device")

app.command("profile")(friendly_errors(lut_commands.profile))
app.command("families")(friendly_errors(lut_commands.families))
lut_app.command("show")(friendly_errors(lut_commands.show))
lut_app.command("validate")(friendly_errors(lut_commands.validate_cmd))
app.command("train")(friendly_errors(adapt_commands.train))
app.command("adapt")(with_settings(friendly_errors(adapt_commands.adapt)))
app.command("methods")(friendly_errors(adapt_commands.methods))
app.command("baseline")(friendly_errors(adapt_commands.baseline))
app.command("demo")(friendly_errors(adapt_commands.demo))
app.command("search")(friendly_errors(search_commands.search))
app.command("rm")(friendly_errors(rm_commands.rm))
app.command("lottery")(friendly_errors(lottery_commands.lottery))
app.command("supermask")(friendly_errors(lottery_commands.supermask))
app.command("stripe")(friendly_errors(stripe_commands.stripe))
app.command("graft")(friendly_errors(graft_commands.graft))
app.command("devices")(friendly_errors(device_commands.devices))
device_app.command("serve")(friendly_errors(device_commands.serve))
