#!/usr/bin/env python3
"""rank_client.py — call mmrecd from Python with grpcio (Debian: python3-grpcio).

Generate the message classes once from the repository's protos:
    protoc -I proto --python_out=OUT proto/mmrec/v1/ranking.proto
    protoc -I proto/grpc/health/v1 --python_out=OUT proto/grpc/health/v1/health.proto
(health.proto is generated as a top-level module, health_pb2: a "grpc.health" package
would shadow grpcio's own "grpc" package).
then run with OUT on PYTHONPATH:
    PYTHONPATH=OUT python3 docs/examples/rank_client.py --addr 127.0.0.1:50051 \
        --user u42 --candidates i1,i2,i3 [--top-k 10] [--token T] [--ca ca.pem]

Prints the serving status, then one line per ranked item: position, item id, score.
Exit status 0 on success, 1 on an RPC error (the gRPC status is printed).
"""
import argparse
import sys

import grpc

import health_pb2                      # generated from proto/grpc/health/v1/health.proto
from mmrec.v1 import ranking_pb2        # generated from proto/mmrec/v1/ranking.proto


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--candidates", default="", help="comma-separated item ids")
    ap.add_argument("--retrieve-k", type=int, default=0)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--token", help="bearer token, when mmrecd has grpc.auth_tokens_file")
    ap.add_argument("--ca", help="CA bundle (PEM) when mmrecd serves TLS")
    ap.add_argument("--deadline", type=float, default=2.0, help="seconds")
    args = ap.parse_args()

    if args.ca:
        with open(args.ca, "rb") as f:
            channel = grpc.secure_channel(args.addr, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.addr)
    metadata = [("authorization", "Bearer " + args.token)] if args.token else None

    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                response_deserializer=health_pb2.HealthCheckResponse.FromString)
    rank = channel.unary_unary("/mmrec.v1.Ranker/Rank",
                               request_serializer=ranking_pb2.RankRequest.SerializeToString,
                               response_deserializer=ranking_pb2.RankResponse.FromString)
    try:
        h = check(health_pb2.HealthCheckRequest(), timeout=args.deadline)
        print("health:", health_pb2.HealthCheckResponse.ServingStatus.Name(h.status))
        req = ranking_pb2.RankRequest(user_id=args.user, top_k=args.top_k, retrieve_k=args.retrieve_k,
                                      candidates=[c for c in args.candidates.split(",") if c])
        resp = rank(req, timeout=args.deadline, metadata=metadata)
    except grpc.RpcError as e:
        print("rpc failed: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    print("request %s, model version %d, unknown candidates %d"
          % (resp.request_id, resp.model_version, resp.unknown_candidates))
    for pos, item in enumerate(resp.items, 1):
        print("%3d  %-24s %.4f" % (pos, item.item_id, item.score))
    return 0


if __name__ == "__main__":
    sys.exit(main())
