"""analyse() on result rows writes fit.json, report.md and the plots; the terminal summary reads at a
glance; `python -m harness.refit` refits a CSV or a sweep directory into a new directory, never over a
fit, and on bad input prints one line, exits non-zero and writes nothing."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.config import FitConfig
from harness.fit import FitError, LossSurface
from harness.fit.simulate import isoflop_observations
from harness.report import PLOTS, analyse, build_observations, summary_text
from tests.conftest import ROOT, run_module

SURFACE = LossSurface(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
PNG = b"\x89PNG\r\n\x1a\n"


def make_rows(*, budgets: int = 5, sizes: int = 7, noise: float = 0.005) -> list[dict]:
    """results.csv-like rows (every value a string) of an IsoFLOP sweep drawn from SURFACE."""
    obs = isoflop_observations(
        SURFACE,
        np.logspace(15, 18, budgets),
        sizes=sizes,
        span=4.0,
        noise=noise,
        rng=np.random.default_rng(0),
    )
    rows = []
    for i in range(obs.N.size):
        N, D = obs.N[i], obs.D[i]
        rows.append(
            {
                "run_id": f"r{i:03d}",
                "name": f"n{int(N)}-t{int(D)}",
                "status": "done",
                "params_total": str(int(N)),
                "params_nonembedding": str(int(0.8 * N)),
                "tokens": str(int(D)),
                "flops": repr(float(6.5 * N * D)),
                "flops_6n": repr(float(6.0 * N * D)),
                "val_loss": repr(float(obs.L[i])),
                "budget": obs.budget[i],
                "epochs": "1.0",
            }
        )
    return rows


def make_curves(rows: list[dict]) -> dict[str, list[dict]]:
    curves = {}
    for row in rows:
        if row["val_loss"] in ("", "nan"):
            continue
        N, D = float(row["params_total"]), float(row["tokens"])
        curves[row["run_id"]] = [
            {
                "step": k,
                "tokens": d,
                "flops": 6.5 * N * d,
                "flops_6n": 6 * N * d,
                "val/loss": float(SURFACE.loss(N, d)) * 1.02 if k < 4 else float(row["val_loss"]),
            }
            for k, d in enumerate(np.linspace(D / 4, D, 4), 1)
        ]
    return curves


def with_bad_rows(rows: list[dict]) -> list[dict]:
    extra = [
        {**rows[0], "run_id": "div", "status": "diverged", "val_loss": ""},
        {**rows[1], "run_id": "pend", "status": "pending", "val_loss": ""},
        {**rows[2], "run_id": "nan", "val_loss": "nan"},
        {**rows[3], "run_id": "rep", "epochs": "6.5"},
    ]
    return rows + extra


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    rows = with_bad_rows(make_rows(budgets=8))
    report = analyse(
        rows,
        FitConfig(bootstrap=50, calibration_draws=20),
        out,
        curves=make_curves(rows),
        bayes_loss=SURFACE.E,
        meta={"name": "synthetic-test"},
    )
    return out, report


def test_fit_json_has_the_documented_keys(analysed) -> None:
    out, report = analysed
    fit = json.loads((out / "fit.json").read_text())
    assert fit["n_runs"] == 57 == report.n_runs  # 56 runs + the one that repeated its data
    assert fit["conventions"] == {"params": "total", "flops": "full", "notes": []}
    assert {"E", "C0", "alpha", "r2", "max_rel_residual", "ci", "ci_reliable", "per_decade"} <= fit[
        "frontier"
    ].keys()
    assert set(fit["frontier"]["ci"]) == {"E", "C0", "alpha"}
    assert all(len(v) == 2 for v in fit["frontier"]["ci"].values())
    assert {"C0", "alpha", "r2", "ci"} <= fit["power_law"].keys()
    assert fit["kaplan"].keys() == {"L_N", "L_D"}
    assert {"a", "b", "tokens_per_param", "budgets", "ci"} <= fit["isoflop"].keys()
    assert (
        len(fit["isoflop"]["budgets"]) == 8
        and {"label", "C", "N_opt", "D_opt"} <= fit["isoflop"]["budgets"][0].keys()
    )
    assert {"E", "A", "B", "alpha", "beta", "ci", "compute_optimal"} <= fit["parametric"].keys()
    assert {"N_opt", "D_opt", "tokens_per_param", "a", "b", "G", "k"} <= fit["parametric"][
        "compute_optimal"
    ].keys()
    assert {"n_runs", "rel_error", "max_rel_error", "laws", "decides"} <= fit["holdout"].keys()
    assert fit["holdout"]["n_runs"] == 14  # the top two compute budgets
    assert {"false_no", "false_yes", "truths"} <= fit["calibration"].keys()
    assert {"smooth", "outcome", "sentence", "reasons"} <= fit["verdict"].keys()
    assert fit["verdict"]["sentence"].startswith("loss scales smoothly with compute: yes, because")
    assert {"bayes_loss", "E", "E_ci", "contains"} <= fit["ground_truth"].keys()
    assert fit["ground_truth"]["bayes_loss"] == SURFACE.E
    assert fit["frontier_curves"] is not None
    assert fit["meta"] == {"name": "synthetic-test"}
    assert {e["run_id"]: e["why"] for e in fit["excluded"]} == {
        "div": "status diverged",
        "pend": "status pending",
        "nan": "val_loss is nan (diverged?)",
    }
    assert fit["warnings"] == ["run rep repeated its training data 6.5 times (> 4)"]
    # the fitted numbers are the report's
    assert fit["parametric"]["alpha"] == report.parametric.surface.alpha
    assert abs(fit["isoflop"]["a"] - SURFACE.a) < 0.05


def test_report_md_and_plots(analysed) -> None:
    out, report = analysed
    md = (out / "report.md").read_text()
    assert report.verdict.sentence in md
    for phrase in (
        "nats/token",
        "FLOPs, full count",
        "Compute frontier",
        "IsoFLOP",
        "Parametric",
        "Hold-out",
        "Ground truth",
        "Excluded runs",
        "- div: status diverged",
        "repeated its training data 6.5 times",
        "percentile intervals over 50 bootstrap resamples",
        "cut per decade",
        "How often this verdict is wrong on this design",
    ):
        assert phrase in md, phrase
    for name in PLOTS:
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000, name
        assert f"plots/{name}.png" in md


def test_summary_reads_at_a_glance(analysed) -> None:
    _, report = analysed
    text = summary_text(report)
    lines = text.splitlines()
    assert len(lines) <= 22 and max(map(len, lines)) <= 110
    assert lines[0].startswith(
        f"fit: {report.n_runs} runs, 3 excluded; N = total params, C = full-count FLOPs"
    )
    at = next(i for i, line in enumerate(lines) if line.startswith("  law        L(C) = 1."))
    law = lines[at + 1]
    f = report.frontier
    lo, hi = f.ci.get("alpha")
    assert f"alpha {f.law.alpha:.3g} [{lo:.3g}, {hi:.3g}]" in law
    assert f"E {f.law.E:.3g}" in law and "nats/token" in law
    hold = " ".join(text[text.index("  hold-out ") : text.index("  optimum ")].split())
    h = report.holdout
    assert f"offset (decides) {h.decision.max_rel_error:.2%}" in hold
    assert f"parametric L(N, D) {h.parametric_max_rel_error:.2%}" in hold
    d = report.per_decade
    assert f"per decade 10x compute cuts reducible loss by {d.cut:.2%} [" in " ".join(text.split())
    c = report.calibration
    assert (
        f"says no to a smooth law {c.false_no:.2%} of the time, yes to a bent one {c.false_yes:.2%}" in text
    )
    for label in ("  optimum ", "  parametric ", "  truth ", "  calibrated ", "  not fitted "):
        assert any(line.startswith(label) for line in lines), label
    not_fitted = text[text.index("not fitted") : text.index("VERDICT")]
    assert "Kaplan L(N): L(N) at D = " in not_fitted  # with its reason
    verdict = lines.index("VERDICT: yes, loss scales smoothly with compute")
    bullets = [line for line in lines[verdict + 1 :] if not line.startswith("       ")]
    assert len(bullets) == len(report.verdict.reasons) and all(b.startswith("  ok   ") for b in bullets)


def test_an_untested_verdict_says_why_and_what_to_run(tmp_path: Path) -> None:
    """A 3x3 grid cannot tell (docs/fit.md): the summary's verdict says what the checks said, why it does
    not stand, and the next step the sweep passes; report.md weighs the answer in a sentence."""
    from dataclasses import replace

    from harness.console import next_step
    from harness.fit import fit_sweep
    from harness.fit.simulate import grid_observations
    from harness.report.markdown import markdown

    obs = grid_observations(SURFACE, [1e6, 4e6, 1.6e7], [2e7, 8e7, 3.2e8])
    report = fit_sweep(replace(obs, L_se=0.02 * obs.L), FitConfig(bootstrap=0, calibration_draws=100))
    v = report.verdict
    assert v.outcome == "untested" and v.untested_why
    lines = summary_text(report, next_step=next_step("smoke")).splitlines()
    at = lines.index(
        f"VERDICT: untested: whether loss scales smoothly with compute (the checks say {v.checked})"
    )
    assert lines[at + 1].startswith("  why  this design cannot tell: at 2.00% noise its checks say ")
    assert " ".join(" ".join(lines[-2:]).split()) == (
        "next for a verdict, run the default sweep, whose design can give one: python -m harness.sweep "
        "(with sweep.dry_run=true it shows its plan and time and stops)"
    )
    assert "python -m harness.sweep" not in next_step("cpu") and "docs/fit.md" in next_step("")
    md = markdown(report)
    assert f"**{v.sentence}.**" in md
    assert f'The checks\' "{v.checked}" is {v.likelihood_ratio:.3g} times likelier ' in md
    assert 'it needs 3 (harness.fit.rules): the verdict is "untested".' in md


def test_summary_of_a_pure_power_law_says_so_once_on_the_law_line(tmp_path: Path) -> None:
    from dataclasses import replace

    from harness.fit import PowerLaw

    report = analyse(make_rows(budgets=4, sizes=5), FitConfig(bootstrap=0), tmp_path)
    f = report.frontier
    zero = replace(report, frontier=replace(f, law=PowerLaw(E=0.0, x0=f.law.x0, alpha=f.law.alpha)))
    text = summary_text(zero)
    assert "E at its bound 0: a pure power law" in text
    assert "pure power law" not in summary_text(report)  # with a floor the law line is E + ...


def test_loss_plot_keeps_the_legend_off_the_data_and_the_axis_on_it(analysed) -> None:
    from harness.report.plots import _loss_vs_compute

    _, report = analysed
    obs = report.obs
    x = np.geomspace(obs.C.min() / 1.5, obs.C.max() * 1.5, 50)
    fig = _loss_vs_compute(report, x, "C", "L")
    ax = fig.axes[0]
    assert ax.get_legend() is None and len(fig.legends) == 1  # the legend is the figure's, outside
    lo, hi = ax.get_ylim()
    assert lo <= obs.L.min() and hi >= obs.L.max()
    assert lo > 0.9 * obs.L.min()  # the Bayes loss (1.69) is far below: marked, not drawn into view
    notes = [t.get_text() for t in ax.texts]
    assert any(n.startswith("Bayes loss (known) = 1.69 nats/token, below this axis") for n in notes)
    labels = fig.legends[0].get_texts()
    held = len(report.holdout.held_runs)
    assert any(f"held out: {held} runs not fitted" in t.get_text() for t in labels)
    assert any("FLOPs / C)^" in t.get_text() for t in labels)  # the law's C0 with its unit


@pytest.mark.parametrize("sizes", [5, 2], ids=["isoflop-profiles", "no-isoflop-fit"])
def test_plots_of_sixty_budgets_warn_of_nothing(tmp_path: Path, sizes: int) -> None:
    """Sixty budgets (published sets have dozens): the IsoFLOP profiles are coloured by a scale, not a
    legend entry each that would squeeze the axes to nothing; with 2 sizes a budget no IsoFLOP fit, and
    the allocation plot's note gives the first clause of a reason that lists every budget."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's `constrained_layout not applied`, numpy's too
        report = analyse(
            make_rows(budgets=60, sizes=sizes), FitConfig(bootstrap=0, calibration_draws=0), tmp_path
        )
    assert (report.isoflop is not None) == (sizes == 5)
    assert (tmp_path / "plots" / "optimal_allocation.png").is_file()


