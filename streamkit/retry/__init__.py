"""Retry policies, backoff, tier naming and the failure headers."""

from streamkit.retry.policy import Backoff, ExponentialBackoff, FixedBackoff, RetryPolicy
from streamkit.retry.topics import TopicNames

__all__ = ["Backoff", "ExponentialBackoff", "FixedBackoff", "RetryPolicy", "TopicNames"]
