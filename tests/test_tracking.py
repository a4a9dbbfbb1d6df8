"""W&B logging, offline: what the logger writes is read back from the run's transaction log.

Every test runs without a W&B server or key. The W&B service process is shared by the tests of this
module (as by the runs of a sweep); the test that checks HOME starts a fresh process of its own.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import store
from harness.config import FitConfig, LoggerConfig
from harness.tracking import fit_run, mode
from harness.tracking import wandb_run as lg
from harness.tracking.offline import offline_run_dirs, read_offline_run
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]
GROUP = "cpu"
SPEC_CONFIG = {
    "run_id": "w32-t4096",
    "shape": {"width": 32, "depth": 1},
    "params": {"total": 50000, "nonembedding": 12000},
    "tokens": 4096,
    "sweep": GROUP,
}


def _rows(n: int, start: int = 0) -> list[dict[str, float]]:
    return [
        {
            "step": s,
            "tokens": 1024 * s,
            "flops": 1e9 * s,
            "flops_6n": 6e8 * s,
            "train/loss": 5.0 - 0.25 * s,
            "val/loss": 5.5 - 0.25 * s,
            "lr": 1e-3,
            "perf/tokens_per_s": 1000.0 + s,
        }
        for s in range(start + 1, start + n + 1)
    ]


@pytest.fixture(autouse=True)
def offline_env(monkeypatch):
    """No key, offline, and the WANDB_* variables the logger sets are undone after each test."""
    saved = dict(os.environ)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(lg, "_warned", set())
    monkeypatch.setattr(lg, "_online_failed", False)
    monkeypatch.setattr(lg, "_USER_ENV", dict.fromkeys(lg._USER_ENV))  # the user set none of them
    monkeypatch.setattr(mode, "_probed", {})
    monkeypatch.setenv("NETRC", "/nonexistent/netrc")  # the machine's own `wandb login` plays no part
    yield
    os.environ.clear()
    os.environ.update(saved)


def _open(sweep_dir: Path, run_id: str = "w32-t4096", cfg: LoggerConfig | None = None) -> lg.RunLogger:
    return lg.open_run(
        cfg or LoggerConfig(),
        sweep_dir=sweep_dir,
        group=GROUP,
        run_id=run_id,
        name="w32-d1-t4096",
        job_type="train",
        config=SPEC_CONFIG,
    )


def test_wandb_run_id_is_stable_and_allowed():
    assert lg.wandb_run_id("cpu", "w32-t4096") == "cpu-w32-t4096"
    assert lg.wandb_run_id("my sweep", "a/b:c") == "my-sweep-a-b-c"
    long = lg.wandb_run_id("g" * 50, "r" * 50)
    assert len(long) <= 64 and long == lg.wandb_run_id("g" * 50, "r" * 50)  # W&B's limit
    assert long != lg.wandb_run_id("g" * 50, "r" * 49 + "s")


def test_two_sweep_instances_never_share_run_ids_and_a_rerun_keeps_them(tmp_path):
    """Two people (or a rerun after the directory was deleted) run sweep `cpu` with the same settings."""
    ids = []
    for where in ("alice", "bob"):
        info = store.open_sweep(tmp_path / where, name="cpu", fingerprint="f", meta={})
        again = store.open_sweep(tmp_path / where, name="cpu", fingerprint="f", meta={})
        assert again["instance"] == info["instance"] and len(info["instance"]) == 8
        group = lg.group_name("cpu", info["instance"])
        ids.append(lg.wandb_run_id(group, "3fa9c1e2b7d0"))
    assert ids[0] != ids[1] and all(i.startswith("cpu-") and i.endswith("-3fa9c1e2b7d0") for i in ids)


def _with_key(
    monkeypatch, tmp_path, *, env: bool = False, netrc: bool = False, url: str = "https://w.example"
):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", url)
    if env:
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    if netrc:  # what `wandb login` writes
        path = tmp_path / "netrc"
        path.write_text(f"machine {url.split('//')[1].split(':')[0]}\n  login user\n  password {'k' * 40}\n")
        path.chmod(0o600)
        monkeypatch.setenv("NETRC", str(path))


def test_mode_auto_is_online_with_a_key_from_the_environment_or_wandb_login(monkeypatch, tmp_path):
    monkeypatch.setattr(mode, "unreachable", lambda url, timeout_s=0: None)  # the server answers
    _with_key(monkeypatch, tmp_path)
    got = mode.resolve_mode(LoggerConfig())
    assert got.mode == "offline" and "wandb login" in got.why
    _with_key(monkeypatch, tmp_path, netrc=True)
    got = mode.resolve_mode(LoggerConfig())
    assert got.mode == "online" and "netrc (wandb login)" in got.why
    monkeypatch.setenv("NETRC", "/nonexistent")
    _with_key(monkeypatch, tmp_path, env=True)
    assert mode.resolve_mode(LoggerConfig()) == mode.Mode(
        "online", "https://w.example, key from WANDB_API_KEY"
    )
    assert mode.resolve_mode(LoggerConfig(mode="offline")).mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert mode.resolve_mode(LoggerConfig()).mode == "disabled"
    assert mode.resolve_mode(LoggerConfig(backend="off")).mode == "disabled"


def test_an_unknown_wandb_mode_is_one_line_naming_it(monkeypatch):
    from harness.config import ConfigError

    monkeypatch.setenv("WANDB_MODE", "bogus")
    for cfg in (LoggerConfig(), LoggerConfig(mode="offline")):
        with pytest.raises(
            ConfigError, match=r"^WANDB_MODE: unknown value 'bogus' in the environment; allowed: "
        ):
            mode.resolve_mode(cfg)
    assert mode.resolve_mode(LoggerConfig(backend="off")).mode == "disabled"  # W&B is not used at all
    monkeypatch.setenv("WANDB_MODE", "Dryrun")
    assert mode.resolve_mode(LoggerConfig()) == mode.Mode("offline", "WANDB_MODE=dryrun")


def test_an_unreachable_server_means_offline_at_once(monkeypatch, tmp_path):
    import time

    _with_key(monkeypatch, tmp_path, env=True, url="http://127.0.0.1:9")  # nothing listens on port 9
    t0 = time.monotonic()
    got = mode.resolve_mode(LoggerConfig())
    assert got.mode == "offline" and "127.0.0.1:9 unreachable" in got.why
    assert time.monotonic() - t0 < mode.PROBE_TIMEOUT_S  # refused at once, not a 90 s init timeout
    assert mode.sync_command(Path("/r")) == "wandb sync /r/wandb/offline-run-*"


def test_offline_run_reads_back(tmp_path):
    sweep = tmp_path / "sweep"
    run = _open(sweep)
    assert isinstance(run, lg.WandbLogger)
    rows = _rows(3)
    for row in rows:
        run.log(row, step=row["step"])
    result = {"run_id": "w32-t4096", "status": "done", "val_loss": 4.75, "width": 32, "diverged_step": None}
    run.finish(summary=result, exit_code=0)

    (run_dir,) = offline_run_dirs(sweep / "wandb")
    assert run_dir.parent == sweep / "wandb" / "wandb"
    got = read_offline_run(run_dir)
    assert (got.run_id, got.group, got.job_type) == ("cpu-w32-t4096", GROUP, "train")
    assert got.name == "w32-d1-t4096"
    assert got.project == "scaling-harness"
    assert got.config == SPEC_CONFIG
    assert got.exit_code == 0
    assert [h["_step"] for h in got.history] == [1, 2, 3]
    for logged, row in zip(got.history, rows, strict=True):
        assert {k: logged[k] for k in row} == pytest.approx(row)
    s = got.summary
    assert s["status"] == "done" and s["val_loss"] == 4.75 and s["diverged_step"] is None
    assert got.metrics["train/*"]["step_metric"] == "tokens"
    assert got.metrics["val/*"]["step_metric"] == "tokens"
    assert got.metrics["perf/*"]["step_metric"] == "tokens"
    assert got.metrics["val/loss"] == {"step_metric": "tokens", "summary": ["none"]}
    assert got.metrics["by_flops/*"]["step_metric"] == "flops"
    assert [h["by_flops/val_loss"] for h in got.history] == [h["val/loss"] for h in got.history]
    assert [h["by_flops/train_loss"] for h in got.history] == [h["train/loss"] for h in got.history]
    assert {"tokens", "flops"} <= set(got.metrics)


def test_the_summary_names_each_quantity_once(tmp_path):
    """The result row's names only: no `val/loss` beside `val_loss`, no last-interval
    `perf/tokens_per_s` beside the run's `tokens_per_s`; ability scores keep their last value."""
    run = _open(tmp_path)
    for row in _rows(3):
        run.log(
            {**row, "val/loss_se": 0.01, "perf/mfu": 0.3, "val/answer_acc": 0.1 * row["step"]}, row["step"]
        )
    result = {"status": "done", "val_loss": 4.75, "train_loss": 4.3, "tokens": 3072, "tokens_per_s": 900.0}
    run.finish(summary=result)
    (run_dir,) = offline_run_dirs(tmp_path)
    summary = {k: v for k, v in read_offline_run(run_dir).summary.items() if not k.startswith("_")}
    assert summary == {**result, "val/answer_acc": pytest.approx(0.3)}


