"""asv benchmarks of metaglasso, each in the same parameter grid as the NumPy reference."""
