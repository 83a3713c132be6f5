"""Experiment configs for ml_collections, one `get_config(variant)` per file.

Load one with `--config=experiments/configs/<file>.py:<variant>`; the entry
points in `experiments/` default to them.
"""
