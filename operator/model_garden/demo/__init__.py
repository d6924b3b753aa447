"""The embedded default of local mode: a tiny model and a learnable dataset built on this machine.

The Hugging Face Hub is out of reach offline, and no package ships a causal LM, so the quickstart
and the tests build their own (seconds on CPU).
"""
