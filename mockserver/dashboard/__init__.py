"""The operator's dashboard at ``/_emulator/ui``: pages, charts, sign-in."""
