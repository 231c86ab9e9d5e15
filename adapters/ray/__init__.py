"""The Ray shell: gateways placed, supervised and restarted by Ray (``--hosting ray``)."""
