"""The ``music-study`` sub-commands: one thin module each, ``run(args) -> exit status``.

Each turns parsed arguments (:func:`helpers.cli.build_parser`) into calls of the package and
prints the result (text, or one JSON document with ``--json``); formatting for people lives
here too. :mod:`helpers.cli` imports a command's module only when that command runs.
"""
