"""C2-Eval: prefills, the evaluation job, Corr@k metrics and intervals, comparisons, fluency guards and the report."""
