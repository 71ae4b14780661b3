"""Accuracy metrics of a segmentation run: confusion counts, error rate, Dice, IoU, bootstrap intervals (SPEC §6)."""
