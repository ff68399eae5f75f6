"""The twin's SQS: moto's SQS on the twin's moto server (the same process as its DynamoDB), and
Lambda's event source mapping for SQS in front of the same handlers.

moto's SQS does what the webhook sender relies on: per-message `DelaySeconds` (up to 900),
visibility timeouts, and a redrive policy that moves a message received `maxReceiveCount`
times to its dead-letter queue. So no emulator of the twin's own is needed; what the twin adds
is the poller (`QueueSources`), as `event_source.py` adds one for streams:

- **Polling**: ReceiveMessage (up to `batch_size`, no long poll) every POLL_INTERVAL_SECONDS
  while the queue is empty, at once again while it is not; Lambda long-polls with five
  pollers, so its pick-up of a new message is comparable (tens of milliseconds).
- **Invoking**: the event is `{"Records": [...]}` in Lambda's SQS record shape
  (`lambda_record`), at most `max_concurrency` invocations at once, through the twin's
  `LocalLambdaRuntime`.
- **Outcome**, as Lambda: success deletes the batch's messages, but those named in
  `batchItemFailures` (with `report_batch_item_failures`); an error or a timeout deletes none.
  Messages not deleted become visible again after the queue's visibility timeout, and moto's
  redrive moves them to the dead-letter queue after `maxReceiveCount` receives.

The queues live in moto's memory: unlike the tables they are not snapshotted, so messages in
flight when the twin stops are lost (the delivery log still shows those deliveries pending).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from infra.twin.fake_aws import ACCOUNT_ID, REGION, fake_session
from infra.twin.lambda_runtime import LambdaInvocationError, LocalLambdaRuntime
from townhall.functions import QueueSourceSpec, QueueSpec

log = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.02
READ_ERROR_BACKOFF_SECONDS = 0.5
START_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 5.0


def queue_name(spec: QueueSpec) -> str:
    return f"townhall-{spec.logical_id.lower()}"


def dead_letter_name(spec: QueueSpec) -> str:
    return f"{queue_name(spec)}-dead-letters"


def create_queues(endpoint: str, specs: Iterable[QueueSpec]) -> dict[str, str]:
    """Make each queue and its dead-letter queue on moto; env var -> URL for the handlers."""
    sqs = fake_session().client("sqs", endpoint_url=endpoint)
    urls: dict[str, str] = {}
    for spec in specs:
        dead = sqs.create_queue(
            QueueName=dead_letter_name(spec),
            Attributes={"MessageRetentionPeriod": str(spec.dead_letter_retention_days * 86400)},
        )["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        url = sqs.create_queue(
            QueueName=queue_name(spec),
            Attributes={
                "VisibilityTimeout": str(spec.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(spec.retention_days * 86400),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead_arn, "maxReceiveCount": spec.max_receive_count}
                ),
            },
        )["QueueUrl"]
        urls[spec.env_var] = url
        urls[spec.dead_letter_env_var] = dead
    return urls


def lambda_record(message: Mapping[str, Any], queue: str) -> dict[str, Any]:
    """A ReceiveMessage message in the shape Lambda hands the function."""
    body = message["Body"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": dict(message.get("MessageAttributes", {})),
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue}",
        "awsRegion": REGION,
    }


def failed_ids(answer: Any, records: list[dict[str, Any]]) -> set[str] | None:
    """The message ids an answer reports failed; None (the whole batch failed) for an answer
    naming a message not in the batch, as Lambda treats it."""
    if not isinstance(answer, Mapping) or not answer.get("batchItemFailures"):
        return set()
    ids = {r["messageId"] for r in records}
    named: set[str] = set()
    for failure in answer["batchItemFailures"]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return None
        named.add(identifier)
    return named


class QueuePoller:
    def __init__(self, spec: QueueSourceSpec, runtime: LocalLambdaRuntime, sqs: Any, url: str):
        self.spec = spec
        self._runtime = runtime
        self._sqs = sqs
        self._url = url
        self._slots = asyncio.Semaphore(spec.max_concurrency)
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def stop(self, grace: float) -> None:
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)

    async def _read(self) -> None:
        while not self._stopping:
            await self._slots.acquire()
            try:
                answer = await asyncio.to_thread(
                    self._sqs.receive_message,
                    QueueUrl=self._url,
                    MaxNumberOfMessages=min(10, self.spec.batch_size),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception:
                self._slots.release()
                log.warning("%s: ReceiveMessage failed", self.spec.logical_id, exc_info=True)
                await asyncio.sleep(READ_ERROR_BACKOFF_SECONDS)
                continue
            messages = answer.get("Messages", [])
            if not messages:
                self._slots.release()
                await asyncio.sleep(POLL_INTERVAL_SECONDS)
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(messages))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, messages: list[dict[str, Any]]) -> None:
        try:
            queue = self._url.rsplit("/", 1)[-1]
            records = [lambda_record(m, queue) for m in messages]
            try:
                answer = await self._runtime.invoke(
                    self.spec.function.logical_id, {"Records": records}
                )
            except LambdaInvocationError as exc:
                log.warning("%s: the batch failed: %s", self.spec.logical_id, exc.error_type)
                return  # nothing deleted: visible again after the visibility timeout
            failed = failed_ids(answer, records) if self.spec.report_batch_item_failures else set()
            if failed is None:
                return
            done = [
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                for i, r in enumerate(records)
                if r["messageId"] not in failed
            ]
            if done:
                await asyncio.to_thread(
                    self._sqs.delete_message_batch, QueueUrl=self._url, Entries=done
                )
        except Exception:  # a bug here must not stop the poller for good
            log.exception("%s: delivering a batch failed", self.spec.logical_id)
        finally:
            self._slots.release()


class QueueSources:
    """The twin's SQS event source mappings, on a thread and event loop of their own."""

    def __init__(
        self,
        specs: Iterable[QueueSourceSpec],
        runtime: LocalLambdaRuntime,
        *,
        endpoint: str,
        queue_urls: Mapping[str, str],
    ) -> None:
        self.specs = tuple(specs)
        self._runtime = runtime
        self._endpoint = endpoint
        self._urls = dict(queue_urls)
        self._pollers: list[QueuePoller] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.specs:
            return
        for spec in self.specs:
            self._runtime.handler_path(spec.function.logical_id)  # KeyError: not served
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="twin-queues", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start_all(), loop).result(START_TIMEOUT_SECONDS)

    async def _start_all(self) -> None:
        sqs = fake_session().client("sqs", endpoint_url=self._endpoint)
        for spec in self.specs:
            poller = QueuePoller(spec, self._runtime, sqs, self._urls[spec.queue.env_var])
            self._pollers.append(poller)
            poller.start()

    async def _stop_all(self, grace: float) -> None:
        await asyncio.gather(*(p.stop(grace) for p in self._pollers), return_exceptions=True)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            stopping = asyncio.run_coroutine_threadsafe(self._stop_all(grace), loop)
            stopping.result(timeout=grace + 10)
        except Exception:
            log.exception("the queue pollers did not stop cleanly")
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()


def queue_depth(endpoint: str, url: str) -> int:
    """Messages in a queue, visible, in flight or delayed (for tests and tools)."""
    attributes = (
        fake_session()
        .client("sqs", endpoint_url=endpoint)
        .get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
    )
    return sum(int(v) for v in attributes.values())


__all__ = ["QueueSources", "create_queues", "queue_depth"]
