# ruff: noqa: E501
"""Restate configuration rules probed from restate-server 1.7.12. GENERATED, do not edit.

Regenerate with ``python -m e2e.restate_schema_probe`` (runs restate-server
--dump-config in a loopback-only network namespace). KEYS: dotted key -> rules
(see e2e.restate_schema_probe._classify; rule names sharing a value are joined by
commas). SECTIONS: table key -> what Restate expects there instead of a value.
"""

from typing import Final

RESTATE_VERSION: Final = "restate-server 1.7.12"

KEYS: Final[dict[str, dict[str, str]]] = {
    "admin.disable-web-ui": {"array,float,integer,string,table": "type:a boolean"},
    "admin.heartbeat-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "admin.query-engine.memory-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "auto-provision": {"array,float,integer,string,table": "type:a boolean"},
    "bifrost.append-retry-max-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "bifrost.append-retry-min-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "bifrost.auto-recovery-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "bifrost.default-provider": {
        "array,boolean,float,integer": "type:enum ProviderKind",
        "string": "enum:one of `local`, `in-memory`, `replicated`",
        "table": "type:enum",
    },
    "bifrost.disable-auto-improvement": {"array,float,integer,string,table": "type:a boolean"},
    "bifrost.local.rocksdb-block-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "bifrost.local.rocksdb-compaction-readahead-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "bifrost.local.rocksdb-disable-auto-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "bifrost.local.rocksdb-disable-direct-io-for-flush-and-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "bifrost.local.rocksdb-disable-direct-io-for-reads": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "bifrost.local.rocksdb-disable-l0-l1-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "bifrost.local.rocksdb-disable-statistics": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "bifrost.local.rocksdb-disable-wal": {"array,float,integer,string,table": "type:a boolean"},
    "bifrost.local.rocksdb-disable-wal-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "bifrost.local.rocksdb-disable-wal-fsync": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "bifrost.local.rocksdb-log-keep-file-num": {
        "array,boolean,float,string,table": "type:usize",
        "negative": "usize",
    },
    "bifrost.local.rocksdb-log-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `debug`, `info`, `warn`, `error`, `fatal`, `header`",
    },
    "bifrost.local.rocksdb-log-max-file-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "bifrost.local.rocksdb-max-background-compactions": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "bifrost.local.rocksdb-max-background-flushes": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "bifrost.local.rocksdb-memory-budget": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "bifrost.local.rocksdb-memory-ratio": {"array,boolean,string,table": "type:f32"},
    "bifrost.local.rocksdb-statistics-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `disable-all`, `except-histogram-or-timers`, `except-timers`, `except-detailed-timers`, `except-time-for-mutex`, `all`",
    },
    "bifrost.local.writer-batch-commit-count": {
        "array,boolean,float,string,table": "type:usize",
        "negative": "usize",
    },
    "bifrost.local.writer-batch-commit-duration": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "bifrost.record-cache-memory-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
    },
    "bifrost.record-size-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "bifrost.replicated-loglet.maximum-inflight-records": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "bifrost.replicated-loglet.read-batch-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "bifrost.replicated-loglet.readahead-records": {
        "array,boolean,float,string,table": "type:a nonzero u16",
        "huge,negative,zero": "a nonzero u16",
    },
    "bifrost.replicated-loglet.readahead-trigger-ratio": {"array,boolean,string,table": "type:f32"},
    "bifrost.replicated-loglet.rpc-timeout": {"array,boolean,float,integer,table": "type:a string"},
    "bifrost.replicated-loglet.sequencer-inactivity-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "bifrost.replicated-loglet.store-timeout": {
        "array,boolean,float,integer,table": "type:a string"
    },
    "bifrost.seal-retry-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "cluster-name": {"array,boolean,float,integer,table": "type:a string"},
    "default-idempotency-retention": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "default-journal-retention": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "default-num-partitions": {
        "array,boolean,float,string,table": "type:u16",
        "huge,negative": "u16",
    },
    "default-retry-policy.exponentiation-factor": {"array,boolean,string,table": "type:f32"},
    "default-retry-policy.initial-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "default-retry-policy.max-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "default-retry-policy.on-max-attempts": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:`pause` or `kill`",
    },
    "default-workflow-completion-retention": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "disable-prometheus": {"array,float,integer,string,table": "type:a boolean"},
    "disable-telemetry": {"array,float,integer,string,table": "type:a boolean"},
    "gossip-extras-exchange-frequency": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "gossip-failure-threshold": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "gossip-fd-stability-threshold": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "gossip-loneliness-threshold": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "gossip-num-peers": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "gossip-suspect-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "gossip-tick-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "gossip-time-skew-threshold": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "hlc-max-drift": {"array,boolean,float,integer,table": "type:a human-friendly duration string"},
    "ingress.ingestion.inflight-memory-budget": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "ingress.ingestion.request-batch-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "ingress.kafka-clusters": {
        "boolean,float,integer,string,table": "type:a sequence",
        "items-integer,items-string": "type:struct KafkaClusterOptions",
    },
    "ingress.request-size-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "initialization-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "log-disable-ansi-codes": {"array,float,integer,string,table": "type:a boolean"},
    "log-filter": {"array,boolean,float,integer,table": "type:a string"},
    "log-format": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `pretty`, `compact`, `json`",
    },
    "log-server.rocksdb-block-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "log-server.rocksdb-compaction-readahead-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "log-server.rocksdb-disable-auto-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-disable-direct-io-for-flush-and-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-disable-direct-io-for-reads": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-disable-l0-l1-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-disable-statistics": {"array,float,integer,string,table": "type:a boolean"},
    "log-server.rocksdb-disable-wal-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-disable-wal-fsync": {"array,float,integer,string,table": "type:a boolean"},
    "log-server.rocksdb-enable-blob-separation": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-l0-num-compaction-trigger": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "log-server.rocksdb-log-keep-file-num": {
        "array,boolean,float,string,table": "type:usize",
        "negative": "usize",
    },
    "log-server.rocksdb-log-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `debug`, `info`, `warn`, `error`, `fatal`, `header`",
    },
    "log-server.rocksdb-log-max-file-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "log-server.rocksdb-max-background-compactions": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "log-server.rocksdb-max-file-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "log-server.rocksdb-max-sub-compactions": {
        "array,boolean,float,string,table": "type:u32",
        "huge,negative": "u32",
    },
    "log-server.rocksdb-memory-budget": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "log-server.rocksdb-memory-ratio": {"array,boolean,string,table": "type:f32"},
    "log-server.rocksdb-partition-sst-by-log": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-partition-sst-by-loglet": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "log-server.rocksdb-statistics-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `disable-all`, `except-histogram-or-timers`, `except-timers`, `except-detailed-timers`, `except-time-for-mutex`, `all`",
    },
    "log-server.rocksdb-writable-file-max-buffer-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "metadata-fetch-from-peer-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "metadata-server.auto-join": {"array,float,integer,string,table": "type:a boolean"},
    "metadata-server.log-trim-threshold": {
        "array,boolean,float,string,table": "type:u64",
        "negative": "u64",
    },
    "metadata-server.raft-election-tick": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "metadata-server.raft-heartbeat-tick": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "metadata-server.raft-tick-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "metadata-server.request-queue-length": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "metadata-server.rocksdb-block-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "metadata-server.rocksdb-compaction-readahead-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "metadata-server.rocksdb-disable-auto-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "metadata-server.rocksdb-disable-direct-io-for-flush-and-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "metadata-server.rocksdb-disable-direct-io-for-reads": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "metadata-server.rocksdb-disable-l0-l1-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "metadata-server.rocksdb-disable-statistics": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "metadata-server.rocksdb-disable-wal-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "metadata-server.rocksdb-log-keep-file-num": {
        "array,boolean,float,string,table": "type:usize",
        "negative": "usize",
    },
    "metadata-server.rocksdb-log-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `debug`, `info`, `warn`, `error`, `fatal`, `header`",
    },
    "metadata-server.rocksdb-log-max-file-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "metadata-server.rocksdb-max-background-compactions": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "metadata-server.rocksdb-max-background-flushes": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "metadata-server.rocksdb-memory-budget": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "metadata-server.rocksdb-memory-ratio": {"array,boolean,string,table": "type:f32"},
    "metadata-server.rocksdb-statistics-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `disable-all`, `except-histogram-or-timers`, `except-timers`, `except-detailed-timers`, `except-time-for-mutex`, `all`",
    },
    "metadata-server.status-update-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "metadata-update-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "networking.connect-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "networking.data-stream-window-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "networking.disable-compression": {"array,float,integer,string,table": "type:a boolean"},
    "networking.handshake-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "networking.http2-adaptive-window": {"array,float,integer,string,table": "type:a boolean"},
    "networking.http2-keep-alive-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "networking.http2-keep-alive-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "rocksdb-max-write-rate-per-second": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "rocksdb-perf-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `disable`, `enable-count`, `enable-time-except-for-mutex`, `enable-time-and-c-p-u-time-except-for-mutex`, `enable-time`",
    },
    "rocksdb-total-memory-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "rocksdb-total-memtables-ratio": {"array,boolean,string,table": "type:f32"},
    "roles": {
        "boolean,float,integer,string,table": "type:a list of Role",
        "items-integer": "type:string or map",
        "items-string": "enum:one of `http-ingress`, `admin`, `worker`, `log-server`, `metadata-server`, `metadata-store`",
    },
    "shutdown-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "tracing-filter": {"array,boolean,float,integer,table": "type:a string"},
    "worker.cleanup-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.data-service-memory-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.internal-queue-length": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "worker.invoker.abort-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.invoker.additional-request-headers.x-restate-cluster-name": {
        "array,boolean,float,integer,table": "type:a string"
    },
    "worker.invoker.concurrent-invocations-limit": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "worker.invoker.connect-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.invoker.eager-state-size-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
    },
    "worker.invoker.http2-idle-connection-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.invoker.http2-initial-connection-window-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.invoker.http2-initial-stream-window-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.invoker.http2-keep-alive-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.invoker.http2-keep-alive-jitter": {"array,boolean,string,table": "type:f32"},
    "worker.invoker.http2-keep-alive-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.invoker.http2-max-frame-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.invoker.http2-streams-per-connection-limit": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "worker.invoker.in-memory-queue-length-limit": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "worker.invoker.inactivity-timeout": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.invoker.max-awaited-future-depth": {
        "array,boolean,float,string,table": "type:usize",
        "negative": "usize",
    },
    "worker.invoker.memory-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.invoker.message-size-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.invoker.message-size-warning": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.invoker.per-invocation-initial-memory": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.invoker.per-invocation-memory-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
    },
    "worker.invoker.request-compression-threshold": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
    },
    "worker.invoker.request-identity-expiration": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.max-command-batch-bytes": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.max-command-batch-size": {
        "array,boolean,float,string,table": "type:a nonzero usize",
        "negative,zero": "a nonzero usize",
    },
    "worker.rule-book-poll-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
    "worker.self-proposal-queue-memory-limit": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.shuffle.inflight-memory-budget": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.shuffle.request-batch-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.snapshots.num-retained": {
        "array,boolean,float,string,table": "type:a nonzero u8",
        "huge,negative,zero": "a nonzero u8",
    },
    "worker.storage.rocksdb-block-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.storage.rocksdb-compaction-readahead-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.storage.rocksdb-disable-auto-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "worker.storage.rocksdb-disable-auto-memory-reclaimer": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "worker.storage.rocksdb-disable-direct-io-for-flush-and-compactions": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "worker.storage.rocksdb-disable-direct-io-for-reads": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "worker.storage.rocksdb-disable-l0-l1-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "worker.storage.rocksdb-disable-statistics": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "worker.storage.rocksdb-disable-wal-compression": {
        "array,float,integer,string,table": "type:a boolean"
    },
    "worker.storage.rocksdb-l0-num-compaction-trigger": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "worker.storage.rocksdb-log-keep-file-num": {
        "array,boolean,float,string,table": "type:usize",
        "negative": "usize",
    },
    "worker.storage.rocksdb-log-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `debug`, `info`, `warn`, `error`, `fatal`, `header`",
    },
    "worker.storage.rocksdb-log-max-file-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.storage.rocksdb-max-background-compactions": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "worker.storage.rocksdb-max-background-flushes": {
        "array,boolean,float,string,table": "type:a nonzero u32",
        "huge,negative,zero": "a nonzero u32",
    },
    "worker.storage.rocksdb-max-file-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.storage.rocksdb-max-sub-compactions": {
        "array,boolean,float,string,table": "type:u32",
        "huge,negative": "u32",
    },
    "worker.storage.rocksdb-memory-budget": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.storage.rocksdb-memory-ratio": {"array,boolean,string,table": "type:f32"},
    "worker.storage.rocksdb-statistics-level": {
        "array,boolean,float,integer": "type:string or map",
        "string": "enum:one of `disable-all`, `except-histogram-or-timers`, `except-timers`, `except-detailed-timers`, `except-time-for-mutex`, `all`",
    },
    "worker.storage.rocksdb-writable-file-max-buffer-size": {
        "array,boolean,float,table": "type:an integer or string",
        "negative": "i64 overflow",
        "string": "bytes:a human-readable byte count string",
        "zero": "non-zero value",
    },
    "worker.trim-delay-interval": {
        "array,boolean,float,integer,table": "type:a human-friendly duration string"
    },
}

SECTIONS: Final[dict[str, str]] = {
    "admin": "struct AdminOptions",
    "admin.query-engine": "struct QueryEngineOptions",
    "bifrost": "struct BifrostOptions",
    "bifrost.local": "struct LocalLogletOptions",
    "bifrost.replicated-loglet": "struct ReplicatedLogletOptions",
    "default-retry-policy": "struct InvocationRetryPolicyOptions",
    "ingress": "struct IngressOptions",
    "ingress.ingestion": "struct IngestionOptions",
    "log-server": "struct LogServerOptions",
    "metadata-server": "struct MetadataServerOptions",
    "networking": "struct NetworkingOptions",
    "worker": "struct WorkerOptions",
    "worker.invoker": "struct InvokerOptions",
    "worker.invoker.additional-request-headers": "header map",
    "worker.shuffle": "struct IngestionOptions",
    "worker.snapshots": "struct SnapshotsOptions",
    "worker.storage": "struct StorageOptions",
}
