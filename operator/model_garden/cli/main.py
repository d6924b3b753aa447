"""Entry point of the ``model-garden`` / ``mg`` command.

Sub-commands are imported when they run, not when the CLI starts: ``mg --help`` reads the
one-line summaries below and imports neither pydantic models, the Kubernetes client nor rich.
Exit codes are listed in :mod:`model_garden.cli.errors`.
"""

from __future__ import annotations

import importlib
import platform
import sys
from collections.abc import Sequence
from typing import Any

import click

from model_garden import __version__

from .errors import EXIT_INTERRUPTED

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train:train", "Fine-tune a model: create a FineTuneJob (from -f or flags)."),
    "jobs": ("jobs:jobs", "FineTuneJobs: list, get, logs, watch, cancel, delete."),
    "versions": ("versions:versions", "ModelVersions: list, get, promote, delete."),
    "deploy": ("deploy:deploy", "Serve a ModelVersion: create an InferenceDeployment."),
    "deployments": ("deploy:deployments", "InferenceDeployments: list, get, scale, delete."),
    "serve": ("deploy:serve", "Serve a ModelVersion on this machine, in the foreground."),
    "export": ("export:export", "Export a ModelVersion as merged safetensors."),
    "eval": ("eval:eval_", "Evaluate a ModelVersion: loss, perplexity, sample generations."),
    "chat": ("chat:chat", "Chat with a deployment or any OpenAI-compatible URL."),
    "complete": ("complete:complete", "Complete a prompt (plain text) with a deployment or URL."),
    "batch": ("batch:batch", "Run a JSONL file of OpenAI requests (batch) against a deployment."),
    "carbon": (
        "carbon:carbon",
        "Carbon report (by job, version, model, …), grid intensities, recommendations.",
    ),
    "quickstart": ("quickstart:quickstart", "The whole flow on the embedded tiny model, on CPU."),
    "dataset": ("dataset:dataset", "Training datasets: validate, preview, stats, convert."),
    "dashboard": ("dashboard:dashboard", "The read API and web dashboard, on 127.0.0.1."),
    "config": ("config:config", "View and set the CLI's defaults."),
    "crds": ("crds:crds", "CRDs of our three kinds: generate, or install on the cluster."),
    "version": ("main:version", "Print the version of the CLI."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        command: click.Command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's standalone mode, but every error on one line (usage errors included)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "mg"
            click.echo(f"Error: {exc.format_message()} (see {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])


EPILOG = """\b
Examples:
  mg train --local --base-model ./tiny-llama --dataset pets.jsonl --wait
  mg jobs list
  mg versions promote pets-v1 --stage production

Cluster mode uses the kubeconfig's current context (--context, --namespace); local mode
(--local, or when no cluster is configured) keeps everything under $MODEL_GARDEN_HOME.
Exit codes: 0 ok, 1 failed, 2 bad input, 3 not found, 4 cluster unreachable, 5 exists."""


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EPILOG,
)
@click.version_option(__version__, prog_name="model-garden")
def cli() -> None:
    """Fine-tune and serve open LLMs on Kubernetes, with the carbon of every operation."""


@click.command()
@click.option("-o", "--output", type=click.Choice(["table", "yaml", "json"]), default="table")
def version(output: str) -> None:
    """Print the version of the CLI (and of Python).

    \b
    Example:
      mg version -o json
    """
    if output != "table":
        from .output import emit

        emit({"version": __version__, "python": platform.python_version()}, output, [])
    else:
        click.echo(
            f"model-garden {__version__} (Python {platform.python_version()}, {sys.platform})"
        )


if __name__ == "__main__":
    cli()
