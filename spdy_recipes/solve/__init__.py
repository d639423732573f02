"""The SPDY dynamic program and the planner that turns a profile and a target speedup into a layer profile."""

from .dp import solve_min_error
from .planner import Plan, plan_profile

__all__ = ["Plan", "plan_profile", "solve_min_error"]
