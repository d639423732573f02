"""Work spread over processes or machines with Ray (``--workers``, ``--cluster``): the database's layers, the
search's candidates and named hardware's profiles. Importing this package does not import Ray."""

from .runtime import Cluster, ClusterSettings, open_cluster

__all__ = ["Cluster", "ClusterSettings", "open_cluster"]
