"""Alert rules as data: which signals raise an alert, at which level, with which thresholds.

The rules are one JSON document keyed by signal kind; the latest `AlertRuleVersion` is in force
(none yet: `DEFAULT_RULES`). Every change is a new version row naming who changed it, when, and
the document before and after (the audit). `evaluate()` is pure: the caller hands it the new
signal and, for the medical-spend rules, the person's earlier medical spend.
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any, Iterable, NamedTuple

from sqlalchemy import select

from app.auth.models import User
from app.beneficiaries.models import LEVEL_RANK, LEVELS
from app.cases.models import AlertRuleVersion
from app.errors import ValidationFailed
from app.extensions import db
from app.types import utcnow
from app.uow import use_case

KINDS = ("medical_spend", "hospitalization", "disability_certified", "death_in_household",
         "serious_illness", "unemployment_registered", "grid_report")

DEFAULT_RULES: dict[str, dict[str, Any]] = {
    # Self-paid medical spend ≥ 20,000 yuan within 30 days, or ≥ 3× the person's monthly
    # average over the 12 months before those 30 days (a spike).
    "medical_spend": {"alerts": True, "level": "orange", "self_paid_fen_at_least": 2_000_000,
                      "within_days": 30, "spike_factor": 3, "spike_months": 12,
                      # A spike needs a history to be measured against: spend in at least this
                      # many of those months (else a first modest bill would be "a spike").
                      "spike_min_months": 6},
    "hospitalization": {"alerts": True, "level": "orange", "days_at_least": 15},
    "disability_certified": {"alerts": True, "level": "orange", "grade_at_most": 2},
    "death_in_household": {"alerts": True, "level": "red"},
    # These do not alert alone (they are kept, and join an alert a person already has).
    "serious_illness": {"alerts": False, "level": "yellow"},
    "unemployment_registered": {"alerts": False, "level": "blue"},
    "grid_report": {"alerts": False, "level": "yellow"},
}

# field -> (min, max) of the integer thresholds each kind may carry
_NUMBERS: dict[str, dict[str, tuple[int, int]]] = {
    "medical_spend": {"self_paid_fen_at_least": (1, 10**12), "within_days": (1, 366),
                      "spike_factor": (1, 100), "spike_months": (1, 60),
                      "spike_min_months": (1, 60)},
    "hospitalization": {"days_at_least": (1, 3650)},
    "disability_certified": {"grade_at_most": (1, 4)},
}


class Spend(NamedTuple):  # a tuple: a batch reads thousands of them
    observed_at: datetime
    self_paid_fen: int


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_rules(document: Any) -> dict[str, dict[str, Any]]:
    """The document if every kind is known and every value in range; else 422 with each
    field's message."""
    errors: dict[str, list[str]] = {}
    if not isinstance(document, dict):
        raise ValidationFailed({"rules": ["须为对象"]}, "预警规则格式有误")
    for kind in document:
        if kind not in KINDS:
            errors[kind] = ["未知的信号类型"]
    for kind in KINDS:
        rule = document.get(kind)
        if not isinstance(rule, dict):
            errors[kind] = ["缺少该类型的规则"]
            continue
        allowed = {"alerts", "level", *_NUMBERS.get(kind, {})}
        for name in set(rule) - allowed:
            errors[f"{kind}.{name}"] = ["未知的规则项"]
        if not isinstance(rule.get("alerts"), bool):
            errors[f"{kind}.alerts"] = ["须为 true 或 false"]
        if rule.get("level") not in LEVELS:
            errors[f"{kind}.level"] = [f"须为 {'、'.join(LEVELS)} 之一"]
        for name, (low, high) in _NUMBERS.get(kind, {}).items():
            value = rule.get(name)
            if not _is_int(value) or not low <= value <= high:
                errors[f"{kind}.{name}"] = [f"须为 {low} 到 {high} 之间的整数"]
    if errors:
        raise ValidationFailed(errors, "预警规则有误")
    return {kind: dict(document[kind]) for kind in KINDS}


def current_version() -> AlertRuleVersion | None:
    return db.session.execute(select(AlertRuleVersion)
                              .order_by(AlertRuleVersion.version.desc()).limit(1)).scalar()


def current_rules() -> tuple[int, dict[str, dict[str, Any]]]:
    """(version, rules) in force; version 0 is the defaults."""
    row = current_version()
    if row is None:
        return 0, copy.deepcopy(DEFAULT_RULES)
    return row.version, copy.deepcopy(row.rules)


@use_case
def replace_rules(actor: User, document: Any) -> AlertRuleVersion:
    """A new version of the rules, with who, when and the document before it (the audit)."""
    rules = validate_rules(document)
    # The primary key makes two concurrent changes of the same version collide: one fails.
    version, before = current_rules()
    row = AlertRuleVersion(version=version + 1, rules=rules, before=before,
                           changed_by=actor.id, changed_at=utcnow())
    db.session.add(row)
    db.session.flush()
    return row


def spend_window(rules: dict[str, dict[str, Any]], observed_at: datetime
                 ) -> tuple[datetime, datetime]:
    """The time range of earlier medical spend the medical-spend rules read for one signal."""
    rule = rules["medical_spend"]
    start = observed_at - timedelta(days=rule["within_days"] + 30 * rule["spike_months"])
    return start, observed_at


def evaluate(rules: dict[str, dict[str, Any]], kind: str, data: dict[str, Any],
             observed_at: datetime, spend: Iterable[Spend] = ()) -> list[str]:
    """The rules a new signal fires, e.g. ["medical_spend.threshold", "medical_spend.spike"];
    `spend` is the person's medical spend (this signal included) over `spend_window`."""
    rule = rules.get(kind)
    if not rule or not rule["alerts"]:
        return []
    if kind == "medical_spend":
        within = timedelta(days=rule["within_days"])
        recent = before = 0
        months: set[int] = set()
        for item in spend:
            if observed_at - within < item.observed_at <= observed_at:
                recent += item.self_paid_fen
            elif item.observed_at <= observed_at - within:
                before += item.self_paid_fen
                if item.self_paid_fen > 0:
                    months.add((observed_at - within - item.observed_at).days // 30)
        fired = []
        if recent >= rule["self_paid_fen_at_least"]:
            fired.append("medical_spend.threshold")
        # The average of the months that had spend: a history still filling in (a person
        # known for 7 months) must not read as a low average and make every bill a spike.
        monthly_average = before / max(len(months), 1)
        if (len(months) >= rule["spike_min_months"]
                and recent >= rule["spike_factor"] * monthly_average):
            fired.append("medical_spend.spike")
        return fired
    if kind == "hospitalization":
        return ["hospitalization"] if data["days"] >= rule["days_at_least"] else []
    if kind == "disability_certified":
        return ["disability_certified"] if data["grade"] <= rule["grade_at_most"] else []
    return [kind]


def level_of(rules: dict[str, dict[str, Any]], fired: Iterable[str]) -> str | None:
    """The most urgent level among the fired rules."""
    levels = [rules[name.split(".")[0]]["level"] for name in fired]
    return min(levels, key=LEVEL_RANK.__getitem__) if levels else None


def more_urgent(a: str, b: str) -> str:
    return a if LEVEL_RANK[a] <= LEVEL_RANK[b] else b
