"""ml_collections configs for the experiments, one `get_config(variant)` per file.

Load one with `--config=experiments/configs/<file>.py:<variant>`; the entry
points in `experiments/` default to them.
"""
