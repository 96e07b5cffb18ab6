"""Live events: a broker (in-process or Redis), the outbox relay, and balance streams."""
