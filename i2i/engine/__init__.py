"""Training engine: the only package that imports accelerate (import its modules directly)."""
