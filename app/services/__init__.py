"""Use cases. The only layer that commits; jobs are enqueued only after the commit."""
