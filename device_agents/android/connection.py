"""A resilient ADB connection (pure-Python ``adb-shell``; no Android SDK on the host).

``usb:SERIAL`` uses adb-shell's USB transport (needs ``adb-shell[usb]``), ``tcp:HOST:PORT``
its TCP transport. Every operation reconnects and retries, a bounded number of times,
when the link drops; operations are idempotent (a push rewrites the file, a benchmark run
is repeated), so a retry never records a half result.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from device_agents.android.errors import DeviceAuthRefused, DeviceDisconnected, DeviceNotFound

log = logging.getLogger(__name__)
T = TypeVar("T")
RC_MARK = "__HWADAPT_RC="
ADB_INTERFACE = ("ff", "42", "01")  # class, subclass, protocol of the ADB USB interface


@dataclass(frozen=True)
class DeviceSpec:
    transport: str  # "usb" or "tcp"
    address: str  # serial, or host:port

    def __str__(self) -> str:
        return f"{self.transport}:{self.address}"


def parse_device(text: str) -> DeviceSpec:
    transport, _, address = text.partition(":")
    if transport == "tcp" and address.rpartition(":")[2].isdigit() and address.rpartition(":")[0]:
        return DeviceSpec("tcp", address)
    if transport == "usb" and address:
        return DeviceSpec("usb", address)
    raise DeviceNotFound(f"--device {text!r}: expected usb:SERIAL or tcp:HOST:PORT")


def usb_serials(sysfs: Path = Path("/sys/bus/usb/devices")) -> list[str]:
    """Serials of attached USB devices with an ADB interface (Linux sysfs; no libusb needed)."""
    serials = []
    for interface in sorted(sysfs.glob("*:*")):
        try:
            triple = tuple((interface / name).read_text().strip()
                           for name in ("bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"))
            if triple == ADB_INTERFACE:
                serials.append((interface.resolve().parent / "serial").read_text().strip())
        except OSError:
            continue
    return sorted(set(serials))


def resolve_device(device: str | None) -> DeviceSpec:
    if device:
        return parse_device(device)
    serials = usb_serials()
    if len(serials) == 1:
        return DeviceSpec("usb", serials[0])
    if not serials:
        raise DeviceNotFound("no Android device found over USB; plug one in with USB debugging on, or pass "
                             "--device tcp:HOST:PORT (try `hwadapt device serve` for a loopback device)")
    raise DeviceNotFound(f"{len(serials)} devices attached ({', '.join(serials)}); choose one with "
                         "--device usb:SERIAL")


def adb_key_path() -> Path:
    """Reuse ``~/.android/adbkey`` when it exists, else one key kept in the user's config dir."""
    android = Path.home() / ".android" / "adbkey"
    if android.exists() and android.with_suffix(".pub").exists():
        return android
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "hwadapt" / "adbkey"
    if not config.exists():
        from adb_shell.auth.keygen import keygen

        config.parent.mkdir(parents=True, exist_ok=True)
        keygen(str(config))
        config.chmod(0o600)
        log.info("created the ADB key %s (the phone will ask once to accept it)", config)
    return config


def _tcp_transport(host: str, port: int):
    from adb_shell.transport.tcp_transport import TcpTransport

    class ClosingAwareTcpTransport(TcpTransport):
        """adb-shell spins on a closed socket until its read timeout; fail at once instead."""

        def bulk_read(self, numbytes, transport_timeout_s):
            data = super().bulk_read(numbytes, transport_timeout_s)
            if not data:
                raise ConnectionResetError(f"{host}:{port} closed the connection")
            return data

    return ClosingAwareTcpTransport(host, port)


def _transient_errors() -> tuple[type[BaseException], ...]:
    from adb_shell import exceptions as ex

    return (OSError, ex.TcpTimeoutException, ex.AdbConnectionError, ex.AdbTimeoutError, ex.InvalidChecksumError,
            ex.InvalidCommandError, ex.InvalidResponseError, ex.UsbReadFailedError, ex.UsbWriteFailedError)


