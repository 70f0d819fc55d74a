"""Programs the loopback device provides on its shell: ``getprop`` (from the device
profile) and a ``benchmark_model`` in /data/local/tmp (the LiteRT stand-in)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import device_agents

BENCHMARK_NAME = "benchmark_model"
_REPO_ROOT = Path(device_agents.__file__).resolve().parents[1]


def _write_script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def install_getprop(bin_dir: Path, props: dict[str, str]) -> Path:
    """``getprop`` prints ``[key]: [value]`` lines; ``getprop KEY`` prints the value."""
    table = bin_dir / "build.prop"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("".join(f"{key}={value}\n" for key, value in sorted(props.items())))
    prop_file = shlex.quote(str(table))
    return _write_script(bin_dir / "getprop", f"""#!/bin/sh
if [ $# -eq 0 ]; then
  sed 's/^\\([^=]*\\)=\\(.*\\)$/[\\1]: [\\2]/' {prop_file}
else
  awk -v key="$1" 'index($0, key "=") == 1 {{ print substr($0, length(key) + 2); exit }}' {prop_file}
fi
""")


def benchmark_standin_script() -> str:
    """A ``benchmark_model`` executable that runs the LiteRT stand-in with this Python."""
    return (f"#!/bin/sh\nexport PYTHONPATH={shlex.quote(str(_REPO_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
            f"exec {shlex.quote(sys.executable)} -m device_agents.loopback.benchmark_model \"$@\"\n")


def install_benchmark_standin(folder: Path) -> Path:
    return _write_script(folder / BENCHMARK_NAME, benchmark_standin_script())
