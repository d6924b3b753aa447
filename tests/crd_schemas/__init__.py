"""Vendored CRD schemas of the engines the operator renders for (KEDA, Gateway API); see README."""
