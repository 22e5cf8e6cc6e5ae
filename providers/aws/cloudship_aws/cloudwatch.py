"""The last lines a service's containers wrote, from the awslogs CloudWatch log group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from cloudship.errors import DeployError
from cloudship_aws import taskdef
from cloudship_aws.errors import aws_errors, error_code

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient


def log_tail(logs: CloudWatchLogsClient, service: str, task_ids: list[str], tail: int) -> list[str]:
    """The last ``tail`` lines of the given tasks' streams, or of the newest streams."""
    group = taskdef.log_group(service)
    events: list[tuple[int, str]] = []
    with aws_errors(f"reading CloudWatch log group {group}", DeployError):
        try:
            streams = [taskdef.log_stream(task_id) for task_id in task_ids] or [
                s["logStreamName"]
                for s in logs.describe_log_streams(
                    logGroupName=group, orderBy="LastEventTime", descending=True, limit=5
                ).get("logStreams", [])
                if "logStreamName" in s
            ]
            for stream in streams:
                try:
                    page = logs.get_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        limit=tail,
                        startFromHead=False,
                    )
                except ClientError as exc:
                    if error_code(exc) != "ResourceNotFoundException":
                        raise
                    continue
                events += [
                    (e.get("timestamp", 0), e.get("message", "")) for e in page.get("events", [])
                ]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return []
    events.sort(key=lambda event: event[0])
    return [message for _, message in events[-tail:]]
