"""The ``hwadapt`` command line."""
