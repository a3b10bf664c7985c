"""Numba CPU kernels, each with a plain NumPy twin: float arrays in, float arrays out.

Nothing here imports minigrad (see ../shared/DESIGN.md, section 3, and issue 3). The kernels
arrive with that issue; until then minigrad's ops run on NumPy alone.
"""