def test_a_training_loss_point_every_percent_of_the_steps_reads_back_as_a_curve(tmp_path):
    """What the training loop logs (harness/train.py): every ~1% of the steps `train/loss` (the mean since
    the last point), `lr`, `tokens` and `flops` with `logger.log(row, step=step)`, and at the default
    preset's one eval (train.evals=1) the eval row at the last step, which holds no `train/loss` of its
    own; the curve reads back point by point, plotted against tokens."""
    steps, tokens_per_step = 200, 60 * 64  # the default preset's fewest steps, its largest batch
    every = max(1, steps // 100)
    run = _open(tmp_path)
    for step in range(every, steps + 1, every):
        tokens = step * tokens_per_step
        row = {
            "step": step,
            "tokens": tokens,
            "flops": 1e3 * tokens,
            "train/loss": 5.0 / step**0.1,
            "lr": 1e-3,
        }
        run.log(row, step=step)
    tokens = steps * tokens_per_step
    run.log({"step": steps, "tokens": tokens, "flops": 1e3 * tokens, "val/loss": 4.75}, step=steps)
    run.finish(summary={"status": "done", "val_loss": 4.75, "train_loss": 2.9})
    (run_dir,) = offline_run_dirs(tmp_path)
    got = read_offline_run(run_dir)
    curve = [h for h in got.history if "train/loss" in h]
    assert len(curve) >= 20 and [h["_step"] for h in curve] == list(range(every, steps + 1, every))
    assert [h["train/loss"] for h in curve] == pytest.approx([5.0 / h["_step"] ** 0.1 for h in curve])
    assert all(h["tokens"] == h["_step"] * tokens_per_step for h in curve)
    assert got.metrics["train/*"]["step_metric"] == "tokens" and got.history[-1]["val/loss"] == 4.75
    assert "train/loss" not in got.summary and got.summary["train_loss"] == 2.9


def test_failed_run_records_its_exit_code(tmp_path):
    run = _open(tmp_path)
    run.log(_rows(1)[0], step=1)
    run.finish(exit_code=1)
    (run_dir,) = offline_run_dirs(tmp_path)
    assert read_offline_run(run_dir).exit_code == 1


def test_an_offline_resume_continues_the_same_run(tmp_path, monkeypatch):
    """A killed run resumes under its own id (resume="allow"), online and offline alike: `wandb sync`
    uploads the folders of one id in order of their start, as one run, so no failed copy stays beside
    a finished one."""
    import wandb

    real_init, calls = wandb.init, []
    monkeypatch.setattr(wandb, "init", lambda **kw: calls.append(kw) or real_init(**kw))
    first = _open(tmp_path)
    for row in _rows(2):
        first.log(row, step=row["step"])
    first.finish(exit_code=1)  # killed: the harness run resumes from its checkpoint
    second = _open(tmp_path)
    for row in _rows(2, start=2):
        second.log(row, step=row["step"])
    second.finish(summary={"status": "done"}, exit_code=0)

    assert [(c["id"], c["resume"], c["mode"]) for c in calls] == [("cpu-w32-t4096", "allow", "offline")] * 2
    runs = [read_offline_run(d) for d in offline_run_dirs(tmp_path)]
    assert [r.run_id for r in runs] == ["cpu-w32-t4096"] * 2 and [r.name for r in runs] == [
        "w32-d1-t4096"
    ] * 2
    assert [[h["_step"] for h in r.history] for r in runs] == [[1, 2], [3, 4]]
    assert [r.exit_code for r in runs] == [1, 0] and all("resumed" not in r.tags for r in runs)
    assert (
        lg.attempts(tmp_path / "wandb", "cpu-w32-t4096") == 2 and lg.attempts(tmp_path / "wandb", "w32") == 0
    )


def test_online_resume_asks_wandb_to_continue_the_same_run(tmp_path, monkeypatch):
    calls = _fake_online(monkeypatch, tmp_path)
    _open(tmp_path / "sweep").finish()
    _open(tmp_path / "sweep").finish()
    assert [(c["id"], c["resume"]) for c in calls if isinstance(c, dict)] == [("cpu-w32-t4096", "allow")] * 2


def test_truncated_log_reads_up_to_the_cut(tmp_path):
    run = _open(tmp_path)
    for row in _rows(3):
        run.log(row, step=row["step"])
    run.finish()
    (run_dir,) = offline_run_dirs(tmp_path)
    (log_file,) = run_dir.glob("run-*.wandb")
    cut = tmp_path / "cut.wandb"
    data = log_file.read_bytes()
    cut.write_bytes(data[: len(data) - 5])
    whole, partial = read_offline_run(log_file), read_offline_run(cut)
    assert partial.run_id == whole.run_id and len(partial.history) <= len(whole.history)


def test_init_failure_warns_once_and_logs_nothing(tmp_path, monkeypatch, capsys):
    import wandb

    def boom(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(wandb, "init", boom)
    loggers = [_open(tmp_path, run_id=f"r{i}") for i in range(2)]
    for run in loggers:
        assert isinstance(run, lg.NullLogger)
        run.log({"tokens": 1.0}, step=1)
        run.finish(summary={"status": "done"})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("warning: W&B logging disabled for this run: OSError: No space left on device")
    assert offline_run_dirs(tmp_path) == []


def test_log_failure_disables_the_logger_and_fails_the_run(tmp_path, capsys):
    run = _open(tmp_path)
    run.log(_rows(1)[0], step=1)

    def boom(*args, **kwargs):
        raise OSError("No space left on device")

    run._run.log = boom
    run.log(_rows(2)[1], step=2)  # swallowed
    run.log(_rows(3)[2], step=3)  # no-op
    run.finish(summary={"status": "done"}, exit_code=0)  # no-op: the run was finished as failed
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    (run_dir,) = offline_run_dirs(tmp_path)
    got = read_offline_run(run_dir)
    assert [h["_step"] for h in got.history] == [1] and got.exit_code == 1


def test_backend_off_writes_nothing(tmp_path):
    cfg = LoggerConfig(backend="off")
    run = _open(tmp_path, cfg=cfg)
    assert isinstance(run, lg.NullLogger)
    run.log({"tokens": 1.0}, step=1)
    run.finish(summary={"status": "done"})
    fit_run.log_fit(
        cfg, sweep_dir=tmp_path, group=GROUP, fit={"a": 1.0}, settings={}, plots=[], rows=[{"flops": 1.0}]
    )
    assert list(tmp_path.iterdir()) == []


class _FakeRun:
    id = "fake"
    summary: dict = {}

    def __init__(self, calls):
        self.calls = calls

    def define_metric(self, *args, **kwargs):
        pass

    def log(self, *args, **kwargs):
        pass

    def finish(self, exit_code=0):
        self.calls.append(("finish", exit_code))


def _fake_online(monkeypatch, tmp_path) -> list:
    import wandb

    monkeypatch.setattr(mode, "unreachable", lambda url, timeout_s=0: None)
    _with_key(monkeypatch, tmp_path, env=True)
    calls: list = []

    def fake_init(**kwargs):
        calls.append(kwargs)
        return _FakeRun(calls)

    monkeypatch.setattr(wandb, "init", fake_init)
    return calls


def test_online_mode_passes_identity_and_keeps_files_under_dir(tmp_path, monkeypatch):
    calls = _fake_online(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "my-wandb-settings"))
    cfg = LoggerConfig(dir=str(tmp_path / "wb"), tags=["smoke"])
    lg.open_run(
        cfg, sweep_dir=tmp_path / "sweep", group=GROUP, run_id="w32-t4096", name="w32-d1-t4096",
        job_type="train", config=SPEC_CONFIG, tags=("device:cpu",),
    ).finish(exit_code=1)  # fmt: skip

    kwargs = calls[0]
    assert kwargs["mode"] == "online" and kwargs["resume"] == "allow"
    assert kwargs["id"] == "cpu-w32-t4096" and kwargs["group"] == GROUP and kwargs["job_type"] == "train"
    assert kwargs["config"] == SPEC_CONFIG and kwargs["tags"] == ["device:cpu", "smoke"]
    assert kwargs["dir"] == str(tmp_path / "wb")
    assert kwargs["settings"].silent and kwargs["settings"].console == "off"
    assert calls[1] == ("finish", 1)
    for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        assert Path(os.environ[var]).is_relative_to(tmp_path / "wb"), var
    assert os.environ["WANDB_CONFIG_DIR"] == str(tmp_path / "my-wandb-settings")  # the user's settings
    assert not (tmp_path / "sweep").exists()


def test_the_users_wandb_directories_win_over_the_sweep_folder(tmp_path, monkeypatch):
    calls = _fake_online(monkeypatch, tmp_path)
    mine = {"WANDB_DIR": str(tmp_path / "my-runs"), "WANDB_CACHE_DIR": str(tmp_path / "my-cache")}
    monkeypatch.setattr(lg, "_USER_ENV", {**dict.fromkeys(lg._USER_ENV), **mine})
    _open(tmp_path / "sweep").finish()
    assert calls[0]["dir"] == mine["WANDB_DIR"]
    assert os.environ["WANDB_CACHE_DIR"] == mine["WANDB_CACHE_DIR"]
    assert os.environ["WANDB_DATA_DIR"] == str(tmp_path / "my-runs" / "data")  # unset: the default


def test_online_failure_falls_back_to_offline(tmp_path, monkeypatch, capsys):
    import wandb

    monkeypatch.setattr(mode, "unreachable", lambda url, timeout_s=0: None)
    _with_key(monkeypatch, tmp_path, env=True)
    real_init, modes = wandb.init, []

    def flaky_init(**kwargs):
        modes.append(kwargs["mode"])
        if kwargs["mode"] == "online":
            raise TimeoutError("no network")
        return real_init(**kwargs)

    monkeypatch.setattr(wandb, "init", flaky_init)
    for run_id in ("a", "b"):
        run = _open(tmp_path, run_id=run_id)
        run.log(_rows(1)[0], step=1)
        run.finish()
    assert modes == ["online", "offline", "offline"]  # the second run does not wait on the network again
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "logging offline instead" in err[0]
    assert [read_offline_run(d).run_id for d in offline_run_dirs(tmp_path)] == ["cpu-a", "cpu-b"]
    assert lg.fell_back()


def test_the_run_whose_online_start_failed_is_logged_offline(tmp_path):
    """A real wandb.init against a server that never answers (a fake key, port 9), in a fresh process:
    the run that hit the failure keeps its history. A short init timeout keeps this to seconds."""
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from harness.config import FitConfig, LoggerConfig
        from harness.tracking import mode, wandb_run as lg
        mode.unreachable = lambda url, timeout_s=0: None  # the probe passes; wandb.init itself fails
        for rid in ("a", "b"):
            run = lg.open_run(LoggerConfig(), sweep_dir=Path({str(tmp_path)!r}), group="g", run_id=rid,
                              name=rid, job_type="train", config={{"x": 1}})
            run.log({{"tokens": 1.0, "val/loss": 2.0}}, step=1)
            run.finish(summary={{"status": "done"}})
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        PYTHONPATH=str(REPO), WANDB_BASE_URL="http://127.0.0.1:9", WANDB_API_KEY="x" * 40,
        WANDB_INIT_TIMEOUT="3", WANDB_SILENT="true", NETRC="/nonexistent",
    )  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning:") == 1 and "logging offline instead" in proc.stderr
    runs = [read_offline_run(d) for d in offline_run_dirs(tmp_path / "wandb")]
    assert [r.run_id for r in runs] == ["g-a", "g-b"]
    assert all(r.exit_code == 0 and r.history[0]["val/loss"] == 2.0 for r in runs)


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 6), "red").save(path)
    return path


