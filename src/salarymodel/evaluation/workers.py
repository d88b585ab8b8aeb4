"""The worker pool training runs its independent fits on.

A training run makes 69 LightGBM fits that do not depend on each other
(every fold's models, the range procedure per fold, the final model).
LightGBM releases the GIL while it trains and predicts, so a few threads
that each run one fit on its share of the cores keep every core busy with
no copy of the data. One fit on two cores is worse: LightGBM syncs its
threads after every histogram, and on a 2-core machine where anything else
runs those waits spin (a 1.5 s fit took 20 s or more).

Each worker gets the configured LightGBM threads divided by the number of
workers, for training (``num_threads`` in the parameters) and for
predictions that ask for OpenMP's default (``num_threads=0``). LightGBM's
models do not depend on the thread count (checked: the same trees with 1
and 2 threads), so the split changes only the time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from salarymodel.config.settings import Settings


def threads_per_worker(settings: Settings) -> int:
    """LightGBM threads each worker may use: the configured count shared out."""
    configured = int(settings.model.params.get("num_threads", 1) or 1)
    return max(1, configured // settings.evaluation.workers)


def for_workers(settings: Settings) -> Settings:
    """``settings`` with LightGBM's thread count set to a worker's share."""
    threads = threads_per_worker(settings)
    return settings.model_copy(
        update={
            "model": settings.model.model_copy(
                update={"params": {**settings.model.params, "num_threads": threads}}
            ),
            "ranges": settings.ranges.model_copy(
                update={"params": {**settings.ranges.params, "num_threads": threads}}
            ),
        }
    )


def worker_pool(settings: Settings) -> ThreadPoolExecutor:
    """Threads for independent fits (``settings.evaluation.workers`` of them).

    Jobs run in the order they were submitted: submit the longest first.
    """
    return ThreadPoolExecutor(
        max_workers=settings.evaluation.workers,
        thread_name_prefix="salarymodel-fit",
        initializer=_limit_openmp,
        initargs=(threads_per_worker(settings),),
    )


def _limit_openmp(threads: int) -> None:
    # OpenMP's thread count is per calling thread: this worker's predictions
    # with num_threads=0 use ``threads``, other threads keep their own.
    # threadpoolctl limits only the OpenMP runtimes already loaded: LightGBM
    # (imported where it is used) is loaded first, or the limit is a no-op.
    import lightgbm  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="openmp")
