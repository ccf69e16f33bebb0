"""The model lifecycle's built-in tasks: evaluate, approval, deploy, promote.

Each runs as a job task (``python_wheel_task`` with ``package_name: lakestack`` and the task's
entry point) or from Python. A deployment job chains them: evaluate the new version against the
champion, wait for a person to approve it, make it the champion.
"""

__all__: list[str] = []