def test_conventions_choose_the_columns() -> None:
    rows = make_rows(budgets=2, sizes=3)
    obs, _, _ = build_observations(rows, FitConfig(params="nonembedding", flops="6n"))
    assert obs.params == "nonembedding" and obs.flops == "6n"
    assert obs.N[0] == float(rows[0]["params_nonembedding"]) and obs.C[0] == float(rows[0]["flops_6n"])
    for row in rows:
        del row["flops"]
    obs, _, _ = build_observations(rows, FitConfig())
    assert obs.flops == "6n" and "C = 6 N D" in obs.notes[0]
    assert obs.C[0] == pytest.approx(6 * float(rows[0]["params_total"]) * float(rows[0]["tokens"]))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"tokens": "lots"}, "row 2 \\(run r001\\), column tokens: 'lots' is not a number"),
        ({"params_total": "-5"}, "row 2 \\(run r001\\), column params_total: '-5' must be > 0"),
        ({"val_loss": ""}, "row 2 \\(run r001\\), column val_loss: empty"),
    ],
)
def test_bad_values_name_row_and_column(change, match) -> None:
    rows = make_rows(budgets=2, sizes=3)
    rows[1].update(change)
    with pytest.raises(FitError, match=match):
        build_observations(rows, FitConfig())


def test_missing_columns_are_named() -> None:
    rows = [
        {k: v for k, v in r.items() if k not in ("tokens", "val_loss")} for r in make_rows(budgets=2, sizes=3)
    ]
    with pytest.raises(FitError, match="missing columns: tokens, val_loss"):
        build_observations(rows, FitConfig())


