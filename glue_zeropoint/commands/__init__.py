"""Sub-commands of the ``glue-zeropoint`` command line: one module each, ``add_parser(sub)``."""
