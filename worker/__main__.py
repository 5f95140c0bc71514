"""`python -m worker`: one RQ worker process (start several for more throughput)."""

from worker.runner import main

main()
