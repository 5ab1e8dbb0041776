"""Where steps run: in this process, in worker processes, on Ray, or as DDP ranks."""
