"""The demo loop: eval, C2-Syn, DPO and eval again, with its honesty guards (held-out requests, fluency, helpfulness)."""
