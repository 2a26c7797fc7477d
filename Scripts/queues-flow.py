#!/usr/bin/env python3
"""Queues (pgmq's SQL interface, built in) driven by pgmq's own Python client (PyPI `pgmq`) and by the
data API's pgmq_public rpc. Run by Tests/StriveCLITests/QueueTests.swift:

    queues-flow.py URL SERVICE_KEY ANON_KEY SERVICE_DATABASE_URL

SERVICE_DATABASE_URL is `strive db url --role service`: a worker's login, running as service_role. The
client is told not to `CREATE EXTENSION pgmq` (PG_INIT_EXTENSION=false / init_extension=False): the
interface is there already. Prints one line per step ("ok <step>"); any failure raises.
"""
import sys
import threading

import httpx
from pgmq import PGMQueue

URL, SERVICE_KEY, ANON_KEY, DSN = sys.argv[1:5]


def client():
    return PGMQueue(conn_string=DSN, init_extension=False)


def main():
    queue = client()
    queue.create_queue("jobs")
    assert "jobs" in [str(q) for q in queue.list_queues()]
    ids = [queue.send("jobs", {"n": n}) for n in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5, ids
    first = queue.read("jobs", vt=30)
    assert first.message == {"n": 0} and first.read_ct == 1 and first.msg_id == ids[0], first
    assert queue.archive("jobs", first.msg_id)
    second = queue.read("jobs", vt=30)
    assert second.message == {"n": 1}
    assert queue.delete("jobs", second.msg_id)
    assert not queue.delete("jobs", second.msg_id), "a message is deleted once"
    metrics = queue.metrics("jobs")
    assert metrics.queue_length == 3 and metrics.total_messages == 5, metrics
    delayed = queue.send("jobs", {"later": True}, delay=60)
    popped = queue.pop("jobs")
    assert popped.message == {"n": 2}, popped
    with_headers = queue.send("jobs", {"h": 1}, headers={"trace": "abc"})
    print("ok send, read, archive, delete, pop", flush=True)

    # Two consumers reading in batches at once: every message is received exactly once.
    batch = queue.send_batch("jobs", [{"b": i} for i in range(300)])
    assert len(batch) == 300
    seen = [[], []]

    def consume(k):
        consumer = client()
        while True:
            got = consumer.read_batch("jobs", vt=30, batch_size=7)
            if not got:
                return
            seen[k].extend(message.msg_id for message in got)

    threads = [threading.Thread(target=consume, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    together = seen[0] + seen[1]
    assert not set(seen[0]) & set(seen[1]), "two consumers received the same message inside its visibility timeout"
    expected = set(batch) | {ids[3], ids[4], with_headers}
    assert set(together) == expected and len(together) == len(expected), (len(together), len(expected))
    assert delayed not in together, "a delayed message stays hidden"
    print("ok two consumers never share a message", flush=True)

    # Through the data API, as Supabase's pgmq_public wrappers are called.
    rest = httpx.Client(
        base_url=URL + "/rest/v1",
        headers={"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}", "Content-Profile": "pgmq_public",
                 "Accept-Profile": "pgmq_public"},
        timeout=30)
    sent = rest.post("rpc/send", json={"queue_name": "jobs", "message": {"via": "rpc"}})
    assert sent.status_code == 200, sent.text
    message_id = sent.json()[0]
    assert isinstance(message_id, int), sent.text
    read = rest.post("rpc/read", json={"queue_name": "jobs", "sleep_seconds": 30, "n": 5})
    assert read.status_code == 200 and [m["message"] for m in read.json()] == [{"via": "rpc"}], read.text
    archived = rest.post("rpc/archive", json={"queue_name": "jobs", "message_id": message_id})
    assert archived.json() is True, (archived.status_code, archived.text, message_id)
    anon = httpx.post(f"{URL}/rest/v1/rpc/send", json={"queue_name": "jobs", "message": {}},
                      headers={"apikey": ANON_KEY, "Content-Profile": "pgmq_public"})
    assert anon.status_code in (401, 403), (anon.status_code, anon.text)
    print("ok pgmq_public through the data API, for the roles granted it", flush=True)

    assert queue.purge("jobs") >= 1
    assert queue.drop_queue("jobs")
    assert "jobs" not in [str(q) for q in queue.list_queues()]
    print("ok purge and drop", flush=True)


main()
