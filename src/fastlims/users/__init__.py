"""People and machines that may use the LIMS: users, roles, password hashes and API tokens."""
