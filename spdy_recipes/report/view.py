"""A recipe read against its profile: per layer, the chosen sparsity, its time and why it stays dense.

Everything here comes from two files: the recipe (what SparseML will prune, and the metadata generate
recorded: target, prediction, measurement, search) and the profile it was solved on (every layer's median
time at every grid level). Nothing is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..emit import read_recipe
from ..errors import SpdyError
from ..files import cache_dir
from ..profile import Profile, load_profile
from ..solve.planner import DEFAULT_QUANTILE
from ..solve.settings import SolveSettings

NO_GAIN = 0.01  # a layer whose fastest sparse level saves less than this fraction of its dense time has no gain
LEVEL_MATCH = 1e-3  # a recipe sparsity this close to a grid level is that level
PREDICTION_DRIFT = 0.005  # the profile's prediction differs from the recipe's record by more: say so on the page


@dataclass(kw_only=True, frozen=True)
class LayerRow:
    """One prunable layer of the profile, in model order.

    ``curve_ms`` is its median time (ms) at every grid level of the profile's uniform sweep;
    ``dense_ms`` and ``pruned_ms`` are that curve at level 0 and at the recipe's level; ``in_context_ms``
    is its time inside the pruned model as verification analysed it (None where not measured).
    ``reason`` says why a layer stays dense ("" when pruned)."""

    name: str
    kind: str
    sparsity: float
    level: int
    curve_ms: list[float]
    in_context_ms: float | None = None
    reason: str = ""
    block: str = ""  # "B3 (8 layers)" when one engine operation fuses it with others (``Profile.blocks``)

    @property
    def dense_ms(self) -> float:
        return self.curve_ms[0]

    @property
    def pruned_ms(self) -> float:
        return self.curve_ms[self.level]

    @property
    def pruned(self) -> bool:
        return self.sparsity > 0


@dataclass(kw_only=True, frozen=True)
class Measured:
    """The speedup verification measured (paired median), its 95% interval and the median pruned latency
    in ms (None where unknown: recipes verified before it was recorded)."""

    speedup: float
    low: float | None
    high: float | None
    other_processes_cpu: float | None
    pruned_ms: float | None = None


@dataclass(kw_only=True)
class RecipeView:
    """A recipe with its profile: rows per layer, the weights left out of the prunable set, the speedups,
    the search and the provenance. Times are ms per call at the profile's batch size."""

    recipe: Path
    profile_path: Path
    metadata: dict
    profile: Profile
    layers: list[LayerRow]
    not_prunable: dict[str, str]  # weight -> why no recipe prunes it (depthwise, embedding, training-only head)
    measured: Measured | None
    notes: list[str] = field(default_factory=list)  # where recipe and profile disagree
    profile_hash: str = ""  # of the profile file (``profile`` is it refitted on the recipe's verify_points)

    @property
    def grid(self) -> list[float]:
        return self.profile.grid

    @property
    def dense_ms(self) -> float:
        """The dense model's median latency (ms): the fixed time plus every layer dense."""
        return self.profile.dense_ms

    @property
    def pruned_ms(self) -> float:
        """The predicted latency (ms) of the recipe's sparsities: fixed time plus each layer at its level
        (the additive model the planner solves, ``solve.planner.plan_profile``)."""
        return self.profile.fixed_ms + sum(row.pruned_ms for row in self.layers)

    @property
    def predicted_speedup(self) -> float:
        return self.dense_ms / self.pruned_ms

    @property
    def table_dense_ms(self) -> float:
        """The dense time of the table the layer rows come from (ms): the profile's own dense model (dense
        INT8 for an INT8 recipe, whose speedups are over ``dense_ms``, dense fp32)."""
        return self.dense_ms / self.profile.baseline_ratio

    @property
    def deployment_note(self) -> str:
        """For an INT8 or block-4 recipe, what its speedups and layer times are of; empty for fp32."""
        deployment = self.profile.deployment.resolved()
        if self.metadata.get("precision") is None:
            return ""
        text = f"{deployment.label}: speedups over dense {self.profile.baseline}"
        gain = self.profile.int8_gain
        if deployment.precision == "int8" and gain:
            text += (f"; dense INT8 runs {gain[0]:.2f}x dense fp32 (real engine calls); the layer table is the "
                     f"INT8 model's (dense INT8 {self.table_dense_ms:.2f} ms)")
        return text + "."

    @property
    def quantile(self) -> float:
        return float(self.metadata.get("quantile", DEFAULT_QUANTILE))

    @property
    def guaranteed_speedup(self) -> float:
        """Dense median latency over the recipe's conservative latency: every layer's ``quantile`` time over
        repeats at its level plus the fixed time's (the planner's bound, ``solve.planner.plan_profile``)."""
        bound = self.profile.fixed(self.quantile) + sum(
            layer.times(self.quantile)[row.level] for layer, row in zip(self.profile.layers, self.layers, strict=True))
        return self.dense_ms / bound

    @property
    def target_speedup(self) -> float | None:
        value = self.metadata.get("target_speedup")
        return None if value is None else float(value)

    @property
    def search(self) -> dict | None:
        """The search the recipe records (calibration, candidates, ``curve`` of [step, best loss])."""
        search = self.metadata.get("search")
        return search if isinstance(search, dict) and search.get("curve") else None

    def provenance(self) -> list[tuple[str, str]]:
        """Label and value of where the numbers come from: machine, engine, setting, files."""
        m, engine, hardware = self.metadata, self.profile.engine, self.profile.hardware
        return [
            ("model", f"{m.get('model')} (graph {m.get('model_graph_hash')})"),
            ("method", str(m.get("method"))),
            ("hardware", str(m.get("hardware") or hardware.get("name"))),
            ("CPU", str(m.get("cpu_model") or hardware.get("cpu_model"))),
            ("ISA", f"{m.get('isa') or hardware.get('isa')} (VNNI: {hardware.get('vnni')})"),
            ("engine", str(m.get("engine") or self.profile.engine_label)),
            ("batch, cores", f"batch {self.profile.batch_size}, {self.profile.cores} cores"),
            ("profile", f"{self.profile_path} ({self.profile_hash}), measured {self.profile.created}, "
                        f"{len(self.grid)} levels x {self.profile.repeats} repeats, design "
                        f"{self.profile.design}"),
            ("profile load", "unrecorded" if engine.get("other_processes_cpu") is None
             else f"other processes used {engine['other_processes_cpu']:.0%} of the CPU while it was measured"),
            ("latency model", self.profile.calibration_label()),
            *([("deployment", self.deployment_note)] if self.deployment_note else []),
            ("errors", str(m.get("errors"))),
            ("tool", f"{m.get('tool')} {m.get('tool_version')}"),
        ]


