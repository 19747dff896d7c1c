"""The async client with qcogclient's Python API (built in a later step)."""
