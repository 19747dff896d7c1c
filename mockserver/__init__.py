"""The qcog-mock server: the Qognitive API v1 on a simulated clock."""