def find_profile(metadata: dict, hw_root: Path, option: str = "--profile") -> Path:
    """The profile a recipe names: ``<hw_root>/<hardware>/<profile_file>`` (named hardware), else the local
    profile cache; SpdyError naming where it looked, and the ``option`` that gives a profile, when neither
    holds one with the recorded hash."""
    name, wanted = metadata.get("profile_file"), metadata.get("profile_hash")
    if not name:
        raise SpdyError(f"the recipe names no profile_file in its metadata; give its profile with {option}")
    places = [hw_root / str(metadata.get("hardware")) / name, cache_dir() / "profiles" / name]
    for place in places:
        if place.is_file():
            found = load_profile(place)
            if wanted in (found.content_hash(), found.stored_hash):
                return place
    looked = ", ".join(str(p) for p in places)
    raise SpdyError(f"no profile with the recipe's hash {wanted} at {looked}; give the profile it was solved on "
                    f"with {option}")


def nearest_level(grid: list[float], sparsity: float) -> int:
    """The grid level closest to ``sparsity`` (a fraction)."""
    return min(range(len(grid)), key=lambda k: abs(grid[k] - sparsity))


def dense_reason(name: str, curve_ms: list[float], selected: set[str]) -> str:
    """Why the recipe leaves a prunable layer dense: excluded by the layer selection, no gain at any
    level (``NO_GAIN``), or the solver's choice (its error cost more than the time it saved)."""
    if name not in selected:
        return "excluded (--include/--exclude)"
    if min(curve_ms[1:], default=curve_ms[0]) > curve_ms[0] * (1 - NO_GAIN):
        return f"no gain at any level (no sparse level is {NO_GAIN:.0%} faster than dense)"
    return "the solver's choice: pruning it cost more error than the time it saved at this target"


