"""Re-export of qcog-mock's hyperparameter models under the public ``qcog_types`` name, so code
written for the Qognitive platform imports unchanged."""