FIT = {  # fit.json's structure, trimmed
    "n_runs": 4,
    "frontier": {
        "E": 1.5, "C0": 3e14, "alpha": 0.31, "r2": 0.99, "points": {"C": [1, 2], "L": [3, 2]},
        "ci": {"E": [1.2, 1.7], "alpha": [0.2, 0.4]}, "per_decade": {"cut": 0.51, "ci": {"cut": [0.4, 0.6]}},
    },
    "holdout": {"max_rel_error": 0.02, "parametric": {"max_rel_error": 0.04}, "targets": [1, 2, 3]},
    "verdict": {"smooth": True, "sentence": "loss scales smoothly with compute: yes", "reasons": []},
    "budgets": {"C": list(range(50))},
}  # fmt: skip


def test_headline_holds_the_few_numbers_a_runs_table_shows():
    got = fit_run.headline(FIT)
    assert got == {
        "fit/alpha": 0.31, "fit/alpha_lo": 0.2, "fit/alpha_hi": 0.4, "fit/E": 1.5, "fit/E_lo": 1.2,
        "fit/E_hi": 1.7, "fit/C0": 3e14, "fit/r2": 0.99, "fit/per_decade_cut": 0.51,
        "fit/per_decade_cut_lo": 0.4, "fit/per_decade_cut_hi": 0.6, "fit/holdout_error": 0.02,
        "fit/holdout_error_parametric": 0.04, "fit/n_runs": 4, "fit/smooth": True, "fit/verdict": "yes",
    }  # fmt: skip
    assert fit_run.headline({"frontier": None, "verdict": {"smooth": False}}) == {
        "fit/smooth": False,
        "fit/verdict": "no",
    }


