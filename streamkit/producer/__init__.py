"""The idempotent producer."""

from streamkit.producer.producer import Delivery, DeliveryResult, Producer

__all__ = ["Delivery", "DeliveryResult", "Producer"]
