"""Delivery: rendering alerts and digests, the rate-limited sender, the outbox worker."""