def test_log_fit_writes_images_table_chart_headline_and_artifact(tmp_path):
    plots = [_png(tmp_path / "frontier.png"), _png(tmp_path / "residuals.png"), tmp_path / "absent.png"]
    files = []
    for name in ("results.csv", "fit.json", "report.md"):
        (tmp_path / name).write_text(name)
        files.append(tmp_path / name)
    rows = [
        {"run_id": f"w{i}", "status": "done", "width": 32 * i, "flops": 1e12 * i, "val_loss": 4.0 / i}
        for i in (1, 2, 3)
    ] + [{"run_id": "w9", "status": "diverged", "width": 288, "flops": 1e13, "val_loss": None}]
    fit_run.log_fit(
        LoggerConfig(), sweep_dir=tmp_path, group=GROUP, fit=FIT, settings=asdict(FitConfig()), plots=plots,
        rows=rows, files=files, tags=("preset:cpu",),
    )  # fmt: skip

    (run_dir,) = offline_run_dirs(tmp_path)
    got = read_offline_run(run_dir)
    assert (got.run_id, got.group, got.job_type, got.exit_code) == ("cpu-fit", GROUP, "fit", 0)
    assert got.tags == ["preset:cpu"]
    assert got.config == {"sweep": GROUP, "fit": asdict(FitConfig())}  # conventions and thresholds
    s = got.summary
    assert {k: s[k] for k in fit_run.headline(FIT)} == fit_run.headline(FIT)
    assert not [k for k in s if k.startswith(("frontier/", "budgets/"))]  # no flattened fit.json
    (row,) = got.history
    for key in ("plots/frontier", "plots/residuals"):
        assert row[key]["_type"] == "image-file"
        assert (run_dir / "files" / row[key]["path"]).is_file()
    assert "plots/absent" not in row
    assert row["results"]["_type"] == "table-file" and row["results"]["nrows"] == 4
    table = json.loads((run_dir / "files" / row["results"]["path"]).read_text())
    assert table["columns"] == ["run_id", "status", "width", "flops", "val_loss"]
    chart = row["fit/loss_vs_compute_table"]  # wandb.plot.scatter logs its table under <key>_table
    assert chart["nrows"] == 3  # the diverged run has no loss to plot
    points = json.loads((run_dir / "files" / chart["path"]).read_text())
    assert points["columns"][-2:] == ["log10_flops", "log10_val_loss"]
    assert points["data"][0][3] == pytest.approx(12.0)
    (art,) = [a for a in got.artifacts if a["type"] == fit_run.ARTIFACT_TYPE]
    assert art["name"] == f"{GROUP}-results"
    assert art["files"] == [
        "fit.json",
        "plots/frontier.png",
        "plots/residuals.png",
        "report.md",
        "results.csv",
    ]
    assert art["metadata"]["fit/verdict"] == "yes"


