"""The loopback ADB device against real clients: Debian's adb 29 and adb-shell."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.exceptions import AdbCommandFailureException

from device_agents.android.connection import AdbConnection, DeviceSpec
from device_agents.android.errors import DeviceAuthRefused
from device_agents.loopback import AuthorizedKeys, LoopbackDevice
from device_agents.loopback.devicefs import DeviceFS, OutsideSandbox

ADB = shutil.which("adb")


@pytest.fixture(scope="module")
def device():
    with LoopbackDevice(port=0) as dev:
        yield dev


@pytest.fixture(scope="module")
def adb_key(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "adbkey"
    keygen(str(path))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def adb(device, tmp_path_factory):
    """Debian adb with a private server (its own port and HOME), killed at teardown."""
    if ADB is None:
        pytest.skip("Debian adb is not installed (apt-get install -y adb)")
    home = tmp_path_factory.mktemp("adb-home")
    base = [ADB, "-P", str(_free_port())]
    env = {**os.environ, "HOME": str(home)}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60, env=env)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    run("start-server")
    try:
        assert "connected" in run("connect", device.serial).stdout
        yield lambda *args, check=True: run("-s", device.serial, *args, check=check)
    finally:
        run("kill-server", check=False)


def test_debian_adb_lists_and_runs_shell(adb, device):
    listing = adb("devices", "-l").stdout
    assert f"{device.serial}        device product:hwadapt_loopback model:Loopback_Device" in listing
    out = adb("shell", "echo hello from; getprop ro.product.model").stdout
    assert out.splitlines() == ["hello from", "Loopback Device"]


def test_debian_adb_push_pull_is_byte_exact(adb, device, tmp_path):
    payload = os.urandom(300_000)  # several 64 KiB sync chunks
    source, back = tmp_path / "blob.bin", tmp_path / "back.bin"
    source.write_bytes(payload)
    adb("push", str(source), "/data/local/tmp/")
    assert (device.sandbox / "blob.bin").read_bytes() == payload
    adb("pull", "/data/local/tmp/blob.bin", str(back))
    assert back.read_bytes() == payload


def test_debian_adb_push_outside_the_sandbox_is_refused(adb, tmp_path):
    source = tmp_path / "x.txt"
    source.write_text("x")
    result = adb("push", str(source), "/system/x.txt", check=False)
    assert result.returncode != 0 and "only /data/local/tmp" in result.stdout + result.stderr
    assert not os.path.exists("/system/x.txt")


def test_adb_shell_pull_outside_the_sandbox_is_refused(device, tmp_path):
    client = AdbDeviceTcp("127.0.0.1", device.port, default_transport_timeout_s=10)
    client.connect()
    try:
        for path in ("/etc/passwd", "/data/local/tmp/../../../etc/passwd"):
            with pytest.raises(AdbCommandFailureException, match="outside the sandbox"):
                client.pull(path, str(tmp_path / "stolen"))
        assert client.stat("/etc/passwd") == (0, 0, 0)
    finally:
        client.close()


def test_symlinks_cannot_escape_the_sandbox(tmp_path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "escape").symlink_to("/etc")
    fs = DeviceFS(sandbox, tmp_path / "sys")
    assert fs.resolve("/data/local/tmp/a/b") == sandbox / "a" / "b"
    with pytest.raises(OutsideSandbox):
        fs.resolve("/data/local/tmp/escape/passwd")
    with pytest.raises(OutsideSandbox):
        fs.resolve("/data/local/tmpfoo")


def test_shell_paths_are_translated_only_as_whole_device_paths(tmp_path):
    fs = DeviceFS(tmp_path / "s", tmp_path / "y")
    command = fs.translate_command("cat '/data/local/tmp/a b' /sys/class/x /usr/sys/z /data/local/tmpx")
    assert command == f"cat '{fs.sandbox}/a b' {fs.sys_root}/class/x /usr/sys/z /data/local/tmpx"


def _auth_device(tmp_path, keys: list, accept_new: bool = False) -> LoopbackDevice:
    authorized = AuthorizedKeys(tmp_path / "adb_keys")
    for key in keys:
        authorized.add(key.with_name(key.name + ".pub").read_text())
    return LoopbackDevice(port=0, authorized=authorized, accept_new_keys=accept_new)


def test_auth_accepts_a_known_key(tmp_path, adb_key):
    with _auth_device(tmp_path, [adb_key]) as dev:
        client = AdbDeviceTcp("127.0.0.1", dev.port, default_transport_timeout_s=10)
        assert client.connect(rsa_keys=[CryptographySigner(str(adb_key))], auth_timeout_s=2)
        assert client.shell("echo authorised").strip() == "authorised"
        client.close()


def test_auth_refuses_an_unknown_key_with_a_clear_message(tmp_path, adb_key):
    other = tmp_path / "other"
    keygen(str(other))
    with _auth_device(tmp_path, [other]) as dev:
        connection = AdbConnection(DeviceSpec("tcp", dev.serial), key_path=adb_key, retries=0, auth_timeout_s=1)
        with pytest.raises(DeviceAuthRefused, match="accept the 'Allow USB debugging\\?' prompt"):
            connection.shell("echo never")


def test_accepting_the_prompt_stores_the_key(tmp_path, adb_key):
    with _auth_device(tmp_path, [], accept_new=True) as dev:
        connection = AdbConnection(DeviceSpec("tcp", dev.serial), key_path=adb_key, retries=0, auth_timeout_s=2)
        assert connection.shell("echo ok")[0].strip() == "ok"
        connection.close()
    assert AuthorizedKeys(tmp_path / "adb_keys").keys  # remembered for the next connection


def test_cli_lists_the_loopback_device_and_refuses_a_busy_port(device):
    from typer.testing import CliRunner

    from hwadapt.cli.main import app

    runner = CliRunner()
    listing = runner.invoke(app, ["devices", "--tcp", device.serial])
    assert listing.exit_code == 0 and "Loopback Device" in listing.output and "device" in listing.output
    busy = runner.invoke(app, ["device", "serve", "--port", str(device.port)])
    assert busy.exit_code == 1 and "cannot listen on" in busy.output
