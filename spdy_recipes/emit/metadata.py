"""A recipe's ``__metadata__`` block: where its numbers came from, and how to make them again."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..deployment import FP32
from ..profile import Profile
from ..profile.correction import EnginePoint
from ..solve import Plan
from ..solve.settings import SolveSettings


def recipe_metadata(profile: Profile, profile_path: Path, plan: Plan, method: str, settings: SolveSettings,
                    measured: dict | None, search: dict | None = None, points: tuple[EnginePoint, ...] = ()) -> dict:
    """The ``__metadata__`` block: where the numbers came from, and how to make them again. ``points`` are
    the plans verification measured before solving ``plan`` (``verify_points``): the profile refitted on them
    (``Profile.refitted``) is the table ``plan`` was solved and predicted on."""
    hardware = profile.hardware
    regime = "latency" if profile.batch_size == 1 else "throughput"
    metadata = {
        "tool": "spdy-recipes",
        "tool_version": __version__,
        "model": profile.model["spec"],
        "model_graph_hash": profile.model["graph_hash"],
        "method": method,
        "hardware": hardware.get("name"),
        "cpu_model": hardware.get("cpu_model"),
        "isa": hardware.get("isa"),
        "engine": profile.engine_label,
        "batch_size": profile.batch_size,
        "cores": profile.cores,
        "input_shapes": {name: shape[1:] for name, shape in (profile.model.get("input_shapes") or {}).items()},
        **({"num_classes": profile.model["num_classes"]} if "num_classes" in profile.model else {}),
        "objective": f"{regime} at batch {profile.batch_size} on {profile.cores} cores",
        "profile_file": profile_path.name,
        "profile_hash": profile.content_hash(),
        "errors": _errors_label(settings),
        "sensitivity": settings.sensitivity,
        "include": list(settings.include),
        "exclude": list(settings.exclude),
        "quantile": settings.quantile,
        "target_speedup": round(plan.target_speedup, 4),
        "solve_speedup": round(plan.solve_speedup, 8),  # (to re-solve the same plan)
        "predicted_speedup": round(plan.predicted_speedup, 4),
        "latency_model": profile.refitted(points).calibration_label(),
        "guaranteed_speedup": round(plan.guaranteed_speedup, 4),
        "predicted_ms": round(plan.predicted_ms, 4),
        "dense_ms": round(plan.dense_ms, 4),
    }
    deployment = profile.deployment.resolved()
    if deployment != FP32:  # (fp32 unstructured recipes stay as they were)
        metadata.update({"precision": deployment.precision, "mask_type": deployment.mask_type,
                         "baseline": profile.baseline})
    if deployment.precision == "int8":
        metadata.update({
            "predicted_speedup_over_int8": round(plan.predicted_speedup / profile.baseline_ratio, 4),
            "dense_fp32_ms": profile.engine.get("dense_fp32_ms"), "dense_int8_ms": profile.engine.get("dense_int8_ms"),
            "int8_speedup_over_fp32": profile.engine.get("int8_speedup_over_fp32"),
            "left_fp32": profile.model.get("left_fp32", []),
        })
    if points:
        metadata["verify_points"] = [point.to_dict() for point in points]
    if settings.coefficients:
        metadata["coefficients"] = [round(c, 6) for c in settings.coefficients]
        metadata["search"] = search
    busy = profile.engine.get("other_processes_cpu")
    if busy is not None:
        metadata["profile_other_processes_cpu"] = busy
    if measured:
        metadata.update({f"measured_{key}": value for key, value in measured.items()})
    return metadata


def _errors_label(settings: SolveSettings) -> str:
    if settings.sensitivity:
        return "sensitivity table"
    return "SPDY prior x searched coefficients" if settings.coefficients else "SPDY prior"
