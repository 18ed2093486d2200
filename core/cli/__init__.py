"""The ``specchat-cli`` command line."""
