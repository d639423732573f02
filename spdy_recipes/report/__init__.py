"""What a recipe, a plan or a profile says, for people: text summaries (``inspect``, ``solve``) and the
HTML report with plots (``report``, ``generate --report``).

``view`` gathers the numbers from a recipe and its profile, ``plots`` draws them, ``page`` writes the
self-contained folder.
"""

from .text import inspect_file, plan_report, profile_report, recipe_report

__all__ = ["inspect_file", "plan_report", "profile_report", "recipe_report"]
