"""Second-order criterion, Optimal Brain Damage (LeCun et al. 1990): 1/2 * h_ii * w_i^2.

The Hessian diagonal h_ii is estimated as the mean over the calibration samples of each
sample's squared gradient (the empirical Fisher diagonal), summed over every sample rather
than taken from one: Torch-Pruning 1.6.1's HessianImportance keeps only the last sample's
gradient, so it is not used. For a channel group the scores are summed over the group.
"""

from __future__ import annotations

from prunebench.criteria.base import Criterion
from prunebench.criteria.calibration import mean_squared_sample_gradients, require_data


class HessianOBD(Criterion):
    name = "hessian"
    needs_data = True
    vectorize = True  # per-sample gradients with torch.func.vmap (falls back to a loop)

    def scores_each(self, model, params, batches=None, task=None):
        require_data(batches, task, self.name)
        diagonals = mean_squared_sample_gradients(model, params, batches, task, self.vectorize)
        # in place: a score reuses its diagonal's memory
        for name, diag in diagonals:
            yield name, diag.mul_(params[name].detach().square()).mul_(0.5)
