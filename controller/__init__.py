"""The controller: worker registry with TTL liveness, dispatch policies, in-flight accounting."""
