"""The idempotent producer."""

from streamkit.delivery import Delivery, DeliveryResult
from streamkit.producer.producer import Producer

__all__ = ["Delivery", "DeliveryResult", "Producer"]
