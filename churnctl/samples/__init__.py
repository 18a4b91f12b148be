"""Bundled sample files and synthetic data. Uses the ground modules only."""
