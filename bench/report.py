"""Turning a run's figures into the targets verdict, a Markdown report and a PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RSS_TARGET_MIB = 200
ALL_READY_TARGET_S = 120
PODS_TO_READY_TARGET_S = 1.0
EXTRA_REQUESTS = 3
IDLE_REQUESTS_TARGET = 10
IDLE_CPU_TARGET = 1.0


def _largest(results: dict[str, Any]) -> dict[str, Any] | None:
    scale = results.get("scale") or []
    return max(scale, key=lambda s: s["clusters"]) if scale else None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the measured value and whether it was met."""
    rows: list[dict[str, Any]] = []

    def add(target: str, value: Any, met: bool | None, note: str = "") -> None:
        rows.append({"target": target, "measured": value, "met": met, "note": note})

    top = _largest(results)
    if top is not None:
        n = top["clusters"]
        note = "" if n >= 1000 else f"quick mode: largest N is {n}"
        value = top["all_ready_s"]
        add(
            f"{n} clusters created at once all Ready within {ALL_READY_TARGET_S} s",
            f"{value} s" if value is not None else f"{top['ready']}/{n} Ready (timed out)",
            value is not None and value <= ALL_READY_TARGET_S,
            note,
        )
        rss = top["operator_peak_rss_mib"]
        add(
            f"operator peak RSS ≤ {RSS_TARGET_MIB} MiB at {n} clusters",
            f"{rss} MiB",
            rss <= RSS_TARGET_MIB,
            note,
        )
        idle = top.get("idle")
        if idle:
            # The target counts requests "apart from watch streams": a watch the server ends
            # at its timeout and the informer re-opens is part of the stream, not a request
            # the operator chose to make. Both figures are shown.
            rpm = idle["requests_per_minute_excluding_watch"]
            add(
                f"idle ≤ {IDLE_REQUESTS_TARGET} requests/minute at {n} clusters, apart from "
                "watch streams",
                f"{rpm}/min ({idle['requests_per_minute']}/min with watch re-opens)",
                rpm <= IDLE_REQUESTS_TARGET,
                note,
            )
            cpu = idle["operator_cpu_percent"]
            add(
                f"idle operator CPU < {IDLE_CPU_TARGET}% of a core at {n} clusters",
                f"{cpu}%",
                cpu < IDLE_CPU_TARGET,
                note,
            )
    conv = results.get("converge")
    if conv:
        median = conv["pods_ready_to_status_ready_s"]["median"]
        add(
            f"median pods Ready → status Ready ≤ {PODS_TO_READY_TARGET_S} s",
            f"{median} s (p99 {conv['pods_ready_to_status_ready_s']['p99']} s)",
            median is not None and median <= PODS_TO_READY_TARGET_S,
        )
        children = conv["children_per_cluster"]["median"]
        per = conv["requests_per_cluster"]
        if children is not None:
            add(
                f"requests per new cluster ≤ children + {EXTRA_REQUESTS}",
                f"{per} (children: {children:g}, so ≤ {children + EXTRA_REQUESTS:g})",
                per <= children + EXTRA_REQUESTS,
            )
    resyncs = [s["resync"] for s in results.get("scale") or [] if s.get("resync")]
    if resyncs:
        worst = max(max(x["restart_writes"], x["periodic_writes"]) for x in resyncs)
        add(
            "zero writes on a resync of converged clusters (restart and periodic)",
            ", ".join(
                f"N={x['clusters']}: {x['restart_writes']}/{x['periodic_writes']}" for x in resyncs
            ),
            worst == 0,
        )
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) or "-"
    return str(value)


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "**missed**")


