"""Prefect's Redis causal ordering (several API replicas, ``deployments/replicas.py``), with
the two kinds of leader whose events never come taken as seen (``event_ordering``).

Selected with ``PREFECT_SERVER_EVENTS_CAUSAL_ORDERING=deployments.event_ordering_redis``.
"""
from __future__ import annotations

from prefect_redis import ordering

from .event_ordering import LeadersThatNeverCome


class CausalOrdering(LeadersThatNeverCome, ordering.CausalOrdering):
    pass
