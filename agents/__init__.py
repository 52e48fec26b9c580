"""Players of DishBrain Pong: implementations of `dishbrain.player.Agent`.

Each is registered by name in the ``dishbrain.players`` entry-point group (pyproject.toml) and
built with `dishbrain.player.make_agent`. Importing this package imports none of them.
"""
