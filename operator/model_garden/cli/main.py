"""Entry point of the ``model-garden`` / ``mg`` command: one group, one sub-command module each."""

from __future__ import annotations

import click

from model_garden import __version__

from .crds import crds
from .dataset import dataset
from .quickstart import quickstart


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-garden")
def cli() -> None:
    """Fine-tune and serve open LLMs on Kubernetes, with the carbon of every operation."""


cli.add_command(crds)
cli.add_command(quickstart)
cli.add_command(dataset)
