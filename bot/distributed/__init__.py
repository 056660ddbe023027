"""Scale-out: chat front-ends queue edits in Redis, `editbot worker` processes (one per GPU) run them.

    keys.py      the Redis names one deployment uses (stream, waiting set, event channels, cancel and pause flags)
    broker.py    Taskiq's Redis stream broker as front-ends and workers use it, and a batching worker's reader
    jobs.py      the job table: JobRecord, the JobRepository contract, and it on SQLAlchemy
    frontend.py  DistributedQueue, the front-end's core.ports.JobQueue: records, queues and follows jobs
    enqueue.py   how it records and queues them; notices.py what it tells people waiting (place, no worker)
    worker.py    EditWorker and `editbot worker`: claims, runs and records jobs
    bench.py     `editbot bench-queue` (python -m bot.distributed.bench): throughput with 1, 2 and 4 workers

Only jobs.py and bench.py import without the `distributed` extra (taskiq-redis, redis); nothing is imported here.
"""
