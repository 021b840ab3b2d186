"""The bridge's delivery guarantees re-proved on a real Kafka 4.x cluster
(tests/support/kafka_cluster.py: a KRaft controller and three brokers,
min.insync.replicas=2, auto.create.topics.enable=false), with exact counts.

  routing            two routes, two topics, every event schema-valid
  leader_sigkill     the partition leader's broker SIGKILLed mid-stream,
                     restarted
  one_broker_down    one of three brokers stopped: still delivered
  two_brokers_down   two of three stopped: the broker answers
                     NOT_ENOUGH_REPLICAS, the producer waits; nothing lost
                     when they return
  full_outage_*      every broker stopped for 10 s mid-stream (SIGTERM and
                     SIGKILL): the duplicate question (docs/operations.md)
  sigterm_drain      SIGTERM while events wait for replicas: the bridge
                     drains them once the brokers return and exits 0
  too_big            events over the topic's max.message.bytes (the broker
                     refuses) and over the producer's message.max.bytes
                     (refused locally): errors, counters; the rest flows
  missing_topic      a route to a topic that does not exist: an error that
                     names it, counted; the other route flows

Each test prints RESULT <name> expected= delivered= lost= messages=
distinct_ids= distinct_payloads= dup_same_bytes= dup_other_bytes= ...
"""

import json
import signal
import unittest

from confluent_kafka import KafkaError, Producer

from ebtest import final_stats, validate_event, wait_for, wait_stats
from kafkatest import RealKafkaTestCase, Tally, hold


def routes(topic, other=None):
    r = """
  - name: orders
    match: "order:{id}"
    topic: %s
    key: "{id}"
""" % topic
    if other:
        r += """
  - name: sessions
    match: "session:{id}"
    topic: %s
""" % other
    return r


def stats_now(bridge):
    """The latest periodic stats line (the bridge writes one per
    stats_interval), or None."""
    with bridge._lock:
        s = [e for e in bridge.logs if e.get("msg") == "stats"]
    return s[-1] if s else None


