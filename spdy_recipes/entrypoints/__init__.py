"""The flows the CLI, the benchmarks and the tests share: one function per command that does real work.

``generate`` (profile -> plan -> verified -> recipe) and ``verify_recipe`` (measure, and fix by re-solving);
``compare`` lives in ``spdy_recipes.compare`` and takes a ``searched_solver``.
"""

from .common import ModelRequest, SearchRequest, VerifySettings, plain_solver, searched_solver
from .generate import GenerateRequest, GenerateResult, generate
from .verify import VerifyOutcome, VerifyRequest, recorded_solve_settings, verify_recipe

__all__ = [
    "GenerateRequest", "GenerateResult", "ModelRequest", "SearchRequest", "VerifyOutcome", "VerifyRequest",
    "VerifySettings", "generate", "plain_solver", "recorded_solve_settings", "searched_solver", "verify_recipe",
]
