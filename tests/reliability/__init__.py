"""Reliability tests: faults, fuzzing, security and privacy over the real stack."""
