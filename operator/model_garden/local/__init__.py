"""Local mode: the operator's planners over a store of YAML objects, pods as local processes."""
