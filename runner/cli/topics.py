"""`runner topic create|list|delete|subscribe|unsubscribe|get|publish`: a client of the
Topics gRPC service (proto/topics.proto; SNS-like fan-out, docs/events.md)."""

from __future__ import annotations

from runner.cli.client import add_address_argument
from runner.cli.push_client import json_arg, print_json, with_push_stub


def _create(args, stub) -> int:
    from runner.service.proto import topics_pb2 as tpb

    print(stub.CreateTopic(tpb.TopicName(name=args.topic)).arn)
    return 0


def _list(args, stub) -> int:
    from runner.service.proto import topics_pb2 as tpb

    for t in stub.ListTopics(tpb.ListTopicsRequest()).topics:
        print(f"{t.name:<24} {t.arn}")
    return 0


def _delete(args, stub) -> int:
    from runner.service.proto import topics_pb2 as tpb

    print(f"deleted {stub.DeleteTopic(tpb.TopicName(name=args.topic)).name}")
    return 0


def _subscribe(args, stub) -> int:
    from runner.service.proto import topics_pb2 as tpb

    s = stub.Subscribe(tpb.Subscription(topic=args.topic, function=args.function,
                                        qualifier=args.qualifier or "",
                                        filter_policy_json=json_arg(args.filter_policy,
                                                                    "--filter-policy")))
    print(s.id)
    return 0


def _get(args, stub) -> int:
    from runner.service.proto import topics_pb2 as tpb

    return print_json(stub.ListSubscriptions(tpb.TopicName(name=args.topic)))


def _unsubscribe(args, stub) -> int:
    from runner.service.proto import topics_pb2 as tpb

    print(f"unsubscribed {stub.Unsubscribe(tpb.UnsubscribeRequest(id=args.id)).function}")
    return 0


def _publish(args, stub) -> int:
    from runner.service.proto import topics_pb2 as tpb

    req = tpb.PublishRequest(topic=args.topic, message=args.message,
                             attributes_json=json_arg(args.attributes, "--attributes"))
    if args.subject is not None:
        req.subject = args.subject
    return print_json(stub.Publish(req))


def add_commands(sub) -> None:
    tp = sub.add_parser("topic", help="manage topics and publish to them (SNS-like)")
    tsub = tp.add_subparsers(dest="topic_command", required=True)
    parsers = []
    for cmd, fn, text in (("create", _create, "create a topic (idempotent)"),
                          ("delete", _delete, "delete a topic and its subscriptions"),
                          ("get", _get, "a topic's subscriptions")):
        p = tsub.add_parser(cmd, help=text)
        p.add_argument("topic")
        parsers.append((p, fn))
    ls = tsub.add_parser("list", help="list topics")
    s = tsub.add_parser("subscribe", help="subscribe a function")
    s.add_argument("topic")
    s.add_argument("--function", required=True)
    s.add_argument("--qualifier")
    s.add_argument("--filter-policy", metavar="JSON", help="SNS filter policy on attributes")
    u = tsub.add_parser("unsubscribe", help="remove a subscription")
    u.add_argument("id")
    pub = tsub.add_parser("publish", help="publish a message to every matching subscriber")
    pub.add_argument("topic")
    pub.add_argument("--message", required=True)
    pub.add_argument("--subject")
    pub.add_argument("--attributes", metavar="JSON", help='e.g. {"kind": "big", "n": 3}')
    parsers += [(ls, _list), (s, _subscribe), (u, _unsubscribe), (pub, _publish)]
    for p, fn in parsers:
        add_address_argument(p)
        p.set_defaults(func=with_push_stub("topics", fn))
