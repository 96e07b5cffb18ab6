"""The GraphQL schema: Strawberry types composed from one module per domain."""
