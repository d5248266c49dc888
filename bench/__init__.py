"""The benchmark of notifier against the bundled fake gateways, every one in its own process (`python -m bench.run`,
see bench/README.md)."""
