"""ccapp: measure and improve an LLM's course-correction (C2-Eval, C2-Syn, DPO)."""

__version__ = "0.1.0"
