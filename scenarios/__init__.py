"""The example scenarios, shipped in the package: `qcog-mock scenario list|run` falls back to
them where a project has no `scenarios/` folder of its own. Data only (the `*.toml` files)."""
