"""Timing and memory benchmarks of sigreg_jax; each module runs as `python -m benchmarks.<name>`."""
