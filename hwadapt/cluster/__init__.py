"""Fanning work out: the executor abstraction (serial, or Ray behind ``--workers``)."""
from hwadapt.cluster.engines import make_executor
from hwadapt.cluster.executor import Executor, ExecutorError, SerialExecutor, TaskContext, WorkerLost

__all__ = ["Executor", "ExecutorError", "SerialExecutor", "TaskContext", "WorkerLost", "make_executor"]
