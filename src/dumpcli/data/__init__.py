"""Data sources (K&K puzzles, arithmetic ladder, from-scratch ladder, imports) and the dataset dir."""
