"""The loopback ADB device: a TCP server speaking the device side of the ADB protocol.

It stands in for a phone in tests and for users without one. File transfers are confined
to a sandbox folder served as ``/data/local/tmp``; shell commands run on this host; battery,
thermal and CPU-frequency readings are SIMULATED (see :mod:`.simulation`).
"""
from __future__ import annotations

import logging
import os
import random
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from device_agents.base import AgentError
from device_agents.loopback import wire
from device_agents.loopback.auth import AuthorizedKeys, BadPublicKey, new_token
from device_agents.loopback.devicefs import DeviceFS
from device_agents.loopback.profile import DeviceProfile
from device_agents.loopback.services import SyncSession, run_shell
from device_agents.loopback.simulation import HardwareSimulation, ProcessGroupLoad
from device_agents.loopback.standin import install_benchmark_standin, install_getprop
from device_agents.loopback.streams import Stream, StreamClosed
from device_agents.loopback.wire import Packet

log = logging.getLogger(__name__)


@dataclass
class DisconnectPlan:
    """Fault injection: drop the TCP connection ``count`` times, each after a random
    number of received packets in ``[min_packets, max_packets]``."""

    count: int
    min_packets: int = 3
    max_packets: int = 40
    seed: int = 0
    done: int = 0
    rng: random.Random = field(init=False)
    countdown: int = field(init=False)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.countdown = self.rng.randint(self.min_packets, self.max_packets)

    def should_drop(self) -> bool:
        with self.lock:
            if self.done >= self.count:
                return False
            self.countdown -= 1
            if self.countdown > 0:
                return False
            self.done += 1
            self.countdown = self.rng.randint(self.min_packets, self.max_packets)
            return True


