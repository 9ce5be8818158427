"""The sampling settings and the run seed, declared once for every job that has them.

Their limits and what to do about a refused value are facts of sampling (a temperature is
0 or more, top_p in (0, 1], …), so each is declared here; a job says only what is its own:
its default, its help and where its form shows the field. A config imports the module
(`shared.temperature(…)`), so the field says where its declaration comes from.
"""

from __future__ import annotations

from typing import Any

from ccapp.engines.options import option, section

SAMPLING = "sampling"  # the --help section of the sampling settings
sampling = section(SAMPLING)


def max_new_tokens(*, default: int, help: str, row: str) -> Any:
    """Tokens per generation (at least 1)."""
    return sampling(default, help, label="Max new tokens", minimum=1, shown=True, row=row)


def temperature(*, default: float, help: str, label: str) -> Any:
    """The sampling temperature: 0 is greedy."""
    return sampling(
        default,
        help,
        label=label,
        minimum=0,
        fix="use 0 (greedy) or more",
        shown=True,
        row="sampling",
    )


def top_p(*, default: float, help: str, **form: Any) -> Any:
    """Nucleus sampling: a share of the probability mass, in (0, 1]."""
    return sampling(default, help, above=0, maximum=1, shown=True, **form)


def top_k(*, help: str) -> Any:
    """The top-k filter (None: the model's generation config, else 50; 0: off)."""
    return sampling(None, help, metavar="K", minimum=0, fix="use 0 (off) or more")


def repetition_penalty(*, help: str) -> Any:
    """The repetition penalty (None: the model's generation config, else 1.0 = none)."""
    return sampling(None, help, metavar="P", above=0, fix="use a number above 0 (1.0 = none)")


def seed(*, group: str = SAMPLING, **form: Any) -> Any:
    """The run seed (0 or more), in the job's `group` of its --help."""
    return option(0, "run seed", minimum=0, shown=True, group=group, **form)


def lenient(*, group: str) -> Any:
    """Skip bad data rows (counted) instead of stopping at the first."""
    return option(False, "skip bad data rows and count them", decides_results=False, group=group)
