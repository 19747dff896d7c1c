"""Test helpers for users of qcog-mock, installed as a pytest plugin (entry point ``qcog_mock``)."""
