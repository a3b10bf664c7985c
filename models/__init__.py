"""The model zoo and training recipes (built on minigrad; minigrad never imports this).

For now it holds the README's main job, ``python -m models.digits``.
"""