def test_every_fit_of_a_sweep_continues_its_one_fit_run(tmp_path):
    """A rerun, or a fit under other settings, continues `<group>-fit` (one fit run per sweep in W&B,
    not one more of the same name per rerun): its config and summary become the new fit's, a headline
    number the new fit lacks becomes None, and each fit logs its plots at the next step."""
    plots, cfg = [_png(tmp_path / "frontier.png")], LoggerConfig()
    fit_run.log_fit(
        cfg, sweep_dir=tmp_path, group=GROUP, fit=FIT, settings=asdict(FitConfig()), plots=plots, rows=[]
    )
    no_holdout = {k: v for k, v in FIT.items() if k != "holdout"}
    settings = asdict(FitConfig(flops="6n"))
    fit_run.log_fit(
        cfg, sweep_dir=tmp_path, group=GROUP, fit=no_holdout, settings=settings, plots=plots, rows=[]
    )

    runs = [read_offline_run(d) for d in offline_run_dirs(tmp_path)]
    assert [(r.run_id, r.name, r.job_type, r.exit_code) for r in runs] == [
        ("cpu-fit", "cpu-fit", "fit", 0)
    ] * 2
    assert [r.config["fit"]["flops"] for r in runs] == ["full", "6n"]
    assert [[h["_step"] for h in r.history] for r in runs] == [[1], [2]]
    assert runs[0].summary["fit/holdout_error"] == 0.02 and runs[1].summary["fit/holdout_error"] is None
    assert runs[1].summary["fit/alpha"] == 0.31 and set(fit_run.headline(FIT)) <= set(fit_run.HEADLINE_KEYS)


