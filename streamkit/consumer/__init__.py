"""The consumer runtime: poll loop, offsets, flow control, rebalances."""