class AdbConnection:
    def __init__(self, spec: DeviceSpec, key_path: Path | None = None, retries: int = 5,
                 auth_timeout_s: float = 10.0, timeout_s: float = 600.0) -> None:
        self.spec, self.retries, self.auth_timeout_s, self.timeout_s = spec, retries, auth_timeout_s, timeout_s
        self.key_path = key_path
        self.device = None
        self.reconnects = 0

    def _make_device(self):
        from adb_shell.adb_device import AdbDevice

        if self.spec.transport == "tcp":
            host, _, port = self.spec.address.rpartition(":")
            return AdbDevice(_tcp_transport(host, int(port)), default_transport_timeout_s=self.timeout_s)
        try:
            from adb_shell.transport.usb_transport import UsbTransport
        except ImportError as exc:
            raise DeviceNotFound("USB needs `pip install adb-shell[usb]` (libusb1); or use adb over TCP "
                                 "(`adb tcpip 5555`, then --device tcp:PHONE_IP:5555)") from exc
        return AdbDevice(UsbTransport.find_adb(serial=self.spec.address), default_transport_timeout_s=self.timeout_s)

    def connect(self) -> None:
        try:
            from adb_shell import exceptions as ex
            from adb_shell.auth.sign_cryptography import CryptographySigner
        except ImportError as exc:
            raise DeviceNotFound(f"Android devices need `pip install hwadapt[android]` ({exc})") from exc

        signer = CryptographySigner(str(self.key_path or adb_key_path()))
        prompted = []
        self.device = self._make_device()
        try:
            self.device.connect(rsa_keys=[signer], transport_timeout_s=self.auth_timeout_s,
                                auth_timeout_s=self.auth_timeout_s, auth_callback=lambda _d: prompted.append(1))
        except (ex.TcpTimeoutException, ex.AdbTimeoutError, ex.DeviceAuthError) as exc:
            self.device.close()
            if prompted or isinstance(exc, ex.DeviceAuthError):
                raise DeviceAuthRefused(f"{self.spec} did not accept this computer's ADB key: accept the "
                                        "'Allow USB debugging?' prompt on the phone, then run again") from None
            raise

    def call(self, what: str, operation: Callable[[object], T]) -> T:
        """Run ``operation(adb_device)``, reconnecting and retrying when the link drops."""
        transient = _transient_errors()
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            try:
                if self.device is None or not self.device.available:
                    if attempt:
                        self.reconnects += 1
                    self.connect()
                return operation(self.device)
            except transient as exc:
                last = exc
                if attempt == self.retries:
                    break
                log.warning("%s: %s failed (%s); reconnecting (%d/%d)", self.spec, what, exc, attempt + 1,
                            self.retries)
                self.close()
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
        raise DeviceDisconnected(f"no connection to {self.spec} during {what} ({self.retries + 1} tries): "
                                 f"{last}")

    def shell(self, command: str, timeout_s: float | None = None) -> tuple[str, int]:
        """Output and exit status of ``command`` (shell v1 has none, so it is echoed after a mark)."""
        timeout = timeout_s or self.timeout_s

        def run(device) -> str:
            return device.shell(f"{command}; echo {RC_MARK}$?", transport_timeout_s=timeout,
                                read_timeout_s=timeout, timeout_s=timeout, decode=False).decode("utf-8", "replace")

        output = self.call(f"`{command[:60]}`", run)
        text, mark, rest = output.rpartition(RC_MARK)
        if not mark:
            raise DeviceDisconnected(f"{self.spec}: shell output ended early: {output[-200:]!r}")
        return text, int(rest.strip() or 1)

    def push(self, local: Path, remote: str, mode: int = 0o644) -> None:
        self.call(f"push {local.name}", lambda device: device.push(str(local), remote, st_mode=0o100000 | mode,
                                                                   read_timeout_s=self.timeout_s))

    def close(self) -> None:
        if self.device is not None:
            self.device.close()
        self.device = None
