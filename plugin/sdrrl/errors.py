"""One error type for everything a user can fix: it names the problem and the fix."""

from __future__ import annotations


class SdrrlError(Exception):
    """A problem the user can fix. ``str(err)`` is one line: the problem, then the fix."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem} Fix: {fix}")


class UnknownNameError(SdrrlError, KeyError):
    """A name that is not in its table (a language, method, model family, benchmark): the message
    lists the known ones."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class UnknownLanguageError(UnknownNameError):
    pass


class RegistryError(SdrrlError):
    """A dataset_info.json or data file that LLaMA-Factory would reject or misread."""


class DiskFullError(SdrrlError):
    """A write failed for want of space or quota (ENOSPC, EDQUOT); ``path`` is the file being written."""

    def __init__(self, problem: str, fix: str | None = None, path: str | None = None):
        SdrrlError.__init__(self, problem, fix)
        self.path = path


class ModelNotFoundError(SdrrlError):
    """A model path or hub id that cannot be loaded (offline, or a typo)."""
