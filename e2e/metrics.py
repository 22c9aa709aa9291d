"""Reading the operator's Prometheus metrics in e2e tests."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from e2e.operator_process import OperatorProcess

WRITE_VERBS = ("apply", "patch", "create", "update", "delete")


def samples_in(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample named ``name`` (a counter's with its ``_total``) in Prometheus ``text``, as
    (labels, value)."""
    return [
        (dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def samples(operator: OperatorProcess, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of metric ``name`` as (labels, value), read from the operator's /metrics."""
    _, text = operator.http("/metrics")
    return samples_in(text, name)


def writes_by_verb_kind(operator: OperatorProcess) -> Counter[tuple[str, str]]:
    """API write requests the operator sent so far (apply/patch/create/update/delete), by
    (verb, kind)."""
    found: Counter[tuple[str, str]] = Counter()
    for labels, value in samples(operator, "restate_operator_api_requests_total"):
        if labels.get("verb") in WRITE_VERBS:
            found[(labels["verb"], labels.get("kind", ""))] += int(value)
    return found


def write_requests(operator: OperatorProcess, *, exclude_kinds: tuple[str, ...] = ()) -> float:
    """API write requests the operator sent (apply/patch/create/update/delete)."""
    return sum(
        n for (_, kind), n in writes_by_verb_kind(operator).items() if kind not in exclude_kinds
    )


def reconciles(operator: OperatorProcess) -> float:
    return sum(v for _, v in samples(operator, "restate_operator_reconciliations_total"))


def is_leader(operator: OperatorProcess) -> bool:
    return any(v == 1 for _, v in samples(operator, "restate_operator_leader"))