# ------------------------------------------------------------------------------------------------ CLI


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_module("harness.refit", *args, cwd=cwd, timeout=120)


def test_cli_fits_a_hand_written_csv(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # the minimal columns: no run_id, status, flops or budget (budgets are found from compute)
    csv_path = write_csv(
        data / "mine.csv", make_rows(budgets=4, sizes=5), ["params_total", "tokens", "val_loss"]
    )
    out = tmp_path / "out"
    proc = run_cli(f"input={csv_path}", f"out={out}", "fit.bootstrap=50", cwd=tmp_path / "cwd")
    assert proc.returncode == 0, proc.stderr
    assert "\nVERDICT: " in proc.stdout
    fit = json.loads((out / "fit.json").read_text())
    assert fit["n_runs"] == 20 and fit["bootstrap"]["resamples"] == 50
    assert fit["conventions"]["flops"] == "6n" and fit["isoflop"] is not None
    assert (out / "report.md").is_file() and (out / "plots" / "loss_vs_compute.png").is_file()
    assert list((tmp_path / "cwd").iterdir()) == []  # hydra left nothing behind
    assert sorted(p.name for p in data.iterdir()) == ["mine.csv"]


def test_cli_reports_a_degenerate_parametric_fit_without_crashing(tmp_path: Path) -> None:
    """SGD's runs (a real experiment's results) drive the parametric A to 0: no point estimate of tokens per
    parameter, no allocation line; the fit, report and plots are still written."""
    out = tmp_path / "out"
    csv_path = ROOT / "tests" / "data" / "sgd_degenerate_fit.csv"  # conditioning-sgd of 2026-11-30
    proc = run_cli(f"input={csv_path}", f"out={out}", "fit.bootstrap=50", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    fit = json.loads((out / "fit.json").read_text())
    assert fit["parametric"]["compute_optimal"]["tokens_per_param"] is None
    assert {p.name for p in (out / "plots").iterdir()} >= {"loss_vs_compute.png", "optimal_allocation.png"}


def test_cli_fits_a_sweep_directory(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    rows = with_bad_rows(make_rows(budgets=4, sizes=5))
    write_csv(sweep / "results.csv", rows, list(rows[0]))
    (sweep / "sweep.json").write_text(json.dumps({"name": "t", "bayes_loss": SURFACE.E}))
    names = {r["run_id"]: r["name"] for r in rows}
    for rid, evals in make_curves(rows).items():
        run = sweep / "runs" / f"{names[rid]}-{rid}"
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals) + '{"torn": ')
    (sweep / "fit.json").write_text('{"the sweep": "own fit"}')
    (sweep / "report.md").write_text("the sweep's own report")
    proc = run_cli(f"input={sweep}", "fit.bootstrap=30", "fit.flops=6n", cwd=tmp_path / "cwd")
    assert proc.returncode == 0, proc.stderr
    out = sweep / "refits" / "1"  # out defaults to a new directory: the sweep's own fit stays
    assert f"wrote {out / 'fit.json'}" in proc.stdout
    fit = json.loads((out / "fit.json").read_text())
    assert fit["ground_truth"]["bayes_loss"] == SURFACE.E
    assert fit["frontier_curves"]["n_points"] > 0 and fit["conventions"]["flops"] == "6n"
    assert len(fit["excluded"]) == 3 and fit["meta"]["name"] == "t"
    assert "repeated its training data" in (out / "report.md").read_text()
    assert (sweep / "fit.json").read_text() == '{"the sweep": "own fit"}'
    assert (sweep / "report.md").read_text() == "the sweep's own report"

    again = run_cli(f"input={sweep}", "fit.bootstrap=30", cwd=tmp_path / "cwd")
    assert again.returncode == 0 and (sweep / "refits" / "2" / "fit.json").is_file()
    assert json.loads((out / "fit.json").read_text()) == fit  # the first refit stays too

    into = run_cli(f"input={sweep}", f"out={out}", "fit.bootstrap=30", cwd=tmp_path / "cwd")
    assert into.returncode == 2 and into.stderr.strip() == (
        f"error: out: {out} already holds a fit (fit.json); pass overwrite=true to replace it"
    )
    replaced = run_cli(f"input={sweep}", f"out={out}", "overwrite=true", "fit.bootstrap=30", cwd=tmp_path)
    assert (
        replaced.returncode == 0
        and json.loads((out / "fit.json").read_text())["conventions"]["flops"] == "full"
    )


def reconstructed_rows(rng: np.random.Generator) -> list[dict]:
    """A published set as reconstructions give it: tokens real-valued, D = C / 6N at each run's own
    compute, which lies within a few percent of its budget's (so the budgets are found by clustering);
    one size per budget recurs at a second token count. The top budget holds 2 sizes in 3 runs, its
    best the smaller size's second run: too few sizes for a parabola, where a window of 3 runs once
    made a singular matrix."""
    runs = []  # (compute of the run, N, relative loss noise)
    for C in np.logspace(18, 21, 7):
        ladder = SURFACE.N_opt(C) * 1.8 ** np.arange(-3, 4)
        for N in [*ladder, ladder[2]]:
            runs.append((C * (1 + 0.02 * rng.standard_normal()), N, 0.003 * rng.standard_normal()))
    top, N_top = 10**21.5, SURFACE.N_opt(10**21.5)
    runs += [(0.98 * top, 0.8 * N_top, 0.0), (1.02 * top, 0.8 * N_top, 0.0), (top, 2.5 * N_top, 0.0)]
    rows = []
    for C, N, noise in runs:
        D = C / (6 * N)
        L = SURFACE.loss(N, D) * (1 + noise)
        rows.append({"params_total": repr(float(N)), "tokens": repr(float(D)), "val_loss": repr(float(L))})
    return rows


def test_cli_fits_real_valued_tokens_and_skips_budgets_without_a_parabola(tmp_path: Path) -> None:
    """The fitter never raises on a valid table: a budget whose window held 3 runs of 2 sizes made a
    singular matrix (numpy.linalg.LinAlgError); it is now skipped with its reason, and neither numpy nor
    matplotlib prints a warning."""
    rows = reconstructed_rows(np.random.default_rng(3))
    csv_path = write_csv(tmp_path / "reconstructed.csv", rows, list(rows[0]))
    out = tmp_path / "out"
    proc = run_cli(
        f"input={csv_path}", f"out={out}", "fit.bootstrap=50", "fit.calibration_draws=50", cwd=tmp_path
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    budgets = json.loads((out / "fit.json").read_text())["isoflop"]["budgets"]
    assert len(budgets) == 8 and sum(b["used"] for b in budgets) >= 5
    top = budgets[-1]
    assert (top["n_runs"], top["n_sizes"], top["status"], top["used"]) == (3, 2, "few sizes", False)
    assert top["note"] == "2 distinct sizes: a parabola needs 3, so its best run is its frontier point"
    assert {p.name for p in (out / "plots").iterdir()} >= {f"{name}.png" for name in PLOTS}


def test_a_refit_inherits_the_sweeps_fit_settings_unless_given(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    rows = make_rows(budgets=4, sizes=5)
    write_csv(sweep / "results.csv", rows, list(rows[0]))
    swept = {**dataclasses.asdict(FitConfig()), "bootstrap": 20, "flops": "6n", "calibration_draws": 0}
    (sweep / "sweep.json").write_text(json.dumps({"name": "t", "config": {"fit": swept}}))
    for args in ([], ["fit.bootstrap=30"]):
        assert run_cli(f"input={sweep}", *args, cwd=tmp_path).returncode == 0
    fits = [json.loads((sweep / "refits" / n / "fit.json").read_text()) for n in ("1", "2")]
    assert [f["bootstrap"]["resamples"] for f in fits] == [20, 30]  # the sweep's 20, unless given
    assert [f["conventions"]["flops"] for f in fits] == ["6n", "6n"]


BAD_INPUTS = {
    "missing-file": (None, "no such file or directory"),
    "not-a-sweep": ("dir", "has no results.csv"),
    "missing-columns": ("params_total,val_loss\n1000,3.0\n", "missing column(s) tokens"),
    "non-numeric": (
        "params_total,tokens,val_loss\n1000,2000,3.0\n2000,many,2.9\n",
        "row 2, column tokens: 'many' is not a number",
    ),
    "negative": (
        "run_id,params_total,tokens,val_loss\na,1000,2000,3.0\nb,-2000,4000,2.9\n",
        "row 2 (run b), column params_total: '-2000' must be > 0",
    ),
    "too-few-points": (
        "params_total,tokens,val_loss\n1000,2000,3.0\n2000,4000,2.9\n4000,8000,2.8\n",
        "3 distinct runs; the frontier L(C) = E + (C0/C)^alpha has 3 parameters and needs at least 4",
    ),
    "no-input": ("none", "give input=PATH"),
    "bad-setting": ("params_total,tokens,val_loss\n1000,2000,3.0\n", "fit.ci: must be in (0, 1)"),
    "misspelled-key": (
        "params_total,tokens,val_loss\n1000,2000,3.0\n",
        "fit.bootstrapp: unknown config key; allowed keys of fit: ",
    ),
    "positional": ("params_total,tokens,val_loss\n1000,2000,3.0\n", "positional argument"),
    "out-is-a-file": ("params_total,tokens,val_loss\n1000,2000,3.0\n", "is a file, not a directory"),
    "out-under-a-file": ("params_total,tokens,val_loss\n1000,2000,3.0\n", "is a file, not a directory"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_cli_bad_input_one_line_and_nothing_written(tmp_path: Path, case: str) -> None:
    content, message = BAD_INPUTS[case]
    data = tmp_path / "data"
    data.mkdir()
    target = data / "results.csv"
    args = [f"input={target}"]
    if content is None:
        target = data / "absent.csv"
        args = [f"input={target}"]
    elif content == "dir":
        args = [f"input={data}"]
    elif content == "none":
        args = []
    else:
        target.write_text(content)
    out = tmp_path / "out"
    if case == "bad-setting":
        args.append("fit.ci=1.5")
    elif case == "misspelled-key":
        args.append("fit.bootstrapp=10")
    elif case == "positional":
        args = [str(target)]
    elif case in ("out-is-a-file", "out-under-a-file"):
        (tmp_path / "file").write_text("not a directory")
        out = tmp_path / "file" if case == "out-is-a-file" else tmp_path / "file" / "sub"
    before = sorted(p.name for p in data.iterdir())
    proc = run_cli(*args, f"out={out}", cwd=tmp_path / "cwd")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert proc.stdout == ""
    if case == "positional":
        assert lines[0].endswith(f"did you mean input={target}?")
    if case == "misspelled-key":
        assert lines[0].endswith("did you mean fit.bootstrap?")
    assert (not out.exists() or out.is_file()) and sorted(p.name for p in data.iterdir()) == before
    assert list((tmp_path / "cwd").iterdir()) == []
