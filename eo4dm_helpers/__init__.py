"""eo4dm."""