def test_nothing_is_written_outside_the_configured_dir(tmp_path):
    """A fresh process (its own W&B service) with HOME and the working directory watched."""
    home, cwd, sweep, wdir = (tmp_path / n for n in ("home", "cwd", "sweep", "wb"))
    for d in (home, cwd, sweep):
        d.mkdir()
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from harness.config import FitConfig, LoggerConfig
        from harness.tracking import log_fit, open_run
        cfg = LoggerConfig(dir={str(wdir)!r}, mode="offline")
        run = open_run(cfg, sweep_dir=Path({str(sweep)!r}), group="g", run_id="r", name="r",
                       job_type="train", config={{"a": 1}})
        run.log({{"tokens": 1.0, "val/loss": 2.0}}, step=1)
        run.finish(summary={{"status": "done"}})
        log_fit(cfg, sweep_dir=Path({str(sweep)!r}), group="g", fit={{"a": 1.0}}, settings={{}}, plots=[],
                rows=[{{"run_id": "r", "flops": 10.0, "val_loss": 2.0}}])
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "wandb" not in (proc.stdout + proc.stderr).lower()  # W&B says nothing
    assert list(home.rglob("*")) == []
    assert list(cwd.rglob("*")) == []
    assert list(sweep.rglob("*")) == []
    assert [read_offline_run(d).job_type for d in offline_run_dirs(wdir)] == ["train", "fit"]


