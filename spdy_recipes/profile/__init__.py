"""Hardware profiles: per-layer latency at every sparsity level, measured in the engine, with provenance."""

from .schema import LayerTimes, Profile, load_profile, save_profile

__all__ = ["LayerTimes", "Profile", "load_profile", "save_profile"]
