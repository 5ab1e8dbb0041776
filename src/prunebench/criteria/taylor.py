"""First-order Taylor criterion (Molchanov et al. 2019): (g*w)^2 per weight.

g is the gradient of the mean loss over the calibration samples (train split, eval mode), so the
scores do not depend on how the samples were batched. For a channel group the per-weight
scores are summed over every weight the group removes (docs/concepts.md). Molchanov et al. also use the
squared group sum (sum g*w)^2; that form lets opposite-signed terms of one group cancel.
"""

from __future__ import annotations

from prunebench.criteria.base import Criterion
from prunebench.criteria.calibration import mean_gradients, require_data


class TaylorFirstOrder(Criterion):
    name = "taylor"
    needs_data = True

    def scores_each(self, model, params, batches=None, task=None):
        require_data(batches, task, self.name)
        # in place: a score reuses its gradient's memory
        for name, grad in mean_gradients(model, params, batches, task):
            yield name, grad.mul_(params[name].detach()).square_()
