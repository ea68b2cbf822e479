"""``tfcl serve``: TF Serving's gRPC API from the embedded server (flags named as ``tensorflow_model_server``'s)."""

import logging
import signal


def register(subparsers):
    parser = subparsers.add_parser(
        "serve",
        help="serve SavedModels over TF Serving's gRPC API until Ctrl-C",
        description="Serve <base>/<version>/saved_model.pb over TF Serving's gRPC PredictionService and "
        "ModelService, loading new versions as they appear. Blocks until Ctrl-C.",
    )
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument(
        "--model-config-file", metavar="FILE", help="TF Serving model config (text proto with a model_config_list)"
    )
    models.add_argument(
        "--model-base-path", metavar="DIR", help="one model's base directory, holding <version>/saved_model.pb"
    )
    parser.add_argument(
        "--model-name",
        default="default",
        metavar="NAME",
        help="the name of the model in --model-base-path (default: %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        "--poll-seconds",
        "--file-system-poll-wait-seconds",
        dest="poll_seconds",
        metavar="SECONDS",
        type=float,
        default=2.0,
        help="how often to look for new versions (default: %(default)s)",
    )
    parser.add_argument(
        "--grpc-max-threads", type=int, default=16, metavar="N", help="threads answering calls (default: %(default)s)"
    )
    parser.set_defaults(run=run)


def run(args):
    from tfcl.serving.server import ModelServer, read_model_config, single_model_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.model_config_file:
        config = read_model_config(args.model_config_file)
    else:
        config = single_model_config(args.model_name, args.model_base_path)
    # SIGINT and SIGTERM stop the server even when a launcher started it with SIGINT ignored (which Python inherits);
    # installed before the server starts, so a signal that follows the banner is never lost
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    server = ModelServer(
        config, host=args.host, port=args.port, poll_seconds=args.poll_seconds, max_threads=args.grpc_max_threads
    )
    try:
        server.start()
        print(f"Serving {', '.join(server.models)} on {server.address} (Ctrl-C to stop)", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=5)
