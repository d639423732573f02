"""Human-readable summaries of plans, profiles and recipes."""

from __future__ import annotations

import json
from pathlib import Path

from ..emit.validate import recipe_targets
from ..errors import SpdyError
from ..profile import Profile, load_profile
from ..solve import Plan

MIN_MS = 1e-9  # a layer timed at 0 ms divides as this (its gain prints huge, not an error)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plan_report(plan: Plan, profile: Profile) -> str:
    """Per-layer sparsity and time of a solved plan, then the predicted and guaranteed speedups."""
    dense = {layer.name: layer.times_ms[0] for layer in profile.layers}
    rows = [
        [name, f"{s:.4f}" if s else "dense", f"{dense[name]:.3f}", f"{plan.times_ms[name]:.3f}"]
        for name, s in plan.sparsities.items()
    ]
    summary = (
        f"predicted {plan.predicted_ms:.2f} ms vs dense {plan.dense_ms:.2f} ms: speedup {plan.predicted_speedup:.3f}x, "
        f"at least {plan.guaranteed_speedup:.3f}x on the {plan.quantile:.2f} quantile of the timings "
        f"(target {plan.target_speedup:.3f}x, best reachable {plan.max_speedup:.3f}x); "
        f"{len(plan.pruned)} of {len(plan.sparsities)} layers pruned; latency model {profile.calibration_label()}"
    )
    return _table(["layer", "sparsity", "dense ms", "chosen ms"], rows) + "\n" + summary


def _deployment_lines(profile: Profile) -> list[str]:
    """For an INT8 or block-4 profile: what it was timed in, and INT8's own gain over fp32 (real calls)."""
    deployment = profile.deployment.resolved()
    if "precision" not in profile.model:
        return []
    line = f"timed in {deployment.label} (the dense time above is this model's)"
    fp32 = profile.engine.get("dense_fp32_ms")
    if profile.int8_gain:
        line += f"; {profile.int8_gain_label()}"
    if isinstance(fp32, (int, float)):
        line += f"; dense fp32 {fp32:.2f} ms"
    left = profile.model.get("left_fp32") or []
    return [line + (f"; left in fp32: {', '.join(left)}" if left else "")]


def _share(value: float | None) -> str:
    return "an unrecorded share" if value is None else f"{value:.0%}"


def profile_report(profile: Profile) -> str:
    """Provenance, noise, flags and the per-layer dense and fastest times of a profile."""
    hw, engine, model, flags = profile.hardware, profile.engine, profile.model, profile.flags
    spread = profile.level_spread()
    lines = [
        f"profile of {model['spec']} (graph {model['graph_hash']}), batch {profile.batch_size}",
        f"hardware {hw.get('name')}: {hw.get('cpu_model')}, isa {hw.get('isa')}, vnni {hw.get('vnni')}, "
        f"{profile.cores} cores used",
        f"engine {profile.engine_label}, measured {profile.created}, "
        f"{len(profile.grid)} levels {profile.grid[1]:.4f}..{profile.grid[-1]:.4f}, {profile.repeats} repeat(s)",
        (f"dense {profile.dense_ms:.2f} ms (real engine calls), fixed (non-layer) {profile.fixed_ms:.2f} ms "
         "(the calibration's intercept)" if profile.calibrated else
         f"dense {profile.dense_ms:.2f} ms, fixed (non-layer) {profile.fixed_ms:.2f} ms incl. call overhead "
         f"{profile.call_overhead_ms:.2f} ms")
        + f"; whole-model spread across repeats {min(spread):.1%}..{max(spread):.1%}",
        f"latency model: {profile.calibration_label()}",
        *_deployment_lines(profile),
        f"other processes used {_share(engine.get('other_processes_cpu'))} of the CPU while it was measured",
        f"flags: {len(flags.get('non_monotone', {}))} layer(s) with non-monotone times, "
        f"{len(flags.get('kernel_switch', {}))} with kernel switches, noisy levels "
        f"{[profile.grid[k] for k in flags.get('noisy_levels', [])] or 'none'}",
    ]
    rows = []
    for layer in profile.layers:
        times = layer.times_ms
        best = min(range(len(profile.grid)), key=lambda k: times[k])
        switches = flags.get("kernel_switch", {}).get(layer.name, [])
        rows.append([layer.name, layer.kind, f"{times[0]:.3f}", f"{times[best]:.3f}", f"{profile.grid[best]:.4f}",
                     f"{times[0] / max(times[best], MIN_MS):.2f}x", f"{max(layer.spread_ms):.3f}",
                     ",".join(f"{profile.grid[k]:.2f}" for k in switches) or "-"])
    header = ["layer", "kind", "dense ms", "fastest ms", "at", "gain", "max spread ms", "kernel switches at"]
    return "\n".join(lines + _support_lines(profile)) + "\n" + _table(header, rows) + _left_dense_lines(profile)


def _support_lines(profile: Profile) -> list[str]:
    supported = profile.engine.get("fraction_of_supported_ops")
    return [] if supported is None else [f"the engine runs {supported:.0%} of the model's operations in its "
                                         "optimised kernels (fraction_of_supported_ops)"]


def _left_dense_lines(profile: Profile) -> str:
    """The weights the profile left out of the prunable set, grouped by reason."""
    left = profile.model.get("left_dense") or {}
    if not left:
        return ""
    by_reason: dict[str, list[str]] = {}
    for name, reason in left.items():
        by_reason.setdefault(reason, []).append(name)
    lines = [f"left dense ({len(left)}, recipes never prune them):"]
    for reason, names in by_reason.items():
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        lines.append(f"  {shown}: {reason}")
    return "\n" + "\n".join(lines)


def recipe_report(path: Path) -> str:
    """Metadata and per-layer targets of a recipe, as SparseML loads it."""
    targets, manager = recipe_targets(str(path))
    metadata = getattr(manager, "metadata", None) or {}
    if set(metadata) == {"__metadata__"}:  # SparseML keeps the block under its own name
        metadata = metadata["__metadata__"] or {}
    lines = [f"recipe {path}: {len(targets)} pruned layer(s), {manager.max_epochs} epochs"]
    lines += [f"  {key}: {_brief(value)}" for key, value in sorted(metadata.items())]
    rows = [[name, "keep current" if value is None else f"{float(value):.4f}"] for name, value in targets.items()]
    return "\n".join(lines) + "\n" + _table(["layer", "final sparsity"], rows)


def _brief(value) -> str:
    """A metadata value on one short line: long lists and mappings by their size (``report`` shows them)."""
    if isinstance(value, dict) and len(str(value)) > 100:
        return f"{{{len(value)} entries: {', '.join(list(map(str, value))[:3])}, ...}}"
    if isinstance(value, list) and len(str(value)) > 100:
        return f"[{len(value)} values: {', '.join(map(str, value[:3]))}, ...]"
    return str(value)


def inspect_file(path: str) -> str:
    """Summarise a profile (.json) or a recipe (.yaml/.md)."""
    file = Path(path)
    if file.is_dir():
        raise SpdyError(f"{path} is a folder; give a profile (.json) or recipe (.yaml/.md) file")
    if not file.is_file():
        raise SpdyError(f"{path} does not exist")
    if file.suffix == ".json":
        return profile_report(load_profile(file))
    if file.suffix in (".yaml", ".md"):
        return recipe_report(file)
    try:
        json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError):
        raise SpdyError(f"{path}: expected a profile (.json) or a recipe (.yaml/.md)") from None
    return profile_report(load_profile(file))
