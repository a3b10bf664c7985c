"""Plain NumPy twins of every kernel: same module names, same functions, same signatures.

They define what each kernel computes (the tests compare the two) and run everything when
``MINIGRAD_KERNELS=numpy``. They reuse the kernels' validation, so errors are identical.
"""
