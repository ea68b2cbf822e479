"""``tfcl serve``: TF Serving's gRPC and REST APIs from the embedded server (flags named as
``tensorflow_model_server``'s, with dashes or underscores)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys


def _flag(name: str) -> list[str]:
    """``--rest-api-port`` and TF Serving's own spelling ``--rest_api_port``."""
    return [f"--{name}", f"--{name.replace('-', '_')}"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve SavedModels over TF Serving's gRPC and REST APIs until Ctrl-C or SIGTERM",
        description="Serve <base>/<version>/saved_model.pb over TF Serving's gRPC PredictionService and "
        "ModelService (and its REST API with --rest-api-port), loading new versions as they appear. Blocks until "
        "Ctrl-C or SIGTERM.",
    )
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument(
        *_flag("model-config-file"),
        metavar="FILE",
        help="TF Serving model config (text proto with a model_config_list)",
    )
    models.add_argument(
        *_flag("model-base-path"), metavar="DIR", help="one model's base directory, holding <version>/saved_model.pb"
    )
    parser.add_argument(
        *_flag("model-name"),
        default="default",
        metavar="NAME",
        help="the model in --model-base-path (default: %(default)s)",
    )
    parser.add_argument(
        *_flag("model-config-file-poll-wait-seconds"),
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="re-read --model-config-file this often and serve its changes; 0: never (default: %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        *_flag("rest-api-port"), type=int, metavar="PORT", help="serve the REST API on this port too (0: a free one)"
    )
    parser.add_argument(
        "--poll-seconds",
        *_flag("file-system-poll-wait-seconds"),
        dest="poll_seconds",
        metavar="SECONDS",
        type=float,
        default=2.0,
        help="how often to look for new versions (default: %(default)s)",
    )
    parser.add_argument(*_flag("enable-batching"), action="store_true", help="merge concurrent requests into batches")
    parser.add_argument(
        *_flag("batching-parameters-file"),
        metavar="FILE",
        help="TF Serving BatchingParameters text proto (max_batch_size, batch_timeout_micros, num_batch_threads, "
        "max_enqueued_batches); implies --enable-batching",
    )
    parser.add_argument(
        *_flag("max-num-load-retries"),
        type=int,
        default=5,
        metavar="N",
        help="retry a version that failed to load N times (default: %(default)s)",
    )
    parser.add_argument(
        *_flag("load-retry-interval-micros"),
        type=int,
        default=60_000_000,
        metavar="MICROS",
        help="wait between load retries (default: %(default)s, one minute)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on Ctrl-C or SIGTERM, let calls in flight finish this long, then cancel them and exit (default: "
        "%(default)s)",
    )
    parser.add_argument(
        *_flag("grpc-max-threads"),
        type=int,
        default=64,
        metavar="N",
        help="threads answering calls (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfcl.serving import BatchingOptions, LoadRetries, ModelServer, single_model_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("tfcl.serve")
    try:
        batching = None
        if args.batching_parameters_file:
            batching = BatchingOptions.read(args.batching_parameters_file)
        elif args.enable_batching:
            batching = BatchingOptions()
        server = ModelServer(
            None if args.model_config_file else single_model_config(args.model_name, args.model_base_path),
            host=args.host,
            port=args.port,
            rest_api_port=args.rest_api_port,
            poll_seconds=args.poll_seconds,
            max_threads=args.grpc_max_threads,
            batching=batching,
            model_config_file=args.model_config_file,
            config_poll_seconds=args.model_config_file_poll_wait_seconds,
            load_retries=LoadRetries(args.max_num_load_retries, args.load_retry_interval_micros / 1e6),
        )
    except (OSError, ValueError) as error:
        print(f"tfcl serve: error: {error}", file=sys.stderr)
        return 2
    # SIGINT and SIGTERM stop the server even when a launcher started it with SIGINT ignored (which Python inherits);
    # installed before the server starts, so a signal that follows the banner is never lost
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    try:
        server.start()
        rest = f" and {server.rest_address} (REST)" if server.rest_address else ""
        print(f"Serving {', '.join(server.models)} on {server.address} (gRPC){rest} (Ctrl-C to stop)", flush=True)
        server.wait()
    except ValueError as error:  # a base path laid out without version folders
        server.stop(grace=0)
        print(f"tfcl serve: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    log.info("Stopping: calls in flight have %g s to finish (--grace)", args.grace)
    drained = server.stop(grace=args.grace)
    if drained:
        log.info("Stopped")
    else:
        log.warning("Calls still running after --grace %g s were cancelled", args.grace)
    # Leave at once: a call cut off by --grace cannot be interrupted inside TensorFlow, and TensorFlow's own
    # teardown at interpreter exit takes seconds; nothing of the server's is left to flush.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if drained else 1)