def build_view(recipe_path: str | Path, profile_path: str | Path | None = None,
               hw_root: Path = Path("recipes/hardware"), measured: dict | None = None,
               notes: tuple[str, ...] = (), loaded: Profile | None = None) -> RecipeView:
    """Read ``recipe_path`` (SparseML-loaded) and its profile (``profile_path``, or the one its metadata
    names, ``find_profile``; ``loaded``: that file's profile, which the caller holds already). ``measured``
    (``SpeedupMeasurement.record()`` keys, optionally with ``layer_ms``) replaces the measurement the recipe
    records, e.g. one ``verify`` just took; ``notes`` go on the page (e.g. that it was taken on another machine
    than the profile's). Raises SpdyError for a recipe this tool did not write, a sparsity outside [0, 1), a
    profile of another model graph, or recipe layers the profile does not have; a profile whose hash differs
    from the recorded one is used with a note."""
    recipe = read_recipe(recipe_path)
    metadata = dict(recipe.metadata)
    if measured is not None:
        metadata = {k: v for k, v in metadata.items() if not k.startswith("measured_")}
        metadata.update({f"measured_{key}": value for key, value in measured.items()})
    path = Path(profile_path) if profile_path else find_profile(metadata, hw_root)
    if path.is_dir():
        raise SpdyError(f"profile {path} is a folder; give a profile file (.json)")
    if not path.is_file():
        raise SpdyError(f"profile {path} does not exist")
    stored = loaded if loaded is not None else load_profile(path)
    if loaded is None and "baseline" in metadata:  # an INT8 recipe: its speedups are over the recorded baseline
        stored = stored.with_baseline(str(metadata["baseline"]))
    if stored.model.get("graph_hash") != metadata.get("model_graph_hash"):
        raise SpdyError(f"profile {path} is of another model graph ({stored.model.get('spec')}, "
                        f"{stored.model.get('graph_hash')}) than the recipe ({metadata.get('model')}, "
                        f"{metadata.get('model_graph_hash')})")
    profile = stored.refitted(stored.recorded_points(metadata.get("verify_points")))  # the table it was solved on
    notes_out = list(notes)
    if metadata.get("profile_hash") not in (stored.content_hash(), stored.stored_hash):
        notes_out.append(f"the profile's hash {stored.content_hash()} is not the one the recipe was solved on "
                         f"({metadata.get('profile_hash')}): its times may differ from the recipe's prediction")
    targets = recipe.planned
    if any(value is None for value in recipe.targets.values()):
        notes_out.append("a constant-pruning recipe: its layers keep the zeros of the weights they start from; the "
                         "page shows the sparsities they were planned at (its level variables)")
    bad = {name: value for name, value in targets.items() if not 0.0 <= value < 1.0}
    if bad:
        name, value = next(iter(bad.items()))
        raise SpdyError(f"recipe {recipe_path} gives layer {name} sparsity {value:g}, outside [0, 1)")
    unknown = sorted(set(targets) - set(profile.layer_names))
    if unknown:
        raise SpdyError(f"recipe layer(s) {', '.join(unknown[:5])} are not in profile {path}")
    rows = _layer_rows(profile, targets, metadata, notes_out)
    view = RecipeView(recipe=Path(recipe_path), profile_path=path, metadata=metadata, profile=profile, layers=rows,
                      not_prunable=dict(profile.model.get("left_dense") or {}),
                      measured=_measured(metadata), notes=notes_out, profile_hash=stored.content_hash())
    recorded = metadata.get("predicted_ms")
    if recorded and abs(view.pruned_ms / float(recorded) - 1) > PREDICTION_DRIFT:
        notes_out.append(f"the profile predicts {view.pruned_ms:.2f} ms for these sparsities, the recipe recorded "
                         f"{float(recorded):.2f} ms")
    return view


def _layer_rows(profile: Profile, targets: dict[str, float], metadata: dict, notes: list[str]) -> list[LayerRow]:
    """Every profile layer at the recipe's sparsity (0: dense, with the reason), its fusion block and its
    in-context time; a sparsity on no grid level is read at the nearest one, with a note."""
    recorded = SolveSettings(include=tuple(metadata.get("include") or ()), exclude=tuple(metadata.get("exclude") or ()))
    selected = set(recorded.selected(profile))
    in_context = metadata.get("measured_layer_ms") or {}
    fused = [block for block in profile.blocks() if len(block) > 1]
    block_of = {name: f"B{i + 1} ({len(block)} layers)" for i, block in enumerate(fused) for name in block}
    rows = []
    for layer in profile.layers:
        sparsity = targets.get(layer.name, 0.0)
        level = nearest_level(profile.grid, sparsity)
        if abs(profile.grid[level] - sparsity) > LEVEL_MATCH:
            notes.append(f"{layer.name}: sparsity {sparsity:.4f} is on no grid level of the profile; its time is "
                         f"read at the nearest level, {profile.grid[level]:.4f}")
        curve = list(layer.times_ms)
        reason = "" if sparsity > 0 else dense_reason(layer.name, curve, selected)
        rows.append(LayerRow(name=layer.name, kind=layer.kind, sparsity=sparsity, level=level, curve_ms=curve,
                             in_context_ms=in_context.get(layer.name), reason=reason,
                             block=block_of.get(layer.name, "")))
    return rows


def _measured(metadata: dict) -> Measured | None:
    speedup = metadata.get("measured_speedup")
    if speedup is None:
        return None
    interval = metadata.get("measured_interval") or [None, None]
    return Measured(speedup=float(speedup), low=interval[0], high=interval[1],
                    other_processes_cpu=metadata.get("measured_other_processes_cpu"),
                    pruned_ms=metadata.get("measured_pruned_ms"))
