"""Tools to test gradients, public so users can test their own ops.

- ``gradcheck(fn, inputs)``: analytic gradients against central finite differences in float64.
- ``gradgradcheck(fn, inputs)``: the same for second derivatives (``create_graph=True``).
- ``gradcheck_module(module, inputs)``: gradcheck of a layer, its inputs and all its parameters.
- ``minigrad.testing.strategies``: hypothesis strategies for shapes, tensors, dims, indices
  (needs the ``hypothesis`` package, installed by the ``test`` extra).
- ``minigrad.ops.spec``: the op registry the project's own tests walk; register your ops there.
"""

from minigrad.testing.gradcheck import GradcheckError, gradcheck, gradcheck_module, gradgradcheck

__all__ = ["GradcheckError", "gradcheck", "gradcheck_module", "gradgradcheck"]
