"""Model Garden: fine-tune and serve open LLMs on Kubernetes, with the carbon of every operation."""

__version__ = "0.1.0"
