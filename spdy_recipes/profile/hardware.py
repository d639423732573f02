"""The machine: its CPU name, how busy other processes keep it, and the description file of a named
hardware folder."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import yaml

from ..errors import SpdyError, first_line
from ..files import atomic_write_text

DESCRIPTION_FILE = "hardware.yaml"


def cpu_model_name() -> str:
    """The CPU model string from /proc/cpuinfo (or the platform's processor name)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _machine_cpu_s() -> float | None:
    """CPU seconds every process has used since boot (user + nice + system + irq + softirq + steal), from
    /proc/stat; None where there is no /proc."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return None
    fields = stat.read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (fields + ["0"] * 8)[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds of this process, its ended children and the engine's live child process."""
    from .engine_process import worker_cpu_s

    times = os.times()
    return times.user + times.system + times.children_user + times.children_system + worker_cpu_s()


class CpuLoad:
    """Measures, over a ``with`` block, the share of the machine's CPU that *other* processes used.

    ``busy`` is (machine CPU time - this process's CPU time) / (wall time x CPUs), in [0, 1]; None where
    /proc/stat is missing. A quiet machine reads near 0; one other process spinning on a 2-core machine, 0.5.
    """

    def __init__(self) -> None:
        self.busy: float | None = None

    def __enter__(self) -> CpuLoad:
        self._machine, self._own, self._wall = _machine_cpu_s(), _own_cpu_s(), time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        machine = _machine_cpu_s()
        if machine is None or self._machine is None:
            return
        wall = time.monotonic() - self._wall
        if wall <= 0:
            return
        other = (machine - self._machine) - (_own_cpu_s() - self._own)
        self.busy = min(1.0, max(0.0, other / (wall * (os.cpu_count() or 1))))


def read_description(folder: Path) -> dict:
    """The ``hardware.yaml`` of a named hardware folder ({} when it has none)."""
    path = folder / DESCRIPTION_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpdyError(f"malformed hardware description {path}: {first_line(exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cores"), int):
        raise SpdyError(f"malformed hardware description {path}: expected a mapping with an integer 'cores'")
    return data


def write_description(folder: Path, name: str, instance_type: str | None, host: dict, engine: str) -> Path:
    """Describe the machine that measures a named hardware folder's profiles."""
    data = {
        "name": name,
        "instance_type": instance_type,
        "cpu_model": host.get("cpu_model"),
        "vendor": host.get("vendor"),
        "isa": host.get("isa"),
        "vnni": host.get("vnni"),
        "cores": host.get("cores"),
        "engine": engine,
    }
    header = "# Named hardware: the machine the profiles in this folder were measured on.\n"
    return atomic_write_text(folder / DESCRIPTION_FILE, header + yaml.safe_dump(data, sort_keys=False))


def host_differences(recorded: dict, host: dict, engine: str, recorded_engine: str | None) -> list[str]:
    """What differs between recorded hardware/engine and this machine, as short phrases."""
    differences = []
    if recorded.get("cpu_model") and recorded.get("cpu_model") != host.get("cpu_model"):
        differences.append(f"CPU {recorded.get('cpu_model')!r} (this machine: {host.get('cpu_model')!r})")
    if recorded.get("isa") and recorded.get("isa") != host.get("isa"):
        differences.append(f"ISA {recorded.get('isa')} (this machine: {host.get('isa')})")
    if recorded_engine and recorded_engine != engine:
        differences.append(f"engine {recorded_engine} (this machine: {engine})")
    return differences
