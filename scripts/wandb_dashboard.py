"""Save a W&B workspace (a saved view of the project page) laid out for one sweep group.

    python scripts/wandb_dashboard.py --group cpu [--project scaling-harness] [--entity me]

Sections: loss against tokens for every run (colour and grouping by width), validation loss against
FLOPs on log-log axes with the final point of each run, and the fit run's plots and results table.
The runs table is filtered to the group and shows width, tokens, FLOPs and the final validation loss.

The keys are those the harness logs: history `tokens`, `flops`, `train/loss`, `val/loss`; the train
runs' summary holds their result row (`width`, `tokens`, `flops`, `val_loss`, ...) and their config the
run spec (`shape.width`, ...); the fit run logs its plots as `plots/<name>` and the table `results`.

`build_workspace` is pure and works offline; `main` saves the view and needs WANDB_API_KEY and network.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws
from wandb_workspaces import expr


def build_workspace(
    entity: str,
    project: str,
    group: str,
    *,
    plot_keys: Sequence[str] = (),
    width_key: str = "shape.width",
    max_runs: int = 100,
) -> ws.Workspace:
    """The workspace for sweep `group`; `plot_keys` are the fit run's image keys (`plots/<name>`)."""
    by_width = wr.Config(width_key)
    loss_vs_tokens = ws.Section(
        name="Loss vs tokens",
        is_open=True,
        panels=[
            wr.LinePlot(
                title="train/loss vs tokens (each run)",
                x="tokens",
                y=["train/loss"],
                log_x=True,
                log_y=True,
                legend_template="${run:displayName}",
                max_runs_to_show=max_runs,
            ),
            wr.LinePlot(
                title="val/loss vs tokens (each run)",
                x="tokens",
                y=["val/loss"],
                log_x=True,
                log_y=True,
                legend_template="${run:displayName}",
                max_runs_to_show=max_runs,
            ),
            wr.LinePlot(
                title="val/loss vs tokens, grouped by width (min over budgets)",
                x="tokens",
                y=["val/loss"],
                log_x=True,
                log_y=True,
                groupby=by_width,
                groupby_aggfunc="min",
                groupby_rangefunc="minmax",
                max_runs_to_show=max_runs,
            ),
        ],
    )
    loss_vs_compute = ws.Section(
        name="Loss vs compute",
        is_open=True,
        panels=[
            wr.LinePlot(
                title="val/loss vs FLOPs (log-log)",
                x="flops",
                y=["val/loss"],
                log_x=True,
                log_y=True,
                groupby=by_width,
                groupby_aggfunc="min",
                groupby_rangefunc="minmax",
                max_runs_to_show=max_runs,
            ),
            wr.ScatterPlot(
                title="final val loss vs FLOPs (log-log)",
                x=wr.SummaryMetric("flops"),
                y=wr.SummaryMetric("val_loss"),
                log_x=True,
                log_y=True,
            ),
            wr.ScatterPlot(
                title="final val loss vs params (log-log)",
                x=wr.SummaryMetric("params_total"),
                y=wr.SummaryMetric("val_loss"),
                log_x=True,
                log_y=True,
            ),
        ],
    )
    fit_panels: list = [wr.WeavePanelSummaryTable(table_name="results")]
    if plot_keys:
        fit_panels.insert(
            0, wr.MediaBrowser(title="fit plots", media_keys=list(plot_keys), gallery_axis="step")
        )
    fit = ws.Section(name="Scaling-law fit", is_open=True, panels=fit_panels)
    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"scaling sweep {group}",
        sections=[loss_vs_tokens, loss_vs_compute, fit],
        settings=ws.WorkspaceSettings(x_axis="tokens", max_runs=max_runs),
        runset_settings=ws.RunsetSettings(
            filters=[expr.Metric("Group") == group],
            order=[expr.Ordering(expr.Summary("flops"), ascending=True)],
            pinned_columns=[
                "run:displayName",
                "summary:status",
                "summary:width",
                "summary:tokens",
                "summary:flops",
                "summary:val_loss",
            ],
        ),
    )


def _fit_plot_keys(api, entity: str, project: str, group: str) -> list[str]:
    """The image keys the group's fit run logged (empty when it has none yet)."""
    runs = api.runs(f"{entity}/{project}", filters={"group": group, "jobType": "fit"})
    keys: set[str] = set()
    for run in runs:
        keys.update(k for k in run.summary_metrics if k.startswith("plots/"))
    return sorted(keys)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", required=True, help="sweep name (the W&B run group)")
    parser.add_argument("--project", default="scaling-harness")
    parser.add_argument("--entity", default="", help="W&B entity (default: your default entity)")
    parser.add_argument("--width-key", default="shape.width", help="config key holding the model width")
    args = parser.parse_args(argv)

    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        print("error: saving a workspace needs W&B online; WANDB_MODE is set to offline", file=sys.stderr)
        return 2
    try:
        import wandb

        api = wandb.Api()
        entity = args.entity or api.default_entity
        if not entity:
            raise RuntimeError("no entity: pass --entity")
        keys = _fit_plot_keys(api, entity, args.project, args.group)
        workspace = build_workspace(
            entity, args.project, args.group, plot_keys=keys, width_key=args.width_key
        )
        workspace.save()
    except Exception as e:  # noqa: BLE001 - one clear line instead of a GraphQL traceback
        print(
            f"error: could not save the workspace to W&B ({type(e).__name__}: {e}); "
            "it needs network access and a W&B login (WANDB_API_KEY)",
            file=sys.stderr,
        )
        return 2
    print(workspace.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
