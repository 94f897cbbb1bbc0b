"""Scripts whose tables the README and benchmarks/RESULTS.md cite; exploration lives in `research/`."""
