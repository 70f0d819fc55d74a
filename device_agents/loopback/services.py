"""The services a host can OPEN on the loopback device: ``shell:``/``exec:`` (v1: merged
stdout+stderr, no exit status) and ``sync:`` (STAT, LIST, SEND, RECV, QUIT)."""
from __future__ import annotations

import os
import signal
import stat
import struct
import subprocess
from pathlib import Path

from device_agents.loopback.devicefs import DeviceFS, OutsideSandbox
from device_agents.loopback.simulation import ProcessGroupLoad
from device_agents.loopback.streams import Stream, StreamClosed

SYNC_HEADER = struct.Struct("<4sI")
SYNC_STAT = struct.Struct("<4s3I")
SYNC_DENT = struct.Struct("<4s4I")
SYNC_DATA_MAX = 64 * 1024
MAX_PATH = 1024


def run_shell(stream: Stream, command: str, fs: DeviceFS, load: ProcessGroupLoad, env: dict[str, str]) -> None:
    if not command.strip():
        stream.write(b"loopback device: no interactive shell; run `adb shell <command>`\n")
        return
    process = subprocess.Popen(["/bin/sh", "-c", fs.translate_command(command)], cwd=fs.sandbox, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    load.register(process.pid)

    def hang_up() -> None:  # adbd's shell dies with its stream
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    stream.on_close.append(hang_up)
    try:
        while chunk := os.read(process.stdout.fileno(), 65536):
            stream.write(chunk)
    except StreamClosed:
        hang_up()
    finally:
        process.stdout.close()
        process.wait()
        load.unregister(process.pid)


class SyncSession:
    """The device side of ``sync:``, reading requests from the stream's byte stream."""

    def __init__(self, stream: Stream, fs: DeviceFS) -> None:
        self.stream, self.fs = stream, fs

    def run(self) -> None:
        handlers = {b"STAT": self.stat, b"LIST": self.list, b"SEND": self.send, b"RECV": self.recv}
        while (header := self.stream.read_exact(SYNC_HEADER.size)) is not None:
            request, length = SYNC_HEADER.unpack(header)
            if request == b"QUIT":
                return
            if request not in handlers or length > MAX_PATH:
                self.fail(f"unsupported sync request {request!r}")
                return
            path = self.stream.read_exact(length)
            if path is None:
                return
            if not handlers[request](path.decode("utf-8", "surrogateescape")):
                return

    def fail(self, message: str) -> None:
        data = message.encode()
        self.stream.write(SYNC_HEADER.pack(b"FAIL", len(data)) + data)

    def stat(self, path: str) -> bool:
        try:
            info = os.lstat(self.fs.resolve(path))
            reply = SYNC_STAT.pack(b"STAT", info.st_mode, info.st_size & 0xFFFFFFFF, int(info.st_mtime))
        except (OSError, OutsideSandbox):
            reply = SYNC_STAT.pack(b"STAT", 0, 0, 0)  # adbd: a failed lstat is all zeros
        self.stream.write(reply)
        return True

    def list(self, path: str) -> bool:
        out = bytearray()
        try:
            folder = self.fs.resolve(path)
            names = [".", ".."] + sorted(os.listdir(folder))
        except (OSError, OutsideSandbox):
            names, folder = [], Path()
        for name in names:
            try:
                info = os.lstat(folder / name)
            except OSError:
                continue
            encoded = name.encode("utf-8", "surrogateescape")
            out += SYNC_DENT.pack(b"DENT", info.st_mode, info.st_size & 0xFFFFFFFF, int(info.st_mtime), len(encoded))
            out += encoded
        out += SYNC_DENT.pack(b"DONE", 0, 0, 0, 0)
        self.stream.write(bytes(out))
        return True

    def _receive_file(self, handle) -> int | None:
        """Copy DATA chunks until DONE; returns DONE's mtime, or None if the stream ended."""
        while (header := self.stream.read_exact(SYNC_HEADER.size)) is not None:
            kind, value = SYNC_HEADER.unpack(header)
            if kind == b"DONE":
                return value
            if kind != b"DATA" or value > SYNC_DATA_MAX:
                raise ValueError(f"bad sync chunk {kind!r} of {value} bytes")
            data = self.stream.read_exact(value)
            if data is None:
                return None
            if handle is not None:
                handle.write(data)
        return None

    def send(self, spec: str) -> bool:
        path, _, mode_text = spec.rpartition(",")
        try:
            target = self.fs.resolve(path)
            mode = int(mode_text)
            if target.is_dir():
                raise IsADirectoryError(f"{path} is a directory")
            target.parent.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError, OutsideSandbox) as exc:
            self._receive_file(None)  # drain the data the host sends regardless
            self.fail(f"{path}: {exc}")
            return True
        partial = target.with_name(f".{target.name}.partial")
        with partial.open("wb") as handle:
            mtime = self._receive_file(handle)
        if mtime is None:
            partial.unlink(missing_ok=True)  # connection lost mid-file: keep no half file
            return False
        os.chmod(partial, stat.S_IMODE(mode) or 0o644)
        os.utime(partial, (mtime, mtime))
        os.replace(partial, target)
        self.stream.write(SYNC_HEADER.pack(b"OKAY", 0))
        return True

    def recv(self, path: str) -> bool:
        try:
            with self.fs.resolve(path).open("rb") as handle:
                while chunk := handle.read(SYNC_DATA_MAX):
                    self.stream.write(SYNC_HEADER.pack(b"DATA", len(chunk)) + chunk)
        except (OSError, OutsideSandbox) as exc:
            self.fail(f"{path}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")
            return True
        self.stream.write(SYNC_HEADER.pack(b"DONE", 0))
        return True
