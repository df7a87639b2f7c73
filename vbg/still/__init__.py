"""still."""
