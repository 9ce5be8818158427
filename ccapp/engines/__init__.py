"""The engines: data, models, generation, judging, C2-Eval, C2-Syn, DPO.

Plain Python that never imports Textual; torch and transformers are imported inside the
functions that need them, so the CLI and the app start fast.
"""
