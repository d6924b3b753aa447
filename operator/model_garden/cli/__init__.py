"""The ``model-garden`` (alias ``mg``) command line."""
