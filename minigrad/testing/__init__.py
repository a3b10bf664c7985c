"""Tools to test gradients, public so users can test their own ops.

- ``gradcheck(fn, inputs)``: analytic gradients against central finite differences in float64
  (float32 inputs: their float32 backward against float64 differences).
- ``gradgradcheck(fn, inputs)``: the same for second derivatives (``create_graph=True``).
- ``gradcheck_module(module, inputs)``: gradcheck of a layer, its inputs and all its parameters.
- ``minigrad.testing.strategies``: hypothesis strategies for shapes, tensors, dims, indices
  (needs the ``hypothesis`` package, installed by the ``test`` extra).
- ``minigrad.ops.spec``: the op registry the project's own tests walk; register your ops there.
- ``check_op(spec)``: every check the project runs on its own ops (forward, float32,
  gradcheck, gradgradcheck, jvp, vmap, hypothesis-drawn samples), for one spec;
  ``registered_specs()`` lists them for a pytest parametrization.
"""

from minigrad.testing.conformance import check_op, registered_specs
from minigrad.testing.gradcheck import GradcheckError, gradcheck, gradcheck_module, gradgradcheck

__all__ = [
    "GradcheckError",
    "check_op",
    "gradcheck",
    "gradcheck_module",
    "gradgradcheck",
    "registered_specs",
]
