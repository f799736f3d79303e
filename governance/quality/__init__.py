"""Quality of engagement beyond flags (issue #21): measures of a year's held interactions that
the compliance home, the auditor home and the internal governance report show alike."""
