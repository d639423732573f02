"""Describe the machine a profile is measured on."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model_name() -> str:
    """The CPU model string from /proc/cpuinfo (or the platform's processor name)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe_host() -> dict:
    """CPU model, vendor, ISA, cores and caches as DeepSparse sees them."""
    from deepsparse.cpu import cpu_architecture

    arch = cpu_architecture()
    return {
        "cpu_model": cpu_model_name(),
        "vendor": arch.get("vendor"),
        "architecture": arch.get("architecture"),
        "isa": arch.get("isa"),
        "vnni": bool(arch.get("vnni")),
        "bf16": bool(arch.get("bf16")),
        "sockets": arch.get("num_sockets"),
        "cores": arch.get("num_cores"),
        "threads_per_core": arch.get("threads_per_core"),
        "l3_cache_bytes": arch.get("L3_cache_size"),
        "platform": platform.platform(),
    }
