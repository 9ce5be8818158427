"""The sampling settings and the run seed, declared once for every job that has them.

Their limits and what to do about a refused value are facts of sampling (a temperature is
0 or more, top_p in (0, 1], …), so each is declared here; a job says only what is its own:
its default, its help and where its form shows the field. A config imports the module
(`shared.temperature(…)`), so the field says where its declaration comes from.
"""

from __future__ import annotations

from typing import Any

from ccapp.engines.options import option

SAMPLING = "sampling"  # the --help section of the sampling settings


def max_new_tokens(*, default: int, help: str, row: str) -> Any:
    """Tokens per generation (at least 1)."""
    return option(
        default=default,
        metavar="N",
        help=help,
        label="Max new tokens",
        minimum=1,
        shown=True,
        group=SAMPLING,
        row=row,
    )


def temperature(*, default: float, help: str, label: str) -> Any:
    """The sampling temperature: 0 is greedy."""
    return option(
        default=default,
        help=help,
        label=label,
        minimum=0,
        fix="use 0 (greedy) or more",
        shown=True,
        group=SAMPLING,
        row="sampling",
    )


def top_p(*, default: float, help: str, **form: Any) -> Any:
    """Nucleus sampling: a share of the probability mass, in (0, 1]."""
    return option(
        default=default, help=help, above=0, maximum=1, shown=True, group=SAMPLING, **form
    )


def top_k(*, help: str) -> Any:
    """The top-k filter (None: the model's generation config, else 50; 0: off)."""
    return option(
        default=None, metavar="K", help=help, minimum=0, fix="use 0 (off) or more", group=SAMPLING
    )


def repetition_penalty(*, help: str) -> Any:
    """The repetition penalty (None: the model's generation config, else 1.0 = none)."""
    return option(
        default=None,
        metavar="P",
        help=help,
        above=0,
        fix="use a number above 0 (1.0 = none)",
        group=SAMPLING,
    )


def seed(*, group: str = SAMPLING, **form: Any) -> Any:
    """The run seed (0 or more), in the job's `group` of its --help."""
    return option(default=0, help="run seed", minimum=0, shown=True, group=group, **form)


def lenient(*, group: str) -> Any:
    """Skip bad data rows (counted) instead of stopping at the first."""
    return option(
        default=False, help="skip bad data rows and count them", decides_results=False, group=group
    )
