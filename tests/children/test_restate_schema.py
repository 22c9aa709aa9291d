"""Restate's configuration rules applied without Restate: texts observed on restate-server 1.7.

Every expected message below was printed by a real restate-server 1.7.12 (``--dump-config``
inside a loopback-only network namespace); e2e/test_restate_conformance.py re-checks the
rules of every key against the binary.
"""

from __future__ import annotations

import datetime
import tomllib

import pytest

from restate_op.children.restate_schema import check_config, env_key, parse_byte_count
from restate_op.validation import validate
from tests.children.helpers import make_cluster


def errors(text: str, env: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return check_config(tomllib.loads(text), env)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            'log-format = "purple"',
            "log-format",
            "unknown variant: found `purple`, expected `one of `pretty`, `compact`, `json``",
        ),
        (
            'default-num-partitions = "abc"',
            "default-num-partitions",
            'invalid type: found string "abc", expected u16',
        ),
        (
            "default-num-partitions = 70000",
            "default-num-partitions",
            "invalid value signed int `70000`, expected u16",
        ),
        (
            "default-num-partitions = -1",
            "default-num-partitions",
            "invalid value signed int `-1`, expected u16",
        ),
        (
            "default-num-partitions = 1.5",
            "default-num-partitions",
            "invalid type: found float `1.5`, expected u16",
        ),
        (
            'auto-provision = "yes"',
            "auto-provision",
            'invalid type: found string "yes", expected a boolean',
        ),
        (
            'roles = ["worker", "bogus"]',
            "roles",
            "unknown variant: found `bogus`, expected `one of `http-ingress`, `admin`, "
            "`worker`, `log-server`, `metadata-server`, `metadata-store``",
        ),
        (
            'roles = "worker"',
            "roles",
            'invalid type: found string "worker", expected a list of Role',
        ),
        (
            'rocksdb-total-memory-size = "lots"',
            "rocksdb-total-memory-size",
            'invalid value string "lots", expected a human-readable byte count string',
        ),
        (
            'rocksdb-total-memory-size = "0 KiB"',
            "rocksdb-total-memory-size",
            'invalid value string "0 KiB", expected non-zero value',
        ),
        (
            "shutdown-timeout = 5",
            "shutdown-timeout",
            "invalid type: found signed int `5`, expected a human-friendly duration string",
        ),
        (
            "cluster-name = 5",
            "cluster-name",
            "invalid type: found signed int `5`, expected a string",
        ),
        (
            "tracing-filter = true",
            "tracing-filter",
            "invalid type: found bool true, expected a string",
        ),
        (
            "[worker.invoker]\ninactivity-timeout = []",
            "worker.invoker.inactivity-timeout",
            "invalid type: found sequence, expected a human-friendly duration string",
        ),
        (
            "worker = 5",
            "worker",
            "invalid type: found signed int `5`, expected struct WorkerOptions",
        ),
        (
            "default-num-partitions = 2.0",
            "default-num-partitions",
            "invalid type: found float `2`, expected u16",
        ),
        (
            "default-num-partitions = 1e20",
            "default-num-partitions",
            "invalid type: found float `100000000000000000000`, expected u16",
        ),
        (
            "default-num-partitions = 1.5e-7",
            "default-num-partitions",
            "invalid type: found float `0.00000015`, expected u16",
        ),
        (
            "default-num-partitions = -0.0",
            "default-num-partitions",
            "invalid type: found float `-0`, expected u16",
        ),
        (
            "default-num-partitions = nan",
            "default-num-partitions",
            "invalid type: found float `NaN`, expected u16",
        ),
        (
            "default-num-partitions = -inf",
            "default-num-partitions",
            "invalid type: found float `-inf`, expected u16",
        ),
        (
            'default-num-partitions = "a\\"b\\\\c\\n\\té\'x\\u001b\\u200b\\u00a0"',
            "default-num-partitions",
            'invalid type: found string "a\\"b\\\\c\\n\\té\'x\\u{1b}'
            '\\u{200b}\\u{a0}", expected u16',
        ),
        (
            "default-num-partitions = 1979-05-27",
            "default-num-partitions",
            "invalid type: found map, expected u16",
        ),
    ],
)
def test_restate_texts(text: str, key: str, message: str) -> None:
    assert errors(text) == [(key, message)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unknown-key = 1",
        "[worker]\nfoo = 1",
        "[nonsense]\nx = 1",
        'roles = ["admin", "worker"]',
        "default-num-partitions = 0",
        "rocksdb-total-memtables-ratio = 1",
        'rocksdb-total-memory-size = "512MiB"',
        "rocksdb-total-memory-size = 5",
        'shutdown-timeout = "5 fortnights"',  # duration contents are not checked
        '[metadata-client]\ntype = "bogus"',  # Restate accepts this too
        'default-replication = "{zone: 2}"',  # replication properties: not predictable
        "log-format = {json = {}}",  # an enum as a map: not checked
    ],
)
def test_accepted_or_not_checked(text: str) -> None:
    assert errors(text) == []


