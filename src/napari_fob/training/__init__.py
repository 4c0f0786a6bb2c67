"""Training stack: supervoxel pseudo-labels, episodic dataset, trainer, DDP, evaluation.

Submodules are imported on demand; importing this package imports nothing heavy (no torch).
"""