class DeliveryOnRealKafka(RealKafkaTestCase, unittest.TestCase):

    # ------------------------------------------------------------ routing

    def test_routing_with_schema_validation(self):
        orders, sessions = self.new_topic(4), self.new_topic(2)
        self.start_stack(routes(orders, sessions))
        c = self.consumer([orders, sessions])
        o = self.arm("r", 300)
        s = self.arm("s", 100, key_fmt="session:%s-%d")
        self.wait_delivered(c, o + s)
        c.drain(1.0)
        by_topic = {orders: [], sessions: []}
        for m in c.messages:
            validate_event(m["json"])
            by_topic[m["topic"]].append(m)
        t = Tally(c.messages, o + s)
        t.report("routing", orders=len(by_topic[orders]), sessions=len(by_topic[sessions]))
        self.assertEqual((len(by_topic[orders]), len(by_topic[sessions])), (300, 100))
        self.assertEqual({m["json"]["subject"] for m in by_topic[orders]}, set(o))
        self.assertEqual(t.messages, 400)
        for m in by_topic[orders]:
            self.assertEqual(m["key"], m["json"]["subject"].split(":", 1)[1].encode())
            self.assertEqual(m["json"]["data"]["route"], "orders")
            self.assertEqual(dict(m["headers"]), {"content-type": b"application/cloudevents+json"})
        self.assertEqual(self.bridge.stop(), 0)
        st = final_stats(self.bridge)
        self.assertEqual((st["received"], st["produced"], st["failed"], st["dropped"]),
                         (400, 400, 0, 0))

    # ------------------------------------------------------------ brokers failing

    def test_partition_leader_sigkilled_and_restarted_mid_stream(self):
        topic = self.new_topic(1)
        self.start_stack(routes(topic), stats="200ms")
        c = self.consumer([topic])
        leader = self.cluster.leader(topic, 0)
        keys = self.arm("k", 3000, ttl_ms=lambda i: 20 + 2 * i)  # over ~6 s
        wait_stats(self.bridge, lambda s: s["produced"] >= 500, 30, what="500 delivered")
        self.cluster.kill(leader)
        new_leader = wait_for(lambda: (self.cluster.leader(topic, 0) not in (leader, -1) and
                                       self.cluster.leader(topic, 0)), 30,
                              what="a new leader after the SIGKILL")
        at_kill = stats_now(self.bridge)["produced"]
        self.cluster.start(leader)
        self.wait_delivered(c, keys, 90)
        c.drain(2.0)
        t = Tally(c.messages, keys)
        t.report("leader_sigkill", killed_leader=leader, new_leader=new_leader,
                 produced_at_kill=at_kill)
        self.assertEqual(t.lost, [])
        self.assertEqual(t.unexpected, [])
        self.assertEqual(t.other_bytes, 0, "the bridge produced nothing twice")
        self.assertEqual(self.bridge.stop(), 0)
        st = final_stats(self.bridge)
        self.assertEqual((st["received"], st["produced"], st["failed"]), (3000, 3000, 0))

    def test_one_of_three_brokers_down_still_delivers(self):
        topic = self.new_topic(4)
        self.start_stack(routes(topic))
        c = self.consumer([topic])
        warm = self.arm("w", 10)
        self.wait_delivered(c, warm)
        self.cluster.stop(2)
        self.cluster.wait_isr(topic, 2)
        keys = self.arm("k", 1000, ttl_ms=lambda i: 20 + i)
        self.wait_delivered(c, keys, 60, what="1000 events with broker 2 down")
        self.assertFalse(self.cluster.running(2))
        c.drain(1.0)
        t = Tally(c.messages, warm + keys)
        t.report("one_broker_down")
        self.assertEqual((t.messages, t.delivered, t.ids), (1010, 1010, 1010))

    def probe_not_enough_replicas(self, topic):
        """What the broker answers an acks=all produce while the ISR is
        below min.insync.replicas (a probe producer that does not retry)."""
        errs = []
        p = Producer({"bootstrap.servers": self.cluster.bootstrap, "acks": "all",
                      "retries": 0, "enable.idempotence": False, "log_level": 0,
                      "message.timeout.ms": 20000})
        p.produce(topic, b"probe", partition=0, on_delivery=lambda e, m: errs.append(e))
        p.flush(30)
        return errs[0] if errs else None

    def test_two_of_three_brokers_down_waits_then_delivers_everything(self):
        topic = self.new_topic(4)
        self.start_stack(routes(topic), stats="200ms")
        c = self.consumer([topic])
        warm = self.arm("w", 10)
        self.wait_delivered(c, warm)
        self.cluster.stop_brokers([2, 3])
        self.cluster.wait_isr(topic, 1)
        err = self.probe_not_enough_replicas(topic)
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), KafkaError.NOT_ENOUGH_REPLICAS, str(err))
        keys = self.arm("k", 500, ttl_ms=lambda i: 20 + i)
        s = wait_stats(self.bridge, lambda s: s["received"] >= 510, 30, what="500 read")
        hold(5)  # the producer keeps retrying: nothing may be acknowledged
        s = stats_now(self.bridge)
        held = (s["produced"], s["failed"], s["dropped"], s["inflight"])
        self.assertEqual(held, (10, 0, 0, 500), "waiting on NOT_ENOUGH_REPLICAS")
        self.cluster.start_brokers([2, 3])
        self.wait_delivered(c, keys, 90, what="the 500 after two brokers returned")
        c.drain(2.0)
        t = Tally(c.messages, warm + keys)
        t.report("two_brokers_down", probe_error=err.name(), held_inflight=held[3])
        self.assertEqual(t.lost, [])
        self.assertEqual(t.other_bytes, 0)

    def full_outage(self, name, sig):
        """Every broker stopped with `sig` for 10 s while keys expire, then
        restarted: no loss, and how many copies of what. Judged on what the
        topic holds (read from offset 0 without a group), not on a group
        member, whose re-reads after the coordinator's outage are its own."""
        topic = self.new_topic(8)
        self.start_stack(routes(topic), stats="200ms")
        keys = self.arm("k", 4000, ttl_ms=lambda i: 20 + 2 * i)  # over ~8 s
        wait_stats(self.bridge, lambda s: s["produced"] >= 1000, 30, what="1000 delivered")
        self.cluster.stop_brokers(sig=sig)
        at_stop = stats_now(self.bridge)
        hold(10)
        during = stats_now(self.bridge)
        self.cluster.start_brokers()
        try:
            wait_stats(self.bridge, lambda s: s["produced"] >= 4000, 120,
                       what="the bridge's 4000 acknowledged after the outage")
        except AssertionError as e:
            raise AssertionError("%s; last stats %s; topic holds %s\ncluster:\n%s" % (
                e, stats_now(self.bridge), self.cluster.end_offsets(topic),
                self.cluster.logs_tail(8))) from None
        self.assertEqual(self.bridge.stop(), 0)
        st = final_stats(self.bridge)
        msgs = [{"value": v, "json": json.loads(v)} for _, _, _, v in
                self.cluster.read_topic(topic)]
        t = Tally(msgs, keys)
        t.report(name, produced_at_stop=at_stop["produced"], received_during=during["received"],
                 inflight_during=during["inflight"], bridge_produced=st["produced"],
                 bridge_failed=st["failed"])
        self.assertEqual(t.lost, [])
        self.assertEqual(t.unexpected, [])
        self.assertEqual((st["received"], st["produced"], st["failed"], st["dropped"]),
                         (4000, 4000, 0, 0))
        # The bridge produced each event once: any duplicate is a copy of
        # the same bytes, written again by the producer's retries.
        self.assertEqual(t.other_bytes, 0)
        return t

    def test_every_broker_stopped_for_10s_sigterm(self):
        self.full_outage("full_outage_sigterm", signal.SIGTERM)

    def test_every_broker_killed_for_10s_sigkill(self):
        self.full_outage("full_outage_sigkill", signal.SIGKILL)

    def test_sigterm_drains_events_waiting_for_replicas_and_exits_0(self):
        topic = self.new_topic(4)
        self.start_stack(routes(topic), stats="200ms", drain="60s")
        c = self.consumer([topic])
        warm = self.arm("w", 10)
        self.wait_delivered(c, warm)
        self.cluster.stop_brokers([2, 3])
        self.cluster.wait_isr(topic, 1)
        keys = self.arm("k", 1000, ttl_ms=lambda i: 20)
        wait_stats(self.bridge, lambda s: s["received"] >= 1010, 30, what="1000 read")
        self.bridge.send_signal(signal.SIGTERM)
        self.bridge.wait_log(lambda e: "drain" in e.get("msg", ""), 10,
                             what="the bridge draining")
        self.assertIsNone(self.bridge.proc.poll(), "still draining while replicas are missing")
        self.cluster.start_brokers([2, 3])
        rc = self.bridge.wait_exit(60)
        st = final_stats(self.bridge)
        self.wait_delivered(c, keys, 30)
        c.drain(1.0)
        t = Tally(c.messages, warm + keys)
        t.report("sigterm_drain", exit_code=rc, bridge_produced=st["produced"])
        self.assertEqual(rc, 0)
        self.assertEqual((st["received"], st["produced"], st["failed"], st["inflight"]),
                         (1010, 1010, 0, 0))
        self.assertEqual(t.lost, [])
        self.assertEqual(t.other_bytes, 0)

    # ------------------------------------------------------------ bad input

    def test_events_over_the_message_size_are_refused_counted_and_the_rest_flows(self):
        # The topic takes at most 64 KiB per batch; the producer refuses
        # anything over its own message.max.bytes (1,000,000) before sending.
        topic = self.new_topic(1, config={"max.message.bytes": "65536"})
        self.start_stack(routes(topic), stats="200ms")
        c = self.consumer([topic])
        r = self.redis.client()
        before = self.arm("a", 100)
        self.wait_delivered(c, before)
        r.set(b"order:" + b"b" * 100000, "x", px=20)  # broker refuses: MESSAGE_TOO_LARGE
        wait_stats(self.bridge, lambda s: s["failed"] >= 1, 30, what="the broker's refusal")
        r.set(b"order:" + b"h" * 1100000, "x", px=20)  # librdkafka refuses locally
        wait_stats(self.bridge, lambda s: s["dropped"] >= 1, 30, what="the local refusal")
        after = self.arm("c", 100)
        self.wait_delivered(c, after)
        c.drain(1.0)
        self.assertEqual(self.bridge.stop(), 0)
        st = final_stats(self.bridge)
        refused = self.bridge.find_log(lambda e: e.get("msg") == "kafka did not accept event")
        too_big = self.bridge.find_log(lambda e: "message.max.bytes" in e.get("msg", ""))
        t = Tally(c.messages, before + after)
        t.report("too_big", failed=st["failed"], dropped=st["dropped"],
                 broker_reason=repr(refused and refused.get("reason")))
        self.assertEqual((t.messages, t.delivered), (200, 200))
        self.assertEqual((st["received"], st["produced"], st["failed"], st["dropped"]),
                         (202, 200, 1, 1))
        self.assertIn("too large", refused["reason"].lower())
        self.assertEqual(refused["topic"], topic)
        self.assertEqual(too_big["route"], "orders")

    def test_a_topic_that_does_not_exist_is_named_counted_and_other_routes_flow(self):
        orders = self.new_topic(2)
        missing = "t.missing-%s" % orders.split(".")[1]
        self.start_stack(routes(missing, orders), stats="200ms",
                         # librdkafka fails messages of a topic the cluster
                         # says does not exist after this long (default 30 s).
                         client="{ linger.ms: 1, topic.metadata.propagation.max.ms: 5000 }")
        c = self.consumer([orders])
        lost = self.arm("m", 10)
        flowing = self.arm("s", 200, key_fmt="session:%s-%d")
        self.wait_delivered(c, flowing)
        wait_stats(self.bridge, lambda s: s["failed"] >= 10, 60, what="10 events failed")
        c.drain(1.0)
        err = self.bridge.find_log(lambda e: e.get("msg") == "kafka did not accept event")
        self.assertEqual(self.bridge.stop(), 0)
        st = final_stats(self.bridge)
        t = Tally(c.messages, flowing)
        t.report("missing_topic", failed=st["failed"], reason=repr(err.get("reason")))
        self.assertEqual((t.messages, t.delivered), (200, 200))
        self.assertEqual((st["received"], st["produced"], st["failed"]), (210, 200, 10))
        self.assertEqual(err["topic"], missing)
        self.assertEqual(err["route"], "orders")
        self.assertIsNone(self.cluster.metadata().topics.get(missing),
                          "the bridge did not create the topic")
        self.assertEqual(len(lost), 10)


if __name__ == "__main__":
    unittest.main()
