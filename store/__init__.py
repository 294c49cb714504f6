"""State backends behind small interfaces: embedded (one host, no server) and Redis (shared)."""
