"""ADB packets as the device side sends and receives them (see AOSP ``adb/protocol.txt``).

A packet is a 24-byte header of six little-endian u32 -- command, arg0, arg1, payload
length, payload byte sum, command ^ 0xFFFFFFFF -- followed by the payload.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

HEADER = struct.Struct("<6I")


def _command(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


CNXN, AUTH, OPEN, OKAY, CLSE, WRTE = (_command(n) for n in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"CLSE", b"WRTE"))
KNOWN_COMMANDS = {CNXN, AUTH, OPEN, OKAY, CLSE, WRTE}

A_VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024
MAX_PAYLOAD_V1 = 4096
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3


class ProtocolError(ConnectionError):
    """The peer sent something that is not an ADB packet; the connection is dropped."""


@dataclass(frozen=True)
class Packet:
    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return struct.pack("<I", self.command).decode("ascii", "replace")

    def encode(self) -> bytes:
        """The wire bytes. The checksum is always the real byte sum: adb-shell verifies it."""
        checksum = sum(self.payload) & 0xFFFFFFFF
        header = HEADER.pack(self.command, self.arg0, self.arg1, len(self.payload), checksum,
                             self.command ^ 0xFFFFFFFF)
        return header + self.payload


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 16))
        if not chunk:
            raise ConnectionResetError("peer closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_packet(sock: socket.socket, max_payload: int = MAX_PAYLOAD) -> Packet:
    """Read one packet. Incoming checksums are not verified: adb >= 29 sends 0 at A_VERSION."""
    command, arg0, arg1, length, _checksum, magic = HEADER.unpack(_recv_exactly(sock, HEADER.size))
    if magic != command ^ 0xFFFFFFFF or command not in KNOWN_COMMANDS:
        raise ProtocolError(f"not an ADB packet (command {command:#x}, magic {magic:#x})")
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds the negotiated {max_payload}")
    return Packet(command, arg0, arg1, _recv_exactly(sock, length) if length else b"")
