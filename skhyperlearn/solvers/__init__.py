"""Solvers for HyperLearnDecomposition."""
