"""Judges: did a continuation course-correct after the prefill? One interface, several kinds."""
