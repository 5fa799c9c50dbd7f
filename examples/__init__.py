"""Examples of what users plug into rlkit from config: an env of their own
(``env.id=examples.corridor:Corridor-v0``) and a network (``algo.network={_target_: examples.nets.TwoLayer}``)."""
