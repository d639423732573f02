"""The flows the CLI, the benchmarks and the tests share: one function per command.

``generate`` (profile -> plan -> verified -> recipe), ``verify_recipe`` (measure, and fix by re-solving),
``compare`` (SPDY against the baselines at one speed, ``spdy_recipes.evaluate``), ``tradeoff`` (the same at
several speeds: the speed/accuracy curve), ``report`` (a recipe as an HTML page) and ``report.inspect``, and
in their own modules ``entrypoints.profile.measure_and_save``, ``entrypoints.solve.solve_stored`` and
``entrypoints.regenerate.regenerate``.
"""

from .common import ModelRequest, SearchRequest, VerifySettings, plain_solver, searched_solver
from .compare import CompareRequest, Comparison, compare
from .generate import GenerateRequest, GenerateResult, generate
from .report import ReportRequest, report
from .tradeoff import Tradeoff, TradeoffRequest, tradeoff
from .verify import VerifyOutcome, VerifyRequest, recorded_solve_settings, verify_recipe

__all__ = [
    "CompareRequest", "Comparison", "GenerateRequest", "GenerateResult", "ModelRequest", "ReportRequest",
    "SearchRequest", "Tradeoff", "TradeoffRequest", "VerifyOutcome", "VerifyRequest", "VerifySettings", "compare",
    "generate", "plain_solver", "recorded_solve_settings", "report", "searched_solver", "tradeoff", "verify_recipe",
]
