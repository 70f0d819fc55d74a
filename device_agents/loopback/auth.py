"""Device-side ADB authentication: verify a host's signature of a random token against
the keys the "phone" has accepted, as adbd does with ``/data/misc/adb/adb_keys``.

Keys are in Android's ``RSAPublicKey`` format (base64 of u32 words, n0inv, 256-byte
little-endian modulus, rr, u32 exponent), one per line followed by ``user@host``.
"""
from __future__ import annotations

import base64
import binascii
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

_ANDROID_PUBKEY = struct.Struct("<II256s256sI")
TOKEN_SIZE = 20


class BadPublicKey(ValueError):
    """Text that is not an Android RSA public key."""


def decode_android_pubkey(text: bytes | str) -> rsa.RSAPublicKey:
    """Parse ``<base64 RSAPublicKey> [user@host]`` (trailing NULs allowed)."""
    if isinstance(text, str):
        text = text.encode()
    fields = text.rstrip(b"\0").split()
    if not fields:
        raise BadPublicKey("empty public key")
    try:
        words, _n0inv, modulus, _rr, exponent = _ANDROID_PUBKEY.unpack(base64.b64decode(fields[0]))
    except (binascii.Error, struct.error) as exc:
        raise BadPublicKey(f"not an Android RSA public key: {exc}") from exc
    if words != 64:
        raise BadPublicKey(f"expected a 2048-bit key, got {words * 32} bits")
    return rsa.RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()


def new_token() -> bytes:
    return secrets.token_bytes(TOKEN_SIZE)


def signature_matches(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    """adb signs the token as an already-hashed SHA-1 digest with PKCS#1 v1.5."""
    try:
        key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except InvalidSignature:
        return False
    return True


class AuthorizedKeys:
    """The public keys the simulated user has accepted (an ``adb_keys`` file, or in memory)."""

    def __init__(self, keys_file: Path | None = None) -> None:
        self.keys_file = keys_file
        self.keys: list[rsa.RSAPublicKey] = []
        if keys_file is not None and keys_file.exists():
            for line in keys_file.read_text().splitlines():
                if line.strip():
                    self.keys.append(decode_android_pubkey(line))

    def add(self, public_key_text: bytes | str) -> None:
        key = decode_android_pubkey(public_key_text)
        self.keys.append(key)
        if self.keys_file is not None:
            text = public_key_text.decode() if isinstance(public_key_text, bytes) else public_key_text
            with self.keys_file.open("a") as handle:
                handle.write(text.rstrip("\0").strip() + "\n")

    def verify(self, token: bytes, signature: bytes) -> bool:
        return any(signature_matches(key, token, signature) for key in self.keys)
