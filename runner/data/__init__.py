"""The plan's data: ``read`` the rows, ``prepare`` them (format adapters in ``formats/``, chat templates in
``templates``, one render-tokenize-mask path), ``builtin`` sets generated with a fixed seed."""
