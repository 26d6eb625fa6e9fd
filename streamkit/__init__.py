"""streamkit: typed Kafka event handlers for Python services.

Write ``@handler("order.created")`` functions; run them with ``streamkit run MODULE``.
"""

from streamkit._version import __version__
from streamkit.config import Settings
from streamkit.consumer.runtime import Worker
from streamkit.envelope import Event
from streamkit.errors import (
    BrokerUnavailableError,
    ConfigError,
    DecodeError,
    DeliveryFailedError,
    DeliveryTimeoutError,
    MissingTopicsError,
    PermanentError,
    ProducerError,
    RecordTooLargeError,
    Retry,
    SchemaError,
    Skip,
    StreamkitError,
    TransientDependencyError,
    UnknownEventType,
    UnknownTopicError,
)
from streamkit.handlers import Context, Middleware, Router, configure, handler
from streamkit.producer import Delivery, DeliveryResult, Producer
from streamkit.retry import ExponentialBackoff, FixedBackoff, RetryPolicy, TopicNames

__all__ = [
    # handlers
    "Context",
    "Event",
    "Middleware",
    "Router",
    "configure",
    "handler",
    # retries
    "ExponentialBackoff",
    "FixedBackoff",
    "Retry",
    "RetryPolicy",
    "Skip",
    "TopicNames",
    # running
    "Settings",
    "Worker",
    # producing
    "Delivery",
    "DeliveryResult",
    "Producer",
    # errors
    "BrokerUnavailableError",
    "ConfigError",
    "DecodeError",
    "DeliveryFailedError",
    "DeliveryTimeoutError",
    "MissingTopicsError",
    "PermanentError",
    "ProducerError",
    "RecordTooLargeError",
    "SchemaError",
    "StreamkitError",
    "TransientDependencyError",
    "UnknownEventType",
    "UnknownTopicError",
    "__version__",
]