def test_keys_set_by_the_environment_are_not_read_from_the_file() -> None:
    assert errors('log-format = "purple"', ("RESTATE_LOG_FORMAT",)) == []
    text = "[worker.invoker]\ninactivity-timeout = 5\n[worker]\ncleanup-interval = 5"
    assert [k for k, _ in errors(text, ("RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT",))] == [
        "worker.cleanup-interval"
    ]
    assert errors(text, ("RESTATE_WORKER",)) == []


def test_env_key() -> None:
    assert env_key("RESTATE_LOG_FORMAT") == "log-format"
    assert env_key("RESTATE_METADATA_CLIENT__ADDRESSES") == "metadata-client.addresses"
    assert (
        env_key("RESTATE_worker__invoker__inactivity_timeout")
        == "worker.invoker.inactivity-timeout"
    )
    assert env_key("POD_NAME") is None
    assert env_key("RESTATE_") is None


# Each case observed on restate-server 1.7.12 (None: refused).
BYTE_COUNTS: list[tuple[str, int | None]] = [
    ("5", 5),
    ("+5", 5),
    ("5b", 5),
    ("5 B", 5),
    ("5kb", 5000),
    ("5KB", 5000),
    ("5Kb", 5000),
    ("5k", 5000),
    ("5ki", 5120),
    ("5KiB", 5120),
    ("5  KiB", 5120),
    ("5\tKiB", 5120),
    ("5.5 MiB", int(5.5 * 1024**2)),
    (".5 MiB", 512 * 1024),
    ("5. MiB", 5 * 1024**2),
    ("5 m", 5 * 1000**2),
    ("5 gib", 5 * 1024**3),
    ("5 t", 5 * 1000**4),
    ("5 pib", 5 * 1024**5),
    ("5 e", 5 * 1000**6),
    ("5 EB", 5 * 1000**6),
    ("5.5.5 MiB", None),
    ("5 bytes", None),
    ("5 byte", None),
    ("5 KiBs", None),
    ("", None),
    ("1e3", None),
    ("5_000", None),
    ("1,000", None),
    ("0.1", None),
    ("99999999999999999999", None),
    ("5 ib", None),
    ("5GB ", None),
    (" 5GB", None),
    ("-5", None),
    ("lots", None),
]


@pytest.mark.parametrize(("text", "size"), BYTE_COUNTS)
def test_byte_counts(text: str, size: int | None) -> None:
    assert parse_byte_count(text) == size


def test_validate_reports_restate_text_as_invalid_config() -> None:
    [problem] = validate(make_cluster({"config": "default-num-partitions = 70000\n"}))
    assert problem.reason == "InvalidConfig"
    assert problem.field == "spec.config"
    assert "restate-server 1.7.12 would refuse to start" in problem.message
    assert "default-num-partitions: invalid value signed int `70000`, expected u16" in (
        problem.message
    )


def test_validate_skips_what_the_generated_env_overrides() -> None:
    # RESTATE_LOG_FORMAT=json is in every pod: Restate never reads log-format from the file.
    assert validate(make_cluster({"config": 'log-format = "purple"\n'})) == []
    user_env = {"compute": {"env": [{"name": "RESTATE_DEFAULT_NUM_PARTITIONS", "value": "8"}]}}
    assert validate(make_cluster({**user_env, "config": "default-num-partitions = -1\n"})) == []


def test_toml_date_is_a_map() -> None:
    assert check_config({"cluster-name": datetime.date(2020, 1, 1)}) == [
        ("cluster-name", "invalid type: found map, expected a string")
    ]
