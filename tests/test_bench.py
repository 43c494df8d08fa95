"""The benchmark script works (CI runs it with --quick; the figures in docs/BENCHMARKS.md come from full runs)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

KEYS = {"overhead_ratio", "engagements_per_s", "baseline_per_s", "checkins_per_s", "bare_checkins_per_s",
        "checkins_vs_bare", "events_per_s_batched", "batched_vs_naive", "cli_help_s", "cli_status_s",
        "max_history_events", "sqlite_wal_vs_default"}


async def test_bench_run_quick_prints_every_figure() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    # About 3 minutes on one core; the limit only catches a run that hangs, on a machine as busy as CI's.
    out, err = await asyncio.wait_for(proc.communicate(), timeout=900)
    assert proc.returncode == 0, err.decode()[-3000:]
    figures = json.loads(out)
    assert KEYS <= figures.keys()
    assert figures["engagements"] == 10
    assert all(figures[k] > 0 for k in KEYS)
    assert figures["max_history_events"] <= 2000
    # The real loop: every action got its check-ins (the script asserts 3 each from the outbox; late ones go out
    # back to back, without a timer between them, so the timers are not counted), and the bare baseline sent
    # check-ins too.
    assert figures["min_checkins_per_action"] >= 3
    assert figures["checkins"] >= 3 * 3 * figures["engagements"]
    assert figures["bare_checkins_per_s"] > 0
    # Paced by how many are under way: never more than the run has, at least one, and each first check-in timed.
    assert 1 <= figures["max_under_way"] <= figures["engagements"]
    assert figures["first_checkin_late_s_max"] >= figures["first_checkin_late_s_median"]


SCALE_KEYS = {"open_workflows", "start_s", "worker_rss_mb", "checkins_per_s", "max_checkin_lag_s",
              "bare_checkins_per_s", "bare_max_checkin_lag_s", "lag_vs_bare"}


async def test_bench_scale_quick_opens_engagements_and_sends_every_first_checkin() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bench" / "scale.py"), "--quick",
                                                "--json", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    figures = json.loads(out)
    assert SCALE_KEYS <= figures.keys()
    # 3 engagements of 5 actions: a parent, its check-in loop and 5 actions' own workflows each, all open while
    # their check-ins wait.
    assert figures["open_workflows"] == 3 * 7
    assert figures["checkins_sent"] == figures["checkins_due"] == 15
    assert figures["worker_rss_mb"] > 0
    assert 0 <= figures["max_checkin_lag_s"] < 60
    # The workers' own counts came through their metrics. In --quick the loops' rounds need not fall between the
    # two readings (a cadence of seconds, from each engagement's own set-up), so only their shape is asserted.
    counts = figures["burst_sdk_counts"]
    assert set(counts) == {"workflow_tasks", "sticky_cache_hits", "sticky_cache_misses", "history_fetches",
                           "activities", "eager_activities"}
    assert all(isinstance(v, int) and v >= 0 for v in counts.values())
    assert counts["eager_activities"] <= counts["activities"]
    # The bare baseline ran the same burst on the same server: every one of its check-ins went out too.
    assert figures["bare_checkins_sent"] == 15
    assert figures["bare_ready_before_due"] is True
    assert 0 <= figures["bare_max_checkin_lag_s"] < 60


async def test_bench_replay_times_a_cold_task_with_and_without_the_sandbox() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bench" / "replay.py"), "--rounds", "2",
                                                "--json", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    figures = json.loads(out)
    for label in ("engagement", "action", "checkin_loop_first_round"):
        # The recorded histories replay in both modes (a failed replay raises), and each took some time.
        assert figures[f"{label}_events"] > 10
        assert figures[f"{label}_replay_ms_sandboxed"] > 0
        assert figures[f"{label}_replay_ms_unsandboxed"] > 0


async def test_bench_send_path_sends_every_round_and_measures_each_process() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bench" / "send_path.py"), "--rounds",
                                                "6", "--at-once", "3", "--json", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]  # the script asserts every message of a round went out
    figures = json.loads(out)
    assert figures["messages"] == 30
    for way in ("ours", "bare_smtp"):
        assert set(figures[way]) == {"worker", "sender", "sink", "postgres", "total", "messages_per_s"}
        assert figures[way]["messages_per_s"] > 0
    assert figures["ours"]["total"] > 0 and figures["total_vs_bare_smtp"] > 0
