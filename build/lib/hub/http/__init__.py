"""The HTTP layer below GraphQL: request limits, safe JSON bodies, GraphQL-shaped refusals, and the
uvicorn protocol that cuts clients who never finish their headers."""
