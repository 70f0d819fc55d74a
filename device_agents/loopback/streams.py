"""One ADB stream on the device side: an inbox for the host's WRTE payloads and a
writer that keeps at most one WRTE outstanding until the host's OKAY."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from device_agents.loopback.wire import CLSE, WRTE, Packet


class StreamClosed(Exception):
    """The host closed the stream, or the connection went away."""


class Stream:
    def __init__(self, send: Callable[[Packet], None], max_payload: int, local_id: int, remote_id: int) -> None:
        self.send, self.max_payload = send, max_payload
        self.local_id, self.remote_id = local_id, remote_id
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.buffer = bytearray()
        self.acked = threading.Event()
        self.acked.set()
        self.closed = False
        self.on_close: list[Callable[[], None]] = []
        self.lock = threading.Lock()

    # host -> device
    def deliver(self, data: bytes) -> None:
        self.inbox.put(data)

    def read_exact(self, size: int) -> bytes | None:
        """``size`` bytes of the host's byte stream (sync spans WRTE boundaries); None once closed."""
        while len(self.buffer) < size:
            chunk = self.inbox.get()
            if chunk is None:
                self.inbox.put(None)
                return None
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    # device -> host
    def write(self, data: bytes) -> None:
        for start in range(0, len(data), self.max_payload):
            while not self.acked.wait(0.5):
                if self.closed:
                    break
            if self.closed:
                raise StreamClosed("stream closed by the host")
            self.acked.clear()
            self.send(Packet(WRTE, self.local_id, self.remote_id, data[start:start + self.max_payload]))

    def okay(self) -> None:
        self.acked.set()

    def close(self) -> None:
        """Close from the device side, or echo the host's CLSE as adbd does; idempotent."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
        self.inbox.put(None)
        self.acked.set()
        for callback in self.on_close:
            callback()
        try:
            self.send(Packet(CLSE, self.local_id, self.remote_id))
        except OSError:
            pass  # the connection is gone; nothing to tell the host