class LoopbackDevice:
    """``with LoopbackDevice(port=0) as device: ... device.serial`` -> ``"127.0.0.1:PORT"``."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", sandbox: Path | None = None,
                 profile: DeviceProfile | None = None, authorized: AuthorizedKeys | None = None,
                 accept_new_keys: bool = False, disconnects: DisconnectPlan | None = None) -> None:
        self.profile = profile or DeviceProfile()
        self.workdir = Path(tempfile.mkdtemp(prefix="hwadapt-loopback-"))
        self.sandbox = Path(sandbox) if sandbox else self.workdir / "data_local_tmp"
        self.sandbox.mkdir(parents=True, exist_ok=True)
        try:
            self.fs = DeviceFS(self.sandbox, self.workdir / "sys")
        except ValueError as exc:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise AgentError(str(exc)) from None
        self.load = ProcessGroupLoad()
        self.simulation = HardwareSimulation(self.profile, self.fs.sys_root, self.load)
        bin_dir = self.workdir / "bin"
        install_getprop(bin_dir, self.profile.props)
        install_benchmark_standin(self.sandbox)
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.authorized, self.accept_new_keys, self.disconnects = authorized, accept_new_keys, disconnects
        try:
            self.server = socket.create_server((host, port))
        except OSError as exc:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise AgentError(f"the loopback device cannot listen on {host}:{port}: {exc.strerror}") from None
        self.host, self.port = self.server.getsockname()[:2]
        self.connections: set[socket.socket] = set()
        self.stopped = threading.Event()

    @property
    def serial(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LoopbackDevice:
        self.simulation.start()
        threading.Thread(target=self._accept_loop, name="loopback-accept", daemon=True).start()
        return self

    def serve_forever(self) -> None:
        self.simulation.start()
        self._accept_loop()

    def stop(self) -> None:
        self.stopped.set()
        self.simulation.stop()
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        for conn in list(self.connections):
            _drop(conn)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LoopbackDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections.add(conn)
            threading.Thread(target=Connection(self, conn).run, name="loopback-conn", daemon=True).start()


def _drop(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


class Connection:
    """One host connection: handshake, optional AUTH, then multiplexed streams."""

    def __init__(self, device: LoopbackDevice, sock: socket.socket) -> None:
        self.device, self.sock = device, sock
        self.send_lock = threading.Lock()
        self.max_payload = wire.MAX_PAYLOAD_V1
        self.online = False
        self.token = b""
        self.streams: dict[int, Stream] = {}
        self.next_id = 1

    def send(self, packet: Packet) -> None:
        with self.send_lock:
            self.sock.sendall(packet.encode())

    def run(self) -> None:
        try:
            while True:
                packet = wire.read_packet(self.sock)
                if self.device.disconnects and self.device.disconnects.should_drop():
                    log.info("fault injection: dropping the connection")
                    break
                self.handle(packet)
        except (OSError, wire.ProtocolError) as exc:
            log.debug("connection ended: %s", exc)
        finally:
            for stream in list(self.streams.values()):
                stream.closed = True
                stream.inbox.put(None)
                for callback in stream.on_close:
                    callback()
            self.device.connections.discard(self.sock)
            _drop(self.sock)

    def handle(self, packet: Packet) -> None:
        if packet.command == wire.CNXN:
            self.max_payload = min(packet.arg1, wire.MAX_PAYLOAD)
            if self.device.authorized is None:
                self.go_online()
            else:
                self.send_token()
        elif packet.command == wire.AUTH:
            self.handle_auth(packet)
        elif not self.online:
            raise wire.ProtocolError(f"{packet.name} before the connection was authorised")
        elif packet.command == wire.OPEN:
            self.open_stream(packet)
        else:
            self.handle_stream_packet(packet)

    def go_online(self) -> None:
        self.online = True
        self.send(Packet(wire.CNXN, wire.A_VERSION, self.max_payload, self.device.profile.banner()))

    def send_token(self) -> None:
        self.token = new_token()
        self.send(Packet(wire.AUTH, wire.AUTH_TOKEN, 0, self.token))

    def handle_auth(self, packet: Packet) -> None:
        authorized = self.device.authorized
        if authorized is None or self.online:
            return
        if packet.arg0 == wire.AUTH_SIGNATURE:
            if authorized.verify(self.token, packet.payload):
                self.go_online()
            else:
                self.send_token()
        elif packet.arg0 == wire.AUTH_RSAPUBLICKEY:
            if not self.device.accept_new_keys:
                log.warning("unknown host key: the (simulated) user has not accepted the prompt")
                return  # like a phone whose prompt nobody answers
            try:
                authorized.add(packet.payload)
            except BadPublicKey as exc:
                log.warning("rejected public key: %s", exc)
                return
            self.go_online()

    def open_stream(self, packet: Packet) -> None:
        service = packet.payload.rstrip(b"\0").decode("utf-8", "surrogateescape")
        target = self.service_target(service)
        if target is None:
            self.send(Packet(wire.CLSE, 0, packet.arg0))
            return
        stream = Stream(self.send, self.max_payload, self.next_id, packet.arg0)
        self.streams[stream.local_id] = stream
        self.next_id += 1
        self.send(Packet(wire.OKAY, stream.local_id, stream.remote_id))
        threading.Thread(target=self.serve_stream, args=(stream, target), daemon=True).start()

    def service_target(self, service: str):
        device = self.device
        for prefix in ("shell:", "exec:"):
            if service.startswith(prefix):
                command = service[len(prefix):]
                return lambda stream: run_shell(stream, command, device.fs, device.load, device.env)
        if service == "sync:":
            return lambda stream: SyncSession(stream, device.fs).run()
        return None

    def serve_stream(self, stream: Stream, target) -> None:
        try:
            target(stream)
        except StreamClosed:
            pass
        except Exception:  # a broken request must not take the device down
            log.exception("stream %d failed", stream.local_id)
        finally:
            stream.close()
            self.streams.pop(stream.local_id, None)

    def handle_stream_packet(self, packet: Packet) -> None:
        stream = self.streams.get(packet.arg1)
        if stream is None:
            return  # a late packet for a stream that is already closed
        if packet.command == wire.WRTE:
            stream.deliver(packet.payload)
            self.send(Packet(wire.OKAY, stream.local_id, stream.remote_id))
        elif packet.command == wire.OKAY:
            stream.okay()
        elif packet.command == wire.CLSE:
            stream.close()
            self.streams.pop(stream.local_id, None)
