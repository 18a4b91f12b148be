"""The feature state: what is computed from raw columns. No files are read here, no model is run.

Layer 1: imports the ground modules (errors, arguments, defaults ...) only.
"""
