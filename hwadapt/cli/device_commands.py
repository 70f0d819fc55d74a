"""``hwadapt device serve`` (the loopback ADB device) and ``hwadapt devices``."""
from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from hwadapt.cli.common import console
from hwadapt.errors import USER_ERRORS


def _stop_on_sigterm(*_args: object) -> None:
    raise KeyboardInterrupt  # stop as Ctrl-C does, removing the device's temporary folders


def serve(port: int = typer.Option(15037, min=1, max=65535,
                                   help="TCP port (avoid 5555-5585: adb probes them as emulators)."),
          host: str = typer.Option("127.0.0.1", help="Address to listen on; the shell runs host commands, "
                                                     "so keep it local."),
          sandbox: Optional[Path] = typer.Option(None, help="Folder served as /data/local/tmp (default: temporary)."),
          profile: Optional[Path] = typer.Option(None, help="Device profile JSON (getprop values, simulation)."),
          adb_keys: Optional[Path] = typer.Option(None, help="Require ADB auth; accepted public keys are kept here."),
          accept_new_keys: bool = typer.Option(False, help="With --adb-keys: accept unknown keys as if the user "
                                                           "tapped 'Allow' on the phone."),
          verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Start the loopback ADB device in the foreground (Ctrl-C stops it)."""
    from device_agents.loopback import AuthorizedKeys, DeviceProfile, LoopbackDevice

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(message)s")
    device_profile = DeviceProfile.load(profile) if profile else DeviceProfile()
    authorized = AuthorizedKeys(adb_keys) if adb_keys else None
    device = LoopbackDevice(port=port, host=host, sandbox=sandbox, profile=device_profile,
                            authorized=authorized, accept_new_keys=accept_new_keys)
    console.print(f"loopback ADB device [bold]{device_profile.props['ro.product.model']}[/] on {device.serial}; "
                  f"/data/local/tmp = {device.sandbox}\n"
                  "battery, thermal and CPU-frequency readings are SIMULATED (no phone here)\n"
                  f"use: hwadapt devices --tcp {device.serial}   |   --device tcp:{device.serial}   |   "
                  f"adb connect {device.serial}\nCtrl-C stops it.", highlight=False)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        device.serve_forever()
    except KeyboardInterrupt:
        console.print("loopback device stopped")
    finally:
        device.stop()


def devices(tcp: list[str] = typer.Option([], "--tcp", help="Also probe HOST:PORT (repeatable).")) -> None:
    """List reachable Android devices with their model, ABI and Android version."""
    from device_agents.android.agent import parse_getprop
    from device_agents.android.connection import AdbConnection, DeviceSpec, parse_device, usb_serials

    specs = [DeviceSpec("usb", serial) for serial in usb_serials()]
    specs += [parse_device(f"tcp:{address}") for address in tcp]
    if not specs:
        console.print("no Android device over USB; pass --tcp HOST:PORT, or start one with `hwadapt device serve`")
        return
    table = Table("device", "state", "model", "ABI", "Android")
    for spec in specs:
        connection = AdbConnection(spec, retries=0, auth_timeout_s=5.0, timeout_s=15.0)
        try:
            props = parse_getprop(connection.shell("getprop")[0])
            table.add_row(str(spec), "device", props.get("ro.product.model", "?"),
                          props.get("ro.product.cpu.abi", "?"), props.get("ro.build.version.release", "?"))
        except USER_ERRORS as exc:
            table.add_row(str(spec), "unavailable", str(exc), "", "")
        finally:
            connection.close()
    Console().print(table)