def markdown(results: dict[str, Any]) -> str:
    """The whole run as Markdown tables."""
    m = results["machine"]
    out = [
        f"# restate-op benchmarks ({results['mode']} run, {results['started']})",
        "",
        f"Machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['memory_gib']} GiB RAM, "
        f"{m['kernel']}; load average at start {m['load_average_at_start']}. "
        f"Control plane: {_fmt(results.get('versions'))}. Everything (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok, fake storage, the operator and the "
        "benchmark's own watches) shares these CPUs.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict | note |",
        "|---|---|---|---|",
    ]
    for row in results.get("targets") or []:
        out.append(
            f"| {row['target']} | {row['measured']} | {_verdict(row['met'])} | {row['note']} |"
        )
    conv = results.get("converge")
    if conv:
        out += [
            "",
            f"## Converge latency ({conv['clusters']} clusters, one after another)",
            "",
            "| interval | median s | p99 s | max s |",
            "|---|---|---|---|",
        ]
        for key, label in (
            ("create_to_children_applied_s", "create → all children applied (StatefulSet seen)"),
            ("children_applied_to_pods_ready_s", "children applied → pods Ready (the cluster)"),
            ("pods_ready_to_status_ready_s", "pods Ready → status Ready (the operator)"),
            ("create_to_status_ready_s", "create → status Ready"),
        ):
            s = conv[key]
            out.append(f"| {label} | {_fmt(s['median'])} | {_fmt(s['p99'])} | {_fmt(s['max'])} |")
        audited = conv["audit_requests_per_cluster"]
        out += [
            "",
            f"Requests per new cluster: {conv['requests_per_cluster']} "
            f"(audit log, per cluster: median {_fmt(audited['median'])}, "
            f"max {_fmt(audited['max'])}); children applied per "
            f"cluster: {_fmt(conv['children_per_cluster']['median'])}.",
            "",
            "| verb | per cluster, by kind |",
            "|---|---|",
        ]
        for verb, kinds in conv["requests_per_cluster_by_verb_kind"].items():
            out.append(f"| {verb} | {_fmt(kinds)} |")
    scale = results.get("scale") or []
    if scale:
        out += [
            "",
            "## Scale: N clusters created at once",
            "",
            "Times in seconds, median / p99 over the clusters. *children applied* and *status "
            "Ready* are the operator's work; *pods Ready* is the cluster's (StatefulSet "
            "controller, PVC binding, scheduler, kwok).",
            "",
            "| N | all Ready | creates took | create→Ready | create→children applied | "
            "children applied→pods Ready | pods Ready→status Ready |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in scale:
            out.append(
                f"| {s['clusters']} | {_fmt(s['all_ready_s'])} | {_fmt(s['creates_took_s'])} | "
                + " | ".join(
                    _pair(s.get(k))
                    for k in (
                        "create_to_ready_s",
                        "create_to_children_applied_s",
                        "children_applied_to_pods_ready_s",
                        "pods_ready_to_status_ready_s",
                    )
                )
                + " |"
            )
        out += [
            "",
            "| N | operator CPU s | operator peak RSS MiB | requests/cluster | "
            "reconciles/cluster | operator requests by verb | audit log by verb | "
            "reconcile errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in scale:
            out.append(
                f"| {s['clusters']} | {_fmt(s['cpu_seconds'].get('operator'))} | "
                f"{_fmt(s['operator_peak_rss_mib'])} | {_fmt(s['requests_per_cluster'])} | "
                f"{_fmt(s.get('reconciles_per_cluster'))} | "
                f"{_fmt(s['operator_requests_as_audit_verbs'])} | "
                f"{_fmt(s['audit_requests_by_verb'])} | {_fmt(s.get('reconcile_errors'))} |"
            )
        components = sorted({k for s in scale for k in s["cpu_seconds"]})
        out += [
            "",
            "CPU seconds per process while the N clusters converged (where the time goes):",
            "",
            "| N | " + " | ".join(components) + " |",
            "|---|" + "---|" * len(components),
        ]
        for s in scale:
            out.append(
                f"| {s['clusters']} | "
                + " | ".join(_fmt(s["cpu_seconds"].get(c)) for c in components)
                + " |"
            )
        out += [
            "",
            "Efficiency once converged (resync: operator restarted, then one periodic resync; "
            "idle: the converged operator left alone):",
            "",
            "| N | resync writes restart / periodic (audit) | first pass after restart s | "
            "idle window s | idle req/min (without watch) | idle audit req/min | "
            "idle operator CPU % | idle requests by verb |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in scale:
            rs, idle = s.get("resync") or {}, s.get("idle") or {}
            out.append(
                f"| {s['clusters']} | {_fmt(rs.get('restart_writes'))} / "
                f"{_fmt(rs.get('periodic_writes'))} ({_fmt(rs.get('restart_audit_writes'))} / "
                f"{_fmt(rs.get('periodic_audit_writes'))}) | {_fmt(rs.get('first_pass_s'))} | "
                f"{_fmt(idle.get('window_s'))} | {_fmt(idle.get('requests_per_minute'))} "
                f"({_fmt(idle.get('requests_per_minute_excluding_watch'))}) | "
                f"{_fmt(idle.get('audit_requests_per_minute'))} | "
                f"{_fmt(idle.get('operator_cpu_percent'))} | "
                f"{_fmt(_flatten(idle.get('requests_by_verb_kind') or {}))} |"
            )
    conc = results.get("concurrency") or []
    if conc:
        out += [
            "",
            f"## Concurrency: {conc[0]['clusters']} clusters at once, by --concurrency",
            "",
            "| --concurrency | all Ready s | create→Ready median / p99 s | create→children "
            "applied median / p99 s | pods Ready→status Ready median / p99 s | operator CPU s | "
            "operator peak RSS MiB | req/cluster | kube-apiserver CPU s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in conc:
            out.append(
                f"| {s['concurrency']} | {_fmt(s['all_ready_s'])} | "
                f"{_pair(s['create_to_ready_s'])} | "
                f"{_pair(s.get('create_to_children_applied_s'))} | "
                f"{_pair(s['pods_ready_to_status_ready_s'])} | "
                f"{_fmt(s['cpu_seconds'].get('operator'))} | "
                f"{_fmt(s['operator_peak_rss_mib'])} | {_fmt(s['requests_per_cluster'])} | "
                f"{_fmt(s['cpu_seconds'].get('kube-apiserver'))} |"
            )
    exp = results.get("expansion")
    if exp:
        out += [
            "",
            f"## Expansion: {exp['replicas']} replicas, {exp['from_bytes'] // 1024**3} GiB → "
            f"{exp['to_bytes'] // 1024**3} GiB (autoProvision: false)",
            "",
            "| cluster | → Expanding s | → StatefulSet re-created s | → all PVCs grown s | "
            "→ status Ready s | operator requests |",
            "|---|---|---|---|---|---|",
        ]
        for run in exp["runs"]:
            out.append(
                f"| {run['cluster']} | {_fmt(run.get('to_expanding_s'))} | "
                f"{_fmt(run.get('to_statefulset_recreated_s'))} | "
                f"{_fmt(run.get('to_all_pvcs_grown_s'))} | {_fmt(run.get('to_status_ready_s'))} | "
                f"{_fmt(_flatten(run.get('operator_requests') or {}))} |"
            )
    if results.get("rsd"):
        out += deployments_markdown(results["rsd"])
    if results.get("health"):
        out += health_markdown(results["health"], results.get("scale") or [])
    for note in results.get("notes") or []:
        out += ["", note]
    return "\n".join(out) + "\n"


def health_markdown(h: dict[str, Any], scale: list[dict[str, Any]]) -> list[str]:
    """Health from Restate at N Ready clusters: the operator with its reads on beside the
    same run's baseline (the same clusters, reads off), and this run's idle figures if the
    scale scenario ran too (same N if measured, else the nearest)."""
    n = h["clusters"]
    idles = [s for s in scale if s.get("idle")]
    near = min(idles, key=lambda s: abs(s["clusters"] - n)) if idles else None
    base = h.get("baseline")

    def row(label: str, m: dict[str, Any], clusters: int) -> str:
        calls = m.get("grpc_calls_per_cluster_per_minute")
        return (
            f"| {label} | {clusters} | {_fmt(m['window_s'])} | {_fmt(calls)} | "
            f"{_fmt(m['requests_per_minute'])} "
            f"({_fmt(m['requests_per_minute_excluding_watch'])}) | "
            f"{_fmt(m.get('reconciles_per_minute'))} | "
            f"{_fmt(m['operator_cpu_percent'])} | {_fmt(m['operator_rss_mib'])} |"
        )

    out = [
        "",
        f"## Health from Restate: {n} Ready clusters ({h['replicas']} replica, "
        f"{h['partitions']} partitions each), nodes answered by a stand-in",
        "",
        f"All Ready after {_fmt(h['all_ready_s'])} s, every partition led in status.restate "
        f"after {_fmt(h['all_led_s'])} s ({h['led']}/{n}); window {_fmt(h['window_s'])} s. "
        f"gRPC calls per cluster per minute: {_fmt(h['grpc_calls_per_cluster_per_minute'])} "
        f"({_fmt(h['grpc_calls_per_cluster_per_minute_by_method'])}).",
    ]
    if base is not None:
        out += [
            "",
            "Each row is a fresh operator over the same Ready clusters, one after the other, "
            "measured once it had read every cluster and settled: reads off "
            "(`--restate-health-seconds 0`, no reads while Ready) is the baseline, reads on "
            "the default (every 30 s on the operator's own clock, a reconcile only when the answer "
            "changed, channels kept between reads); a channel per read "
            "(`--restate-health-channels 0`) opens and closes one per pod each read, as "
            "before the operator kept them; reads off, again, repeats the baseline last: its "
            "difference is this bench's noise.",
        ]
    out += [
        "",
        "| | clusters | window s | gRPC calls/cluster/min | kube req/min (without watch) "
        "| reconciles/min | operator CPU % | operator RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if base is None:
        out.append(row("health", h, n))
    else:
        # The first mode is the baseline (bench.health.MODES).
        modes: dict[str, dict[str, Any]] = h.get("modes") or {"reads off": base, "reads on": h}
        (first, _), *others = modes.items()
        out.append(row(f"{first} (baseline)", base, n))
        out += [row(mode, m, n) for mode, m in others]
        for mode, m in others:
            cpu = m["operator_cpu_percent"] - base["operator_cpu_percent"]
            rss = m["operator_rss_mib"] - base["operator_rss_mib"]
            out.append(f"| {mode} - baseline | | | | | | {cpu:+.2f} | {rss:+.1f} |")
    if near is not None:
        out.append(
            row(
                "idle (scale)",
                {**near["idle"], "grpc_calls_per_cluster_per_minute": None},
                near["clusters"],
            )
        )
    elif base is None:
        out += ["", "No idle figures in this run to compare with (run with scale too)."]
    out += [
        "",
        f"Kubernetes requests in the window by verb and kind: "
        f"{_fmt(_flatten(h['requests_by_verb_kind']))}.",
    ]
    return out


def _triple(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "-"
    return " / ".join(_fmt(summary.get(k)) for k in ("p50", "p95", "max"))


def deployments_markdown(rsd: dict[str, Any]) -> list[str]:
    """The RestateDeployment rounds: latency and requests per version change, then idle."""
    how = "all at once" if rsd["at_once"] else "one after another"
    out = [
        "",
        f"## RestateDeployments: {rsd['deployments']} RSDs, each version change {how}",
        "",
        "Seconds from applying the template, p50 / p95 / max; requests per version change "
        "(Kubernetes: the operator's, from the audit log, watches excluded; admin API: what "
        "the stand-in received).",
        "",
        "| round | → new version Registering | → new version Latest | → old version Retired "
        "| kube requests | admin requests |",
        "|---|---|---|---|---|---|",
    ]
    for r in rsd["rounds"]:
        out.append(
            f"| {r['round']} | {_triple(r['to_registering_s'])} | {_triple(r['to_latest_s'])} | "
            f"{_triple(r.get('to_old_retired_s'))} | {_fmt(r['kube_requests_per_change'])} | "
            f"{_fmt(r['admin_requests_per_change'])} |"
        )
    out += [
        "",
        "| round | kube requests per change, by verb and resource | admin requests "
        "per change, by method and path |",
        "|---|---|---|",
    ]
    for r in rsd["rounds"]:
        out.append(
            f"| {r['round']} | {_fmt(_flatten(r['kube_requests_per_change_by_verb_resource']))} "
            f"| {_fmt(r['admin_requests_per_change_by_method_path'])} |"
        )
    wasted = [
        (r["round"], kind, line)
        for r in rsd["rounds"]
        for kind, lines in (r.get("wasted_writes") or {}).items()
        for line in lines
    ]
    out += [
        "",
        f"Writes that changed nothing or only bookkeeping (managedFields, desired-hash): "
        f"{len(wasted)}.",
    ]
    if wasted:
        out += ["", "```"] + [f"{rnd}: {kind}: {line}" for rnd, kind, line in wasted[:40]]
        out += ["```"]
    idle = rsd.get("idle") or {}
    if idle:
        out += [
            "",
            f"Idle ({_fmt(idle.get('window_s'))} s, all converged): "
            f"{_fmt(idle.get('kube_requests_per_minute_of_the_rsds'))} kube requests/min for "
            f"the RSDs ({_fmt(idle.get('kube_requests_per_minute'))}/min in all, watches and "
            f"the Lease apart), {_fmt(idle.get('admin_requests_per_minute'))} admin "
            f"requests/min ({_fmt(idle.get('admin_requests_by_method_path'))}).",
        ]
    return out


def _pair(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "-"
    return f"{_fmt(summary.get('median'))} / {_fmt(summary.get('p99'))}"


def _flatten(nested: dict[str, dict[str, int]]) -> dict[str, int]:
    return {f"{verb} {kind}": v for verb, kinds in nested.items() for kind, v in kinds.items()}


def plot(results: dict[str, Any], path: Path) -> bool:
    """Converge time and operator RSS against N (and against --concurrency if measured).

    Returns ``False`` (and draws nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: PLC0415 - optional, only for the picture

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    scale = sorted(results.get("scale") or [], key=lambda s: s["clusters"])
    conc = results.get("concurrency") or []
    panels = 2 + (1 if conc else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    ns = [s["clusters"] for s in scale]
    ax = axes[0][0]
    ax.plot(ns, [s["all_ready_s"] for s in scale], "o-", label="all Ready")
    ax.plot(ns, [s["create_to_ready_s"]["median"] for s in scale], "s--", label="median cluster")
    ax.axhline(ALL_READY_TARGET_S, color="grey", linestyle=":", label="target (N=1000)")
    ax.set(xlabel="clusters created at once (N)", ylabel="seconds", title="Time to Ready")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax = axes[0][1]
    ax.plot(
        ns,
        [s["operator_peak_rss_mib"] for s in scale],
        "o-",
        color="tab:red",
        label="operator peak RSS",
    )
    ax.axhline(RSS_TARGET_MIB, color="grey", linestyle=":", label="target")
    ax.set(xlabel="clusters (N)", ylabel="MiB", title="Operator memory", ylim=(0, None))
    ax.legend()
    if conc:
        ax = axes[0][2]
        levels = [s["concurrency"] for s in conc]
        ax.plot(levels, [s["all_ready_s"] for s in conc], "o-", label="all Ready")
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.set(
            xlabel="--concurrency",
            ylabel="seconds",
            title=f"{conc[0]['clusters']} clusters at once",
        )
        ax.legend()
    fig.suptitle(f"restate-op ({results['mode']} run, {results['started']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


README_START = "<!-- bench-targets:start -->"
README_END = "<!-- bench-targets:end -->"


def readme_block(results: dict[str, Any]) -> str:
    """The README's benchmark summary: where the figures come from, and the targets table."""
    m = results["machine"]
    lines = [
        README_START,
        f"Latest full run ({results['started']}, restate-op "
        f"{(results.get('versions') or {}).get('restate-op', '?')}): {m['cpu_model']}, "
        f"{m['nproc']} CPUs, {m['memory_gib']} GiB, the control plane and the operator sharing "
        "the CPUs.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for row in results.get("targets") or []:
        lines.append(f"| {row['target']} | {row['measured']} | {_verdict(row['met'])} |")
    lines.append(README_END)
    return "\n".join(lines)


def update_readme(results: dict[str, Any], readme: Path) -> bool:
    """Replace the summary between the README's markers; ``False`` if it has none."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    readme.write_text(text[:start] + readme_block(results) + text[end + len(README_END) :])
    return True
