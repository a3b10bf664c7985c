"""The model zoo, the training recipes and the ``minigrad`` command, built on minigrad
(which never imports this package).

- the zoo: ``vision``, ``mnist1d``, ``text`` (each model a plain ``minigrad.nn.Module``);
- ``recipes``: seeded full runs of zoo models on real data, one file per family;
- ``cli``: the ``minigrad`` command (also ``python -m models``);
- ``digits``: the demo's task written with nothing but tensors and autograd.
"""
