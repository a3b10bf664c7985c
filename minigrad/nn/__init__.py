"""Neural-network building blocks. ``minigrad.nn.functional`` (as ``F``) holds the functions;
the Module classes arrive with the nn issue."""

from minigrad.nn import functional
