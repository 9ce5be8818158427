"""Errors a user can fix: reported as one message with the fix, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input or environment.

    The CLI prints it as one line (where, what, fix) on stderr and exits with code 2, so
    scripts can tell a bad invocation from a failed run (exit 1).
    """

    exit_code = 2

    def __init__(self, problem: str, *, fix: str | None = None, where: str | None = None):
        self.problem = problem
        self.fix = fix
        self.where = where
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.fix:
            text = f"{text.rstrip('.')}. Fix: {self.fix}"
        return text
