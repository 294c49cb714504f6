"""The OpenAI-compatible gateway: validation, one controller call, byte relay, failover."""
