"""Running experiments: the plan, the driver's loop, dense models, one pruning step, fine-tuning, executors."""
