"""Scoring rules as versioned data.

The program file says how scores are computed today (method, prior, scale,
pass rule). Every result records the rule version it was computed with, and a
rule version never changes: when the program's scoring section changes, the
next score stores a new version. Rescoring with a result's own version gives
the same score years later, whatever the program file says by then.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from itembank.program import ExamProgram, PassRule, ScaleTransformation, ScoringSettings
from scoring.models import ScoringRuleVersion


@dataclass(frozen=True)
class ScoringRule:
    """How a sitting's responses become scores: everything but the item parameters."""

    program_code: str
    fields: tuple[str, ...]
    settings: ScoringSettings  # model, method, prior, quadrature
    scale: ScaleTransformation
    pass_rule: PassRule

    def as_json(self) -> dict:
        # Flat, so that the digest of a stored version never depends on how the code nests it.
        settings = asdict(self.settings)
        if settings["field_method"] == "separate":
            # Rules from before field methods existed keep their digest (and stored version).
            del settings["field_method"], settings["field_correlation"]
        else:
            settings["field_correlation"] = [list(row) for row in settings["field_correlation"]]
        return {"program_code": self.program_code, "fields": list(self.fields), **settings,
                "scale": asdict(self.scale), "pass_rule": asdict(self.pass_rule)}

    @classmethod
    def from_json(cls, data: dict) -> "ScoringRule":
        return cls(
            program_code=data["program_code"],
            fields=tuple(data["fields"]),
            settings=ScoringSettings(
                model=data["model"],
                method=data["method"],
                prior_mean=float(data["prior_mean"]),
                prior_sd=float(data["prior_sd"]),
                quadrature_points=int(data["quadrature_points"]),
                quadrature_range=float(data["quadrature_range"]),
                field_method=data.get("field_method", "separate"),
                field_correlation=(None if data.get("field_correlation") is None
                                   else tuple(tuple(float(v) for v in row) for row in data["field_correlation"])),
            ),
            scale=ScaleTransformation(**data["scale"]),
            pass_rule=PassRule(**data["pass_rule"]),
        )

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def rule_of_program(program: ExamProgram) -> ScoringRule:
    return ScoringRule(program_code=program.code, fields=program.field_codes, settings=program.scoring,
                       scale=program.scale, pass_rule=program.pass_rule)


def rule_of_version(version: ScoringRuleVersion) -> ScoringRule:
    return ScoringRule.from_json(version.definition)


def current_rule_version(session: Session, program: ExamProgram) -> ScoringRuleVersion:
    """The stored version of the program's scoring rule as the program file states it now."""
    rule = rule_of_program(program)
    found = session.scalar(select(ScoringRuleVersion).where(ScoringRuleVersion.digest == rule.digest))
    if found is not None:
        return found
    latest = session.scalar(
        select(func.max(ScoringRuleVersion.version)).where(ScoringRuleVersion.program_code == program.code)
    )
    version = ScoringRuleVersion(program_code=program.code, version=(latest or 0) + 1, digest=rule.digest,
                                 definition=rule.as_json())
    # Two first scores racing to store the same new version: one insert wins, the other reads it.
    try:
        with session.begin_nested():
            session.add(version)
    except IntegrityError:
        found = session.scalar(select(ScoringRuleVersion).where(ScoringRuleVersion.digest == rule.digest))
        if found is None:
            raise
        return found
    return version