# --- scripts/wandb_dashboard.py -----------------------------------------------------------------------


def test_dashboard_opens_on_loss_vs_compute_by_model_size_with_the_law_and_verdict():
    import wandb_workspaces.reports.v2 as wr

    dash = load_script("wandb_dashboard")
    keys = ["plots/loss_vs_compute", "plots/residuals"]
    summary = fit_run.headline(FIT)
    w = dash.build_workspace("me", "scaling-harness", GROUP, plot_keys=keys, fit_summary=summary)
    assert (w.entity, w.project) == ("me", "scaling-harness")
    assert [s.name for s in w.sections] == ["Loss vs compute", "Loss vs tokens", "Scaling-law fit"]
    assert w.sections[0].is_open
    compute, tokens, fit = (s.panels for s in w.sections)

    line, law, scatter, image = compute
    assert isinstance(line, wr.LinePlot) and line.x == "flops" and line.y == ["val/loss"]
    assert line.log_x and line.log_y and line.groupby == wr.Config("shape.width")  # a colour per size
    assert line.legend_template == "width ${config:shape.width}"
    config = line._to_model().config
    assert config.x_axis == "flops" and config.x_log_scale and config.y_log_scale
    assert isinstance(law, wr.MarkdownPanel) and law.layout.x == line.layout.w  # beside the chart
    for text in ("Verdict: yes", "alpha = 0.31 [0.2, 0.4]", "E = 1.5 [1.2, 1.7]", "51.0%", "2.0%"):
        assert text in law.markdown, text
    assert isinstance(scatter, wr.ScatterPlot)
    assert (scatter.x, scatter.y) == (wr.SummaryMetric("flops"), wr.SummaryMetric("val_loss"))
    assert isinstance(image, wr.MediaBrowser) and image.media_keys == ["plots/loss_vs_compute"]

    assert [p.y for p in tokens] == [["val/loss"], ["train/loss"]]
    assert all(p.x == "tokens" and p.groupby == wr.Config("shape.width") for p in tokens)
    media, table = fit
    assert isinstance(media, wr.MediaBrowser) and media.media_keys == keys
    assert isinstance(table, wr.WeavePanelSummaryTable) and table.table_name == "results"

    for column in ("summary:width", "summary:tokens", "summary:flops", "summary:val_loss"):
        assert column in w.runset_settings.pinned_columns
    model = json.dumps(w._to_model().model_dump(by_alias=True, exclude_none=True), default=str)
    assert '{"key": {"section": "run", "name": "group"}, "op": "=", "value": "cpu"' in model
    assert "No fit yet" in dash.fit_markdown(None)


