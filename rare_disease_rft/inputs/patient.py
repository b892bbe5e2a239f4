"""The patient as one input describes them: the only part of any input that may reach a task."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..tasks import age_problem


@dataclass
class Patient:
    """Present and excluded terms (current HPO ids), sex and age, as read from one input.

    ``notes`` say how given ids were mapped to current terms, or why one was left out;
    ``evidence`` (text inputs only) holds, per term id, the words of the text it was read from.
    An age no patient can have (``tasks.age_problem``: 300 years, a unit mixed up) is left out, noted.
    """

    present: list[str]
    excluded: list[str]
    sex: str | None = None
    age_years: float | None = None
    notes: list[str] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = age_problem(self.age_years)
        if problem:
            self.notes.append(f"The age given {problem}: left out.")
            self.age_years = None
