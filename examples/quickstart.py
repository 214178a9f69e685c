"""A 20-line script: publish, handle in worker threads, request/reply.

    NATS_URL=nats://localhost:4222 python examples/quickstart.py
"""

import threading

import syncmsg

done = threading.Event()

with syncmsg.connect(timeout=2.0) as client:  # NATS_URL, else nats://localhost:4222
    client.subscribe("greetings.*", lambda msg: (print(f"got {msg.text()}"), done.set()))
    client.serve("math.double", lambda msg: {"result": msg.json()["n"] * 2})

    client.publish("greetings.world", "hello from a plain script")
    done.wait(2.0)  # the worker thread prints first; print() from two threads can interleave
    print(client.request("math.double", {"n": 21}).json())  # {'result': 42}
