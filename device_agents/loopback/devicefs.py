"""The loopback device's view of the file system.

File transfers (sync) may only touch ``/data/local/tmp``, which is the sandbox folder.
Shell commands run in a real host ``/bin/sh`` whose device paths are rewritten:
``/data/local/tmp`` to the sandbox and ``/sys`` to the simulated sysfs tree.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

DATA_DIR = "/data/local/tmp"
_SHELL_SAFE = re.compile(r"[\w./+-]+")
_DEVICE_ROOTS = re.compile(r"(?<![\w./-])(/data/local/tmp|/sys)(?=[/\s'\";|&)]|$)")


class OutsideSandbox(PermissionError):
    """A device path that the loopback device refuses to serve."""


class DeviceFS:
    def __init__(self, sandbox: Path, sys_root: Path) -> None:
        for folder in (sandbox, sys_root):
            if not _SHELL_SAFE.fullmatch(str(folder.resolve())):
                raise ValueError(f"folder {folder} must not contain spaces or shell metacharacters")
        self.sandbox = sandbox.resolve()
        self.sys_root = sys_root.resolve()

    def resolve(self, device_path: str) -> Path:
        """The host path behind ``device_path``, which must lie inside /data/local/tmp."""
        if "\0" in device_path:
            raise OutsideSandbox("NUL in path")
        normal = posixpath.normpath(device_path)
        if normal != DATA_DIR and not normal.startswith(DATA_DIR + "/"):
            raise OutsideSandbox(f"outside the sandbox: only {DATA_DIR} is served by the loopback device")
        host = self.sandbox / normal[len(DATA_DIR):].lstrip("/")
        real = host.resolve()  # follows symlinks that could point outside
        if real != self.sandbox and not real.is_relative_to(self.sandbox):
            raise OutsideSandbox(f"resolves outside {DATA_DIR}")
        return host

    def translate_command(self, command: str) -> str:
        """Rewrite device paths in a shell command to their host folders."""
        roots = {DATA_DIR: str(self.sandbox), "/sys": str(self.sys_root)}
        return _DEVICE_ROOTS.sub(lambda match: roots[match.group(1)], command)