def test_dashboard_main_refuses_offline(monkeypatch, capsys):
    dash = load_script("wandb_dashboard")
    assert dash.main(["--group", GROUP]) == 2
    assert "needs W&B online" in capsys.readouterr().err


# --- scripts/wandb_export.py --------------------------------------------------------------------------


def test_export_rows_from_runs(tmp_path):
    from harness.store import RESULT_COLUMNS

    export = load_script("wandb_export")
    result = {
        "run_id": "w32-t4096",
        "status": "done",
        "width": 32,
        "params_total": 50000,
        "params_nonembedding": 12000,
        "tokens": 4096,
        "flops": 3.1e11,
        "flops_6n": 2.9e11,
        "val_loss": 4.5,
        "diverged_step": None,
        "val/loss": {"min": 4.4, "last": 4.5},
    }
    finished = SimpleNamespace(
        id="cpu-w32-t4096", state="finished", config=SPEC_CONFIG, summary_metrics=result
    )
    crashed = SimpleNamespace(
        id="cpu-w64-t4096",
        state="crashed",
        config={
            "run_id": {"value": "w64-t4096"},
            "shape": {"value": {"width": 64}},
            "params": {"value": {"total": 90000, "nonembedding": 40000}},
            "tokens": {"value": 4096},
            "flops": {"value": 5.0e11},
        },
        summary={"val/loss": {"min": 4.1, "last": 4.2}, "tokens": 2048, "_step": 2},
    )
    rows = [export.run_to_row(r) for r in (finished, crashed)]
    assert set(rows[0]) == set(RESULT_COLUMNS)
    assert {k: rows[0][k] for k in ("run_id", "status", "params_total", "tokens", "flops", "val_loss")} == {
        "run_id": "w32-t4096",
        "status": "done",
        "params_total": 50000,
        "tokens": 4096,
        "flops": 3.1e11,
        "val_loss": 4.5,
    }
    assert rows[1]["run_id"] == "w64-t4096" and rows[1]["status"] == "failed"
    assert (rows[1]["width"], rows[1]["params_total"], rows[1]["params_nonembedding"]) == (64, 90000, 40000)
    assert rows[1]["tokens"] == 2048  # what it logged before dying
    assert rows[1]["val_loss"] == 4.2 and rows[1]["flops"] == 5.0e11

    path = export.write_rows(rows, tmp_path / "results.csv")
    with path.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(RESULT_COLUMNS)
    assert table[0]["val_loss"] == "4.5" and table[0]["diverged_step"] == ""


def test_a_report_run_holds_the_claims_and_a_rerun_continues_it(tmp_path):
    """The blob's report run (harness.tracking.report_run): summary, table, plot and artifact, read back
    from its offline files; a second report continues the same run with a new artifact version."""
    from harness.studies.blob import report
    from harness.studies.blob.claims import Results, combine, judge_claims
    from harness.tracking.report_run import log_report
    from tests.test_blob import fit

    claims = combine(*(judge_claims(Results({"synthetic": fit()}, {}, None, {})) for _ in range(2)))
    files = report.write(tmp_path, claims, {"commit": "abc", "date": "2026-12-07", "realizations": []})
    for _ in range(2):
        log_report(
            LoggerConfig(), out_dir=tmp_path, group="blob", summary=report.wandb_summary(claims),
            rows=[{"key": c.key, "verdict": c.verdict} for c in claims], plots=[files[2]], files=files[:2],
        )  # fmt: skip
    dirs = offline_run_dirs(tmp_path / "wandb")
    run = read_offline_run(dirs[-1])
    assert {read_offline_run(d).run_id for d in dirs} == {run.run_id}  # one report run, continued
    assert run.job_type == "report" and run.name == "blob-report"
    assert run.summary["claims/1/synthetic/verdict"] == "yes" and run.summary["claims/n_agrees_yes"] >= 5
    assert "plots/claims" in run.history[-1] and "report" in run.history[-1]
    assert run.artifacts[-1]["files"] == ["blob.json", "plots/claims.png", "report.md"]
