"""qcog-mock: a local, offline emulator of the Qognitive QCML platform.

Installed, everything the project ships lives under this one namespace; the repository's folders
map into it (see ``[tool.setuptools] package-dir`` in ``pyproject.toml``):

- ``qcog_mock.trainer``    the ``pytorch-models`` experiment (``trainer/``)
- ``qcog_mock.mockserver`` the emulated platform, its CLI and the pytest harness (``mockserver/``)
- ``qcog_mock.client``     ``qcogclient``'s Python API on httpx, plus extensions (``client/``)
- ``qcog_mock.compat``     opt-in ``qcogclient`` / ``qcog_types`` stand-ins (``compat/``)

Importing this package imports nothing else.
"""

__version__ = "0.2.0"
