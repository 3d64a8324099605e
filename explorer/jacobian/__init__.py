r"""Norms of Jacobian products for every pair of time steps, kept in log space.

For per-step Jacobians J_k = dz_k/dz_{k-1} (k = 1..T) and every pair t <= s,

.. math::
    P(t, s) = \frac{\partial z_s}{\partial z_t} = J_s J_{s-1} \cdots J_{t+1},\qquad P(t, t) = I.

By job, each module importing only those before it (no cycle):

* :mod:`.workers`: the two pools of single-threaded workers (started on first use), batched
  LAPACK in halves, a sweep split in two runs of equal work, interruption;
* :mod:`.certificates`: certified spectral norms of a batch of matrices (pure functions):
  the :class:`Certificate` list, :class:`Plan`, :class:`Tally`, and the exact reference;
* :mod:`.chains`: products in log space: one product, the backward chain to the last step,
  back-propagation, single steps, the grid and its blocks;
* :mod:`.pairs`: the all-pairs sweep (:func:`all_pairs`, ``method="certified"`` or ``"exact"``).
"""
from .certificates import Certificate, Plan, Tally, certified_spectral, exact_spectral
from .chains import (LOG10E, SingularValues, backprop_log, log10_singular_values, make_grid, product, scaled,
                     step_norms, to_the_end)
from .pairs import PairNorms, View, all_pairs
from .workers import batched_lapack

__all__ = ["LOG10E", "Certificate", "PairNorms", "Plan", "SingularValues", "Tally", "View", "all_pairs",
           "backprop_log", "batched_lapack", "certified_spectral", "exact_spectral", "log10_singular_values",
           "make_grid", "product", "scaled", "step_norms", "to_the_end"]
