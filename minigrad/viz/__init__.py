"""See backprop happen: the explain trace, the backward graph as DOT and as a page."""

from minigrad.viz.explain import Step, explain, trace
from minigrad.viz.graph import to_dot, to_html
