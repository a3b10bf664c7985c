"""Plain NumPy twins of every kernel: same module names, same functions, same signatures.

They define what each kernel computes (the tests compare the two) and run everything when
``MINIGRAD_KERNELS=numpy``. They share the kernels' argument checks (kernels/checks.py), so
errors are identical, and import nothing but NumPy, SciPy and those checks: no Numba.
"""
