"""The flows the CLI, the benchmarks and the tests share: one function per command that does real work.

``generate`` (profile -> plan -> verified -> recipe), ``verify_recipe`` (measure, and fix by re-solving) and
``compare`` (SPDY against the baselines at one speed; the methods themselves live in ``spdy_recipes.compare``).
"""

from .common import ModelRequest, SearchRequest, VerifySettings, plain_solver, searched_solver
from .compare import CompareRequest, Comparison, compare
from .generate import GenerateRequest, GenerateResult, generate
from .verify import VerifyOutcome, VerifyRequest, recorded_solve_settings, verify_recipe

__all__ = [
    "CompareRequest", "Comparison", "GenerateRequest", "GenerateResult", "ModelRequest", "SearchRequest",
    "VerifyOutcome", "VerifyRequest", "VerifySettings", "compare", "generate", "plain_solver",
    "recorded_solve_settings", "searched_solver", "verify_recipe",
]
