"""Print the schema as SDL: ``python -m hub.schema.export > schema.graphql``."""

from hub.schema.schema import build_schema

if __name__ == "__main__":
    print(build_schema().as_str())
