"""Fanning work out: the executor abstraction (serial, or Ray behind ``--workers``)."""
from hwadapt.cluster.executor import (Executor, ExecutorError, SerialExecutor, TaskContext, WorkerLost,
                                      make_executor)

__all__ = ["Executor", "ExecutorError", "SerialExecutor", "TaskContext", "WorkerLost", "make_executor"]
