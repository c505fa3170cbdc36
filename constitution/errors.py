"""The one exception hierarchy of ALL-USE, and located problems.

It lives in the lowest layer so every layer (constitution -> engine -> adapters -> scheduler)
can raise and catch the same types. The split that matters operationally:

* ``StopError``  - retrying cannot help (bad input, a safety halt). Fix the cause first.
* ``RetryError`` - the world may recover on its own (broker disconnected, database busy).

Exit codes of the CLI derive from the class, never from message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class AllUseError(Exception):
    """Base of every error ALL-USE raises on purpose."""

    exit_code = 1


class StopError(AllUseError):
    """Retrying the same operation cannot succeed."""


class RetryError(AllUseError):
    """A transient failure: the same operation may succeed later."""

    exit_code = 3


class InvalidInput(StopError):
    """A user's input (constitution, facts, arguments) is wrong. Carries every problem found."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], what: str = "input"):
        self.problems = tuple(sorted(problems))
        self.what = what
        super().__init__(f"{what} is invalid ({len(self.problems)} problem(s))")

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class ConstitutionInvalid(InvalidInput):
    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        super().__init__(problems, what="constitution")


class FactsInvalid(InvalidInput):
    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        super().__init__(problems, what="facts")


class OperationalError(StopError):
    """Something outside the user's input went wrong and needs an operator (exit 3)."""

    exit_code = 3


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem: ``FILE:LINE:COL: CODE: path: message``.

    Ordered by file, then position, then code, so reports are stable and sorted.
    Lines and columns are 1-based, as editors show them.
    """

    file: str
    line: int
    col: int
    code: str
    path: str = ""
    message: str = field(default="", compare=True)

    def render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {self.code}: {where}{self.message}"
